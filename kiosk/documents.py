"""A certificate as central issues it, ready to be laid out and printed.

Labels come in both languages from central; values are as the registry
holds them. `verification` is the signed payload the printed QR code carries
(see central/signing.py): anyone with central's public key can check it.

The signature covers the printed text through :func:`content_digest`, the
one definition of a document's canonical content: central signs it, and any
verifier recomputes it from the title and the fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CONTENT_DIGEST_BYTES = 16


@dataclass(frozen=True)
class DocumentField:
    label: dict[str, str]   # language -> label
    value: str


def content_digest(title: Mapping[str, str], fields: Iterable[DocumentField]) -> bytes:
    """The first 16 bytes of the SHA-256 of the document's printed content.

    The content is the canonical JSON (keys sorted, no spaces, UTF-8, no
    escapes of non-ASCII letters) of ``{"title": {language: title}, "fields":
    [{"label": {language: label}, "value": value}, ...]}``: the title and every
    field's labels in all the languages the document has, and its values,
    fields in printed order. Texts are taken exactly as they are (no Unicode
    normalisation), so a verifier must hash the very strings central issued.
    """
    content = {"title": {str(k): str(v) for k, v in title.items()},
               "fields": [{"label": {str(k): str(v) for k, v in f.label.items()}, "value": str(f.value)}
                          for f in fields]}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).digest()[:CONTENT_DIGEST_BYTES]


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

    def content_digest(self) -> bytes:
        """What the QR code's signature says the printed title and fields are: see :func:`content_digest`."""
        return content_digest(self.title, self.fields)

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
