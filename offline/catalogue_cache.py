"""The kiosk's copy of central's signed catalogue (`kiosk.ports.catalogue_cache`), as one file on its disk.

The file (``catalogue.json`` in the state directory, beside the state
database) holds ``{"format": 1, "fetched_at": <seconds>, "document": <the
catalogue as central signed it>}``. It is written whole under a temporary
name, synced, and renamed over the old one (then the directory is synced):
a power cut leaves the old copy or the new one, never half of one. It is
readable by the kiosk's user alone (0600), like the state database, though
it holds no personal data. What it says is not trusted here: the core checks
the signature and the age every time it reads it back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from kiosk.atomic_file import sync_directory
from kiosk.errors import QueueError
from kiosk.ports.catalogue_cache import CachedCatalogue, CatalogueCache
from offline.database import make_private_dir

log = logging.getLogger(__name__)

FORMAT = 1
FILE_NAME = "catalogue.json"
_MODE = 0o600


class FileCatalogueCache(CatalogueCache):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def save(self, cached: CachedCatalogue) -> None:
        text = json.dumps({"format": FORMAT, "fetched_at": cached.fetched_at, "document": cached.document},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        partial = self.path.with_name(".%s.%d.tmp" % (self.path.name, os.getpid()))
        try:
            make_private_dir(self.path.parent)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _MODE)
            try:
                os.fchmod(fd, _MODE)                  # whatever the umask, or a file left by an older run
                os.write(fd, text)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(partial, self.path)
            sync_directory(self.path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise QueueError("cannot keep the catalogue at %s: %s" % (self.path, exc)) from exc

    def load(self) -> CachedCatalogue | None:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("catalogue_cache.unreadable path=%s error=%s", self.path, type(exc).__name__)
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("document"), dict) \
                or not isinstance(data.get("fetched_at"), (int, float)):
            log.error("catalogue_cache.unreadable path=%s error=not_a_copy", self.path)
            return None
        return CachedCatalogue(data["document"], float(data["fetched_at"]))


def for_state_database(database_path: Path) -> FileCatalogueCache:
    """The copy kept beside the state database at `database_path` (``outbox.path``)."""
    return FileCatalogueCache(Path(database_path).parent / FILE_NAME)
