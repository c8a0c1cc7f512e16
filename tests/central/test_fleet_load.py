"""The fleet load test (bench/fleet_load.py), small: 50 kiosks for a few seconds against central on
PostgreSQL, through the very code `make bench` runs with 1,000. What it must show is that nothing fails
under a fleet's concurrent calls, and that every heartbeat a kiosk was answered for is in central's
history; its figures are the benchmark's business, not this test's."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bench import fleet_load
from central.db import Database
from central.models import Device, KioskHeartbeat
from tests.postgres_server import PostgresServer

KIOSKS = 50

pytestmark = pytest.mark.postgresql


def test_a_fleet_beating_and_syncing_at_once_gets_every_answer_and_its_heartbeats_kept(
        postgres_server: PostgresServer) -> None:
    with postgres_server.database() as db_url:
        # A round every 2 s for 4 s: each kiosk beats twice and serves a citizen once.
        fleet = fleet_load.run(postgres_server, db_url, kiosks=KIOSKS, journey_every=2, threads=16,
                               phases=[fleet_load.Phase("test", heartbeat_s=2.0, seconds=4.0)])
        phase, = fleet.phases
        assert fleet.error_count == 0, fleet_load.report(fleet)
        assert (phase.rounds, phase.undone, phase.journeys) == (2 * KIOSKS, 0, KIOSKS), fleet_load.report(fleet)
        assert set(phase.latencies) == set(fleet_load.ROUTES), fleet_load.report(fleet)

        database = Database(db_url)
        try:
            with database.reading() as session:
                enrolled = set(session.scalars(select(Device.device_id)))
                kept = dict(session.execute(select(KioskHeartbeat.device_id, func.count())
                                            .group_by(KioskHeartbeat.device_id)).all())
        finally:
            database.dispose()
    assert len(enrolled) == KIOSKS
    assert set(phase.heartbeats) == enrolled
    assert all(count > 0 for count in phase.heartbeats.values())
    assert kept == phase.heartbeats
