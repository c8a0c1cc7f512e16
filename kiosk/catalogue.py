"""The certificates a citizen can ask for, with their fees, grouped in categories.

Central signs the catalogue it serves (Ed25519, with its document key): the
signature covers :func:`signing_bytes` of the document, the one definition
of what is signed, which both sides use: the document's canonical JSON
(keys sorted, no spaces, UTF-8, non-ASCII letters as they are) without its
``signature`` member, after a context string that no other signed thing of
ours starts with. The document carries its ``version`` and the time central
signed it (``issued_at``), so a kiosk can tell how old a copy it kept is.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from kiosk.money import Money


@dataclass(frozen=True)
class Category:
    code: str                      # stable id, e.g. "civil-status"
    names: dict[str, str]          # language -> name, "ar" and "en"

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ar"]

    @classmethod
    def from_json(cls, data: dict) -> "Category":
        return cls(code=str(data["code"]), names={str(k): str(v) for k, v in data["names"].items()})

    def to_json(self) -> dict:
        return {"code": self.code, "names": dict(self.names)}


class OfflineMode(str, enum.Enum):
    ONLINE_ONLY = "online_only"      # needs central: not offered while central cannot be reached
    CLAIM = "claim"                  # while central cannot be reached: paid now, the document collected later


@dataclass(frozen=True)
class OfflinePolicy:
    """Central's word on a service while the kiosk cannot reach it. A claim is taken only for a fee
    up to `max_fee_minor`, and while the kiosk's offline payments of the day (in the fee's currency)
    stay within `daily_cap_minor`, as card-present offline payments have their floor limits."""

    mode: OfflineMode = OfflineMode.ONLINE_ONLY
    max_fee_minor: int = 0           # per payment
    daily_cap_minor: int = 0         # per kiosk and day

    def allows_claim(self, fee: Money) -> bool:
        """Whether a claim may be taken at all for `fee` (the day's total aside)."""
        return self.mode is OfflineMode.CLAIM and 0 < fee.amount_minor <= self.max_fee_minor

    @classmethod
    def from_json(cls, data: dict | None) -> "OfflinePolicy":
        if not data:
            return cls()
        mode = OfflineMode(data["mode"])
        if mode is OfflineMode.ONLINE_ONLY:
            return cls()
        return cls(mode, int(data["max_fee_minor"]), int(data["daily_cap_minor"]))

    def to_json(self) -> dict:
        if self.mode is OfflineMode.ONLINE_ONLY:
            return {"mode": self.mode.value}
        return {"mode": self.mode.value, "max_fee_minor": self.max_fee_minor, "daily_cap_minor": self.daily_cap_minor}


@dataclass(frozen=True)
class Service:
    code: str                      # stable id, e.g. "civil-status-extract"
    names: dict[str, str]          # language -> name, "ar" and "en"
    fee: Money
    category: str = ""             # a Category's code
    governorates: tuple[str, ...] = ()   # where it is offered; () everywhere
    rank: int | None = None        # among the most asked (1 first); None: not on the first screen
    offline: OfflinePolicy = field(default_factory=OfflinePolicy)   # while central cannot be reached

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ar"]

    def offered_in(self, governorate: str) -> bool:
        return not self.governorates or not governorate or governorate in self.governorates

    @classmethod
    def from_json(cls, data: dict) -> "Service":
        rank = data.get("rank")
        return cls(code=str(data["code"]), names={str(k): str(v) for k, v in data["names"].items()},
                   fee=Money.from_json(data["fee"]), category=str(data.get("category", "")),
                   governorates=tuple(str(g) for g in data.get("governorates", ())),
                   rank=int(rank) if rank is not None else None, offline=OfflinePolicy.from_json(data.get("offline")))

    def to_json(self) -> dict:
        """As central serves it; a service online only has no ``offline`` member (the default)."""
        data = {"code": self.code, "names": dict(self.names), "fee": self.fee.to_json(), "category": self.category,
                "governorates": list(self.governorates), "rank": self.rank}
        if self.offline.mode is not OfflineMode.ONLINE_ONLY:
            data["offline"] = self.offline.to_json()
        return data


@dataclass(frozen=True)
class Catalogue:
    services: tuple[Service, ...]
    categories: tuple[Category, ...] = ()
    version: str = ""                 # central's version of it: the pre-check before a charge names it

    def get(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def offered_in(self, governorate: str) -> "Catalogue":
        """The services offered in `governorate`, and the categories that still hold one."""
        services = tuple(s for s in self.services if s.offered_in(governorate))
        used = {s.category for s in services}
        return Catalogue(services, tuple(c for c in self.categories if c.code in used), self.version)

    def in_category(self, code: str) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.category == code)

    def most_asked(self) -> tuple[Service, ...]:
        return tuple(sorted((s for s in self.services if s.rank is not None), key=lambda s: s.rank))

    @classmethod
    def from_json(cls, data: dict) -> "Catalogue":
        return cls(services=tuple(Service.from_json(s) for s in data["services"]),
                   categories=tuple(Category.from_json(c) for c in data.get("categories", ())))

    def to_json(self) -> dict:
        return {"services": [s.to_json() for s in self.services],
                "categories": [c.to_json() for c in self.categories]}


SIGNATURE_CONTEXT = b"KSK-CATALOGUE-1\n"     # what the signed bytes begin with: a catalogue, nothing else


def signing_bytes(document: dict, context: bytes = SIGNATURE_CONTEXT) -> bytes:
    """What central's signature of a served catalogue covers: the context, then the canonical
    JSON of `document` without its ``signature`` member. Central signs its other documents the
    same way under a context of their own (a command, the announcements: kiosk.wire)."""
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    return context + json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                                ensure_ascii=False).encode("utf-8")
