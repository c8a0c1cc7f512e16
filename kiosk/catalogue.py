"""The certificates a citizen can ask for, with their fees."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.money import Money


@dataclass(frozen=True)
class Service:
    code: str                      # stable id, e.g. "civil-status-extract"
    names: dict[str, str]          # language -> name, "ar" and "en"
    fee: Money

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ar"]

    @classmethod
    def from_json(cls, data: dict) -> "Service":
        return cls(code=str(data["code"]), names={str(k): str(v) for k, v in data["names"].items()},
                   fee=Money.from_json(data["fee"]))

    def to_json(self) -> dict:
        return {"code": self.code, "names": dict(self.names), "fee": self.fee.to_json()}


@dataclass(frozen=True)
class Catalogue:
    services: tuple[Service, ...]

    def get(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)

    @classmethod
    def from_json(cls, data: dict) -> "Catalogue":
        return cls(services=tuple(Service.from_json(s) for s in data["services"]))

    def to_json(self) -> dict:
        return {"services": [s.to_json() for s in self.services]}
