"""A certificate as central issues it, ready to be laid out and printed.

Labels come in both languages from central; values are as the registry
holds them. `verification` is the signed payload the printed QR code carries
(see central/signing.py): anyone with central's public key can check it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DocumentField:
    label: dict[str, str]   # language -> label
    value: str


@dataclass(frozen=True, repr=False)
class IssuedDocument:
    request_id: str
    serial: str
    service_code: str
    title: dict[str, str]          # language -> title
    fields: tuple[DocumentField, ...]
    issued_at: str                 # ISO 8601, UTC
    verification: str              # the signed QR payload

    def __repr__(self) -> str:
        return "IssuedDocument(serial=%s, service=%s)" % (self.serial, self.service_code)

    @classmethod
    def from_json(cls, data: dict) -> "IssuedDocument":
        return cls(
            request_id=str(data["request_id"]),
            serial=str(data["serial"]),
            service_code=str(data["service_code"]),
            title={str(k): str(v) for k, v in data["title"].items()},
            fields=tuple(DocumentField(label={str(k): str(v) for k, v in f["label"].items()}, value=str(f["value"]))
                         for f in data["fields"]),
            issued_at=str(data["issued_at"]),
            verification=str(data["verification"]),
        )

    def to_json(self) -> dict:
        return {
            "request_id": self.request_id, "serial": self.serial, "service_code": self.service_code,
            "title": dict(self.title),
            "fields": [{"label": dict(f.label), "value": f.value} for f in self.fields],
            "issued_at": self.issued_at, "verification": self.verification,
        }
