"""Central's verification page: ``GET /verify/<serial>`` for an official with a browser.

It says whether the document with that serial is valid, voided (and since
when) or unknown to central, and shows what the document's QR code shows and
nothing more: serial, kind, issue date, place of issue, the holder's name.
Those come from the very payload central signed into the QR code, read back
with central's key. Arabic by default (``<html dir="rtl" lang="ar">``),
English with ``?lang=en``; both pages link to each other.

The page is plain HTML written here, every value through ``html.escape``;
it has no script, loads nothing, and its Content-Security-Policy says so.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from central import signing
from central.catalogue_store import find_service
from central.db import Database
from central.models import IssuedDocumentRecord

PAGE = "/verify/{serial}"
LANGUAGES = ("ar", "en")

# A serial worth looking up (and echoing back on the page): "2026-ABCDEFGH".
_SERIAL = re.compile(r"^[0-9]{4}-[A-Z0-9]{4,16}$")

HEADERS = {
    "Cache-Control": "no-store",                 # a document may be voided at any time
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class State(enum.Enum):
    VALID = "valid"
    VOIDED = "voided"
    UNKNOWN = "unknown"


@dataclass(frozen=True, repr=False)
class Facts:
    """What the page says about one serial. Holds the holder's name: never log it."""

    state: State
    serial: str                                   # as asked, when it looks like a serial; else ""
    kind: dict[str, str] = field(default_factory=dict)   # language -> the document's name
    issued_at: datetime | None = None
    place: dict[str, str] = field(default_factory=dict)
    holder_ar: str = ""
    voided_at: datetime | None = None

    def __repr__(self) -> str:
        return "Facts(state=%s, serial=%s)" % (self.state.value, self.serial)


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def look_up(database: Database, public_keys: Iterable[Ed25519PublicKey], serial: str) -> Facts:
    """The facts about `serial`, read from the issued documents and their signed payloads."""
    serial = serial.strip().upper()
    if not _SERIAL.match(serial):
        return Facts(State.UNKNOWN, "")
    with database.reading() as session:
        record = session.get(IssuedDocumentRecord, serial)
        if record is None:
            return Facts(State.UNKNOWN, serial)
        service = find_service(session, record.service_code)
        kind = dict(service.names) if service else {"ar": record.service_code, "en": record.service_code}
        payload = json.loads(record.document).get("verification", "")
        voided_at = record.voided_at
        issued_at = record.issued_at
    state = State.VOIDED if voided_at else State.VALID
    try:
        signed = signing.verify(payload, public_keys)
    except signing.InvalidPayload:
        # Signed under a key or a format central no longer holds: say what the record says.
        return Facts(state, serial, kind, _parse_iso(issued_at), voided_at=_parse_iso(voided_at))
    return Facts(state, serial, kind, signed.issued_at, {"ar": signed.place_ar, "en": signed.place_en},
                 signed.holder_ar, _parse_iso(voided_at))


TEXTS: dict[str, dict[str, str]] = {
    "authority": {"ar": "الجمهورية العربية السورية — وزارة الداخلية — الأحوال المدنية",
                  "en": "Syrian Arab Republic — Ministry of Interior — Civil Registry"},
    "title": {"ar": "التحقق من وثيقة", "en": "Document verification"},
    "valid": {"ar": "وثيقة صحيحة: صدرت عن الأحوال المدنية ولم تُلغَ.",
              "en": "Valid: issued by the Civil Registry and not voided."},
    "voided": {"ar": "وثيقة ملغاة منذ {date}: لا يُعتدّ بها.",
               "en": "Voided on {date}: this document is not valid."},
    "unknown": {"ar": "لا توجد وثيقة بهذا الرقم التسلسلي.", "en": "No document has this serial number."},
    "check_serial": {"ar": "تأكّد من الرقم التسلسلي كما هو مطبوع على الوثيقة.",
                     "en": "Check the serial number as it is printed on the document."},
    "serial": {"ar": "الرقم التسلسلي", "en": "Serial number"},
    "kind": {"ar": "نوع الوثيقة", "en": "Document"},
    "issued": {"ar": "تاريخ الإصدار", "en": "Issued"},
    "place": {"ar": "مكان الإصدار", "en": "Place of issue"},
    "holder": {"ar": "صاحب الوثيقة", "en": "Holder"},
    "compare": {"ar": "قارن هذه البيانات بالوثيقة المطبوعة. لا تعرض هذه الصفحة إلا ما يحمله رمز الوثيقة.",
                "en": "Compare these details with the printed document. This page shows only what the "
                      "document's QR code holds."},
    "other_language": {"ar": "English", "en": "العربية"},
}

_STYLE = """
html { background: #f3f2ee; color: #1b1b1b; }
body { margin: 0; font-size: 20px; line-height: 1.7;
       font-family: "Amiri", "Noto Naskh Arabic", "DejaVu Sans", "Arial", serif; }
html[lang="en"] body { font-size: 17px; font-family: "DejaVu Sans", "Liberation Sans", "Arial", "Amiri", sans-serif; }
html[lang="en"] [lang="ar"] { font-family: "Amiri", "Noto Naskh Arabic", "DejaVu Sans", serif; font-size: 1.15em; }
main { max-width: 38rem; margin: 1.5rem auto; padding: 1.25rem 1.75rem; background: #fff;
       border: 1px solid #c9c6bd; }
nav { text-align: end; font-size: 0.95rem; }
.authority { text-align: center; color: #444; margin: 0.25rem 0; }
h1 { text-align: center; font-size: 1.6rem; margin: 0.25rem 0 1rem; }
.verdict { margin: 0 0 1.25rem; padding: 0.75rem 1rem; font-weight: bold; font-size: 1.2rem;
           border-inline-start: 0.5rem solid; }
.valid { background: #e5f3e8; border-color: #1e7b34; color: #14532a; }
.voided { background: #fbe7e6; border-color: #b3261e; color: #7a1712; }
.unknown { background: #ecebe8; border-color: #6b6b6b; color: #333; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1.5rem; margin: 0; }
dt { color: #555; }
dd { margin: 0; font-weight: bold; }
.note { margin-top: 1.25rem; color: #555; font-size: 0.9rem; }
"""


def _when(moment: datetime | None) -> str:
    """``2026-01-31 09:15 UTC``, or with the offset it was signed in: ``12:15 (UTC+03:00)``."""
    if moment is None:
        return "—"
    offset = moment.strftime("%z")
    zone = " UTC" if offset in ("", "+0000") else " (UTC%s:%s)" % (offset[:3], offset[3:])
    return moment.strftime("%Y-%m-%d %H:%M") + zone


def _isolated(text: str, direction: str) -> str:
    """A value that keeps its own direction inside the page's (a serial on an Arabic page)."""
    return '<bdi dir="%s">%s</bdi>' % (direction, escape(text))


def render(facts: Facts, language: str) -> str:
    """The page for `facts` in `language` ("ar" or "en")."""
    if language not in LANGUAGES:
        language = "ar"
    other = "en" if language == "ar" else "ar"

    def text(key: str) -> str:
        return escape(TEXTS[key][language])

    if facts.state is State.VOIDED:
        verdict = escape(TEXTS["voided"][language]).replace("{date}", _isolated(_when(facts.voided_at), "ltr"))
    else:
        verdict = text(facts.state.value)
    rows: list[tuple[str, str]] = []
    if facts.serial:
        rows.append((text("serial"), _isolated(facts.serial, "ltr")))
    if facts.state is not State.UNKNOWN:
        kind = facts.kind.get(language) or facts.kind.get(other, "")
        place = facts.place.get(language) or facts.place.get(other, "")
        rows += [
            (text("kind"), _isolated(kind, "auto")),
            (text("issued"), _isolated(_when(facts.issued_at), "ltr")),
            (text("place"), _isolated(place, "auto") if place else "—"),
            (text("holder"), '<bdi dir="rtl" lang="ar">%s</bdi>' % escape(facts.holder_ar) if facts.holder_ar
             else "—"),
        ]
    details = "\n".join("<dt>%s</dt><dd>%s</dd>" % row for row in rows)
    title = text("title") + (" — " + escape(facts.serial) if facts.serial else "")
    note = '<p class="note">%s</p>' % text("check_serial" if facts.state is State.UNKNOWN else "compare")
    return """<!DOCTYPE html>
<html dir="{dir}" lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<nav><a href="?lang={other}" hreflang="{other}" lang="{other}">{other_name}</a></nav>
<p class="authority">{authority}</p>
<h1>{heading}</h1>
<p class="verdict {state}" role="status">{verdict}</p>
<dl>
{details}
</dl>
{note}
</main>
</body>
</html>
""".format(dir="rtl" if language == "ar" else "ltr", lang=language, title=title, style=_STYLE, other=other,
           other_name=text("other_language"), authority=text("authority"), heading=text("title"),
           state=facts.state.value, verdict=verdict, details=details, note=note)
