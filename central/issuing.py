"""Certificate requests: check, issue once, answer every retry the same way, void.

A request is keyed by the id the kiosk chose. Its first answer (issued or
rejected) is stored as sent and given back to every retry with the same
body; the same id with another body is a 409. A payment pays for one
document only. A void of an id central never saw leaves a tombstone, so the
request arriving late is refused rather than issued. A void of an issued
document replaces the stored answer: a retry after the void is answered
``{"status": "voided", "reason": "request_voided", "request_id", "serial",
"voided_at"}`` (HTTP 422), never the document again.

The request may name where the kiosk stands, ``"place": {"ar": ..., "en": ...}``
(each optional, at most 40 characters, no control or bidi-override
characters); central signs it into the document's QR code with the holder's
Arabic name and the digest of the printed fields (central/signing.py).

The request may also name the kiosk's time zone (`"time_zone"`, an IANA
name): the signed issue time then carries its offset, as printed.

Rejection reasons: unknown_service, unknown_citizen, card_mismatch,
card_expired, payment_not_found, payment_not_approved,
payment_device_mismatch, payment_amount_mismatch, payment_refunded,
payment_already_used, request_voided; and the requirements of the kinds'
layouts (central/seed/layouts.json): not_married, no_family, not_single,
not_divorced, not_widowed, no_own_family, no_children, no_latin_name,
has_convictions, no_deceased_parent, no_name_change, not_displaced,
no_qualification, no_property, owns_property, no_driving_licence,
no_vehicle, owns_vehicle, deceased.
"""

from __future__ import annotations

import json
import logging
import secrets
import zoneinfo
from datetime import date, datetime
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import AfterValidator, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from central import signing
from central.catalogue_store import find_service
from central.certificates import NotApplicable, document_fields
from central.db import Database, iso_utc, utc_now
from central.models import CertificateRequest, Citizen, GatewayCharge, IssuedDocumentRecord
from central.wire import Answer, Body, Identifier, body_digest, canonical_json, conflict, rejected
from kiosk import wire
from kiosk.catalogue import Service
from kiosk.documents import IssuedDocument, content_digest
from kiosk.wire import AnswerStatus

log = logging.getLogger(__name__)

_SERIAL_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"   # no 0/O, 1/I/L, U: read aloud without doubt


def _plain_text(value: str) -> str:
    if not wire.is_plain_text(value):
        raise ValueError("control characters are not allowed")
    return value


PlaceName = Annotated[str, Field(max_length=wire.PLACE_MAX_LENGTH), AfterValidator(_plain_text)]


class Place(Body):
    """Where the kiosk stands, as printed and signed: ``{"ar": ..., "en": ...}``."""

    ar: PlaceName = ""
    en: PlaceName = ""


def _known_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known time zone") from None
    return name


TimeZone = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$", max_length=40),
                     AfterValidator(_known_zone)]


class CertificateRequestBody(Body):
    request_id: Identifier
    device_id: Identifier
    service_code: Identifier
    national_number: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    card_number: Annotated[str, Field(pattern=r"^SY[0-9]{10}$")]
    language: Literal["ar", "en"]
    payment_id: Identifier
    place: Place | None = None
    time_zone: TimeZone | None = None    # the kiosk's: the signed issue time carries its offset


class EligibilityBody(Body):
    """Asked before the fee is charged: would this citizen get this document?"""

    device_id: Identifier
    service_code: Identifier
    national_number: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    card_number: Annotated[str, Field(pattern=r"^SY[0-9]{10}$")]


def _answer_of(row: CertificateRequest) -> Answer:
    return Answer(row.http_status, json.loads(row.answer))


def _answer_text(answer: Answer) -> str:
    """The answer as stored: key order kept, so a retry gets the very same bytes."""
    return json.dumps(answer.body, ensure_ascii=False, separators=(",", ":"))


def _holder(session: Session, service_code: str, national_number: str, card_number: str, language: str,
            now: datetime) -> tuple[Service, Citizen, tuple] | str:
    """The service, the citizen and the document's fields, or why not."""
    service = find_service(session, service_code)
    if service is None:
        return "unknown_service"
    citizen = session.get(Citizen, national_number)
    if citizen is None:
        return "unknown_citizen"
    if citizen.card_number != card_number:
        return "card_mismatch"
    if citizen.card_expires < now.date():
        return "card_expired"
    fields = document_fields(service.code, citizen, language)
    if isinstance(fields, NotApplicable):
        return fields.reason
    return service, citizen, fields


class Issuer:
    def __init__(self, database: Database, signing_key: Ed25519PrivateKey) -> None:
        self._database = database
        self._signing_key = signing_key

    def submit(self, body: CertificateRequestBody) -> Answer:
        # A body without a place has the digest it had before places existed: a retry
        # of a request stored then is still the same request.
        digest = body_digest(body, exclude=frozenset({"place"}) if body.place is None else frozenset())
        with self._database.writing() as session:
            stored = session.get(CertificateRequest, body.request_id)
            if stored is not None:
                if stored.body_digest is not None and stored.body_digest != digest:
                    return conflict("request_id_reused")
                log.info("request.replayed request_id=%s status=%s", body.request_id, stored.status)
                return _answer_of(stored)
            now = utc_now()
            answer, document = self._decide(session, body, now)
            session.add(CertificateRequest(
                request_id=body.request_id, body_digest=digest, device_id=body.device_id,
                status=answer.body["status"], http_status=answer.http_status,
                answer=_answer_text(answer), created_at=iso_utc(now)))
            if document is not None:
                session.flush()
                session.add(document)
        if document is not None:
            log.info("request.issued request_id=%s serial=%s service=%s device=%s",
                     body.request_id, document.serial, body.service_code, body.device_id)
        else:
            log.info("request.rejected request_id=%s reason=%s device=%s",
                     body.request_id, answer.body["reason"], body.device_id)
        return answer

    def eligibility(self, body: EligibilityBody) -> Answer:
        """Whether a request would be issued, payment aside; stores nothing."""
        with self._database.reading() as session:
            holder = _holder(session, body.service_code, body.national_number, body.card_number, "ar", utc_now())
        if isinstance(holder, str):
            log.info("request.not_eligible reason=%s device=%s", holder, body.device_id)
            return Answer(200, {"eligible": False, "reason": holder})
        return Answer(200, {"eligible": True})

    def _decide(self, session: Session, body: CertificateRequestBody,
                now: datetime) -> tuple[Answer, IssuedDocumentRecord | None]:
        holder = _holder(session, body.service_code, body.national_number, body.card_number, body.language, now)
        if isinstance(holder, str):
            return rejected(holder), None
        service, citizen, fields = holder
        payment_problem = self._payment_problem(session, body, service)
        if payment_problem is not None:
            return rejected(payment_problem), None

        serial = self._new_serial(session, now.date())
        title = dict(service.names)
        verification = signing.sign(
            self._signing_key, serial=serial, kind=service.code,
            issued_at=now.astimezone(zoneinfo.ZoneInfo(body.time_zone)) if body.time_zone else now,
            place=body.place.model_dump() if body.place else None, holder_ar=citizen.full_name_ar(),
            content_digest=content_digest(title, fields))
        document = IssuedDocument(request_id=body.request_id, serial=serial, service_code=service.code,
                                  title=title, fields=fields, issued_at=iso_utc(now), verification=verification)
        record = IssuedDocumentRecord(serial=serial, request_id=body.request_id, service_code=service.code,
                                      national_number=citizen.national_number, payment_id=body.payment_id,
                                      issued_at=document.issued_at,
                                      document=canonical_json(document.to_json()).decode("utf-8"))
        return Answer(200, {"status": AnswerStatus.ISSUED, "document": document.to_json()}), record

    @staticmethod
    def _payment_problem(session: Session, body: CertificateRequestBody, service: Service) -> str | None:
        charge = session.get(GatewayCharge, body.payment_id)
        if charge is None:
            return "payment_not_found"
        if charge.status != "approved":
            return "payment_not_approved"
        if charge.device_id != body.device_id:
            return "payment_device_mismatch"
        if (charge.amount_minor, charge.currency) != (service.fee.amount_minor, service.fee.currency):
            return "payment_amount_mismatch"
        if charge.refunds:
            return "payment_refunded"
        used = session.scalar(select(IssuedDocumentRecord.serial).where(
            IssuedDocumentRecord.payment_id == body.payment_id))
        if used is not None:
            return "payment_already_used"
        return None

    @staticmethod
    def _new_serial(session: Session, today: date) -> str:
        while True:
            serial = "%d-%s" % (today.year, "".join(secrets.choice(_SERIAL_ALPHABET) for _ in range(8)))
            if session.get(IssuedDocumentRecord, serial) is None:
                return serial

    def void(self, request_id: str) -> Answer:
        """Void the document of `request_id` (the kiosk could not deliver it and refunded)."""
        with self._database.writing() as session:
            stored = session.get(CertificateRequest, request_id)
            now = iso_utc(utc_now())
            if stored is None:
                stored = CertificateRequest(
                    request_id=request_id, body_digest=None, device_id=None, status="voided",
                    http_status=422, answer=_answer_text(rejected("request_voided")),
                    created_at=now, voided_at=now)
                session.add(stored)
            document = session.scalar(select(IssuedDocumentRecord).where(
                IssuedDocumentRecord.request_id == request_id))
            if stored.voided_at is None:
                stored.voided_at = now
                if document is not None:
                    document.voided_at = now
                    # The document is void: a retry of the request must never get it back.
                    replay = Answer(422, {"status": AnswerStatus.VOIDED, "reason": "request_voided",
                                          "request_id": request_id, "serial": document.serial, "voided_at": now})
                    stored.status, stored.http_status, stored.answer = "voided", 422, _answer_text(replay)
                log.info("request.voided request_id=%s serial=%s", request_id,
                         document.serial if document else "none")
            return Answer(200, {"status": AnswerStatus.VOIDED, "request_id": request_id,
                                "serial": document.serial if document else None, "voided_at": stored.voided_at})
