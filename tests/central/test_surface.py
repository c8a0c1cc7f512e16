"""What the plain central serves: built as `kiosk-central serve` builds it, it has no simulator's route."""

from __future__ import annotations

import pytest
import uvicorn

from central import cli
from kiosk import wire


def test_the_served_central_has_no_simulator_routes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kiosk-central serve` runs through to uvicorn, which is handed the app instead of serving it."""
    served = []

    class Captured(uvicorn.Server):
        def run(self, sockets=None) -> None:
            served.append(self.config.app)

    monkeypatch.setattr(cli.uvicorn, "Server", Captured)
    assert cli.main(["serve", "--db", "sqlite:///%s" % (tmp_path / "central.sqlite3")]) == 0
    [app] = served
    try:
        paths = sorted(route.path for route in app.routes)
        assert wire.HEALTH in paths and wire.REQUESTS in paths             # the app, not an empty shell
        for word in ("sim", "next-outcome", "gateway"):
            assert [path for path in paths if word in path.lower()] == [], word
    finally:
        app.state.database.dispose()
