"""The certificates a citizen can ask for, with their fees, grouped in categories."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Service:
    code: str                      # stable id, e.g. "civil-status-extract"
    names: dict[str, str]          # language -> name, "ar" and "en"
    fee: Money
    category: str = ""             # a Category's code
    governorates: tuple[str, ...] = ()   # where it is offered; () everywhere
    rank: int | None = None        # among the most asked (1 first); None: not on the first screen

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
                   rank=int(rank) if rank is not None else None)

    def to_json(self) -> dict:
        return {"code": self.code, "names": dict(self.names), "fee": self.fee.to_json(), "category": self.category,
                "governorates": list(self.governorates), "rank": self.rank}


@dataclass(frozen=True)
class Catalogue:
    services: tuple[Service, ...]
    categories: tuple[Category, ...] = ()

    def get(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def offered_in(self, governorate: str) -> "Catalogue":
        """The services offered in `governorate`, and the categories that still hold one."""
        services = tuple(s for s in self.services if s.offered_in(governorate))
        used = {s.category for s in services}
        return Catalogue(services, tuple(c for c in self.categories if c.code in used))

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
