"""The kiosk's own copy of central's signed catalogue, kept on its disk for when central cannot be reached.

The copy is the document exactly as central served and signed it, with the
time the kiosk fetched it; the core checks the signature and the age again
every time it reads it (kiosk.catalogue_supply), so a copy that was altered
on the disk, or kept too long, is never used. It holds no personal data.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedCatalogue:
    document: dict          # the catalogue as central served it, its signature included
    fetched_at: float       # when the kiosk fetched it (wall time, seconds)


class CatalogueCache(abc.ABC):
    @abc.abstractmethod
    def save(self, cached: CachedCatalogue) -> None:
        """Keep `cached` in place of the copy before, whole or not at all; QueueError when it cannot
        be written (a full disk): the copy before, if any, is left as it was."""

    @abc.abstractmethod
    def load(self) -> CachedCatalogue | None:
        """The copy kept, None when there is none or it cannot be read (checked by the caller)."""
