"""One way to write a file the kiosk must never find half written: a key, a configuration, an anchor.

The bytes go to a temporary file beside the target, with the target's mode
from the moment it exists, are synced, may be checked (a configuration is
loaded before it replaces anything), and only then take the target's name;
the directory is synced after, so the new name survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600,
                     check: Callable[[Path], None] | None = None) -> None:
    """`data` at `path`, whole or not at all, with `mode`. `check` sees the temporary file before it
    takes `path`'s place and may raise: `path` is then left as it was. OSError as the system gives it."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".%s." % path.name)
    temporary = Path(name)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """The directory's entries on the disk: a name just given, or taken, survives a power cut."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
