"""Central running for real on loopback, with a real SQLite file and a stub acquirer: the fixtures every
test that talks to central shares (a pytest plugin, registered in tests/conftest.py).

`central` trusts the session's card issuer (`issuer`) and has its rate limits out of reach; `enrol`
enrols a kiosk as a technician does; `devices` is central's devices as its staff reach them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.db import Database
from central.devices import Devices
from central.seeding import prepare_database
from central.server import RunningCentral, start_in_thread
from kiosk import wire
from kiosk.provisioning import public_key_hex
from tests.central.stub_acquirer import StubAcquirer


def enrol(central_url: str, db_url: str, device_id: str) -> Ed25519PrivateKey:
    """`device_id` enrolled at central as a technician does it: a code from central's staff, a key
    made by the kiosk, its public half sent with the code."""
    database = Database(db_url)
    try:
        code, _expires = Devices(database).issue_code(device_id)
    finally:
        database.dispose()
    key = Ed25519PrivateKey.generate()
    response = requests.post(central_url + wire.ENROL, timeout=10,
                             json={"device_id": device_id, "code": code, "public_key": public_key_hex(key)})
    assert response.status_code == 200, response.text
    return key


def start_without_rate_limits(db_url: str, **options: object) -> RunningCentral:
    """`start_in_thread`, with central's rate limits (central/limits.py, tested in test_limits.py) set out
    of reach: one test kiosk here sends a whole module's calls in seconds, as no real kiosk does."""
    return start_in_thread(db_url, public_rate_per_s=1e6, public_burst=10 ** 6, device_rate_per_s=1e6,
                           device_burst=10 ** 6, **options)


@pytest.fixture(scope="module")
def central(central_db_url: str, acquirer: StubAcquirer, issuer_pem: Path) -> Iterator[RunningCentral]:
    running = start_without_rate_limits(central_db_url, acquirer_url=acquirer.url, issuer_key_paths=[issuer_pem])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def issuer_pem(issuer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The card issuer's public key, which central trusts (the session's issuer, as the kiosk's)."""
    path = tmp_path_factory.mktemp("issuer") / "issuer.pub.pem"
    path.write_bytes(issuer.public_pem)
    return path


# The databases central runs on. Central's own tests run on each (tests/central/conftest.py); the others,
# which talk to central, on SQLite. `-m 'not postgresql'` leaves PostgreSQL out.
DATABASES = (pytest.param("sqlite", id="sqlite"),
             pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql))


@contextlib.contextmanager
def new_database(kind: str, request: pytest.FixtureRequest, directory: Path, *, prepared: bool = False
                 ) -> Iterator[str]:
    """The URL of an empty database of `kind` (a DATABASES id): a SQLite file in `directory`, or a new
    database in the session's PostgreSQL (tests/postgres_server.py), dropped afterwards. `prepared`: on
    PostgreSQL, a copy of a database central prepared once (migrated and seeded, as central's first start
    leaves it), which is much quicker than preparing each again; SQLite's is prepared at central's start."""
    if kind == "sqlite":
        yield "sqlite:///%s" % (directory / "central.sqlite3")
        return
    server = request.getfixturevalue("postgres_server")
    with server.database(server.template("central_prepared", _prepare) if prepared else "template0") as url:
        yield url


def _prepare(db_url: str) -> None:
    database = Database(db_url)
    try:
        prepare_database(database)
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def central_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3")


@pytest.fixture(scope="module")
def acquirer() -> Iterator[StubAcquirer]:
    """Where central looks payments up; a test may make it answer badly, and it answers well again after."""
    with StubAcquirer() as stub:
        yield stub


@pytest.fixture(scope="module")
def central_database(central: RunningCentral, central_db_url: str) -> Iterator[Database]:
    """The running central's database, opened beside it (to look, or to move a time into the past)."""
    database = Database(central_db_url)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def devices(central_database: Database) -> Devices:
    """Central's devices as its staff reach them (`kiosk-central devices ...`)."""
    return Devices(central_database)
