"""The state database as a technician's tool opens it (`kiosk queue`, `kiosk audit`).

Both take an action among theirs and the kiosk's configuration, and open the
database the running kiosk may be using: without the start-up check, which
would move a damaged file aside under the kiosk. A wrong action, or a kiosk
that never made its database, is one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from kiosk import config as kiosk_config
from kiosk.config import KioskConfig
from offline.database import StateDatabase


def open_for_tool(tool: str, action: str, actions: Sequence[str],
                  config_path: Path) -> tuple[KioskConfig, StateDatabase] | None:
    """The configuration and the state database for `tool`'s `action`; None once the reason why not is
    printed (the tool exits 2). ConfigError as `kiosk.config.load` raises it."""
    if action not in actions:
        print("kiosk: unknown %s action %r (%s)" % (tool, action, ", ".join(actions)), file=sys.stderr)
        return None
    config = kiosk_config.load(config_path)
    path = config.outbox.path
    if not path.exists():
        print("kiosk: no state database at %s" % path, file=sys.stderr)
        return None
    return config, StateDatabase(path, check=False)
