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

A request may be a claim (``"claim": true``, with the slip's
``"claim_reference"``): the kiosk took it while it could not reach central.
It is checked and issued like any other when it arrives, and its document
then awaits collection by its citizen at any kiosk (central/claims.py).

The payment is the acquirer's (central/acquirer.py): central looks the
payment id up there before it issues, and answers a request it cannot check
now (no acquirer configured, or no usable answer from it) with HTTP 503
``{"status": "error", "reason": "payment_unverifiable"}``, stored nowhere, so
the kiosk's outbox sends it again later. A request already answered is
answered again from the store, without asking the acquirer.

The pre-check before a charge (``eligibility``) names the fee the kiosk is
about to charge and the version of the catalogue it shows; central answers
with its own current fee for the service and its catalogue's version, so a
fee changed since the kiosk read the catalogue is shown before anything is
charged. A request whose payment is not central's current fee is refused.

Rejection reasons: unknown_service, unknown_citizen, card_mismatch,
card_expired, payment_not_found, payment_not_approved, payment_refunded
(reversed or refunded at the acquirer), payment_amount_mismatch,
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
from central.acquirer import AcquirerClient, LookupOutcome, PaymentLookup
from central.catalogue_store import find_service, load_catalogue
from central.certificates import NotApplicable, document_fields
from central.db import Database, iso_utc, utc_now
from central.models import CertificateRequest, Citizen, ClaimRecord, IssuedDocumentRecord
from central.wire import AmountMinor, Answer, Body, Currency, Identifier, body_digest, canonical_json, conflict, \
    rejected
from kiosk import wire
from kiosk.catalogue import Service
from kiosk.documents import IssuedDocument, content_digest
from kiosk.wire import AcquirerPaymentStatus, AnswerStatus

log = logging.getLogger(__name__)

_SERIAL_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"   # no 0/O, 1/I/L, U: read aloud without doubt

PAYMENT_UNVERIFIABLE = "payment_unverifiable"


def payment_unverifiable() -> Answer:
    """The payment cannot be checked now: a 503, which the kiosk's outbox sends again later."""
    return Answer(503, {"status": "error", "reason": PAYMENT_UNVERIFIABLE})


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
    claim: bool = False                  # taken while the kiosk could not reach central: collected at any kiosk
    claim_reference: Identifier | None = None


def _digest(body: CertificateRequestBody) -> str:
    """A body without a place, or not a claim, has the digest it had before places and claims existed:
    a retry of a request stored then is still the same request."""
    exclude = set()
    if body.place is None:
        exclude.add("place")
    if not body.claim and body.claim_reference is None:
        exclude |= {"claim", "claim_reference"}
    return body_digest(body, exclude=frozenset(exclude))


class Fee(Body):
    amount_minor: AmountMinor
    currency: Currency


class EligibilityBody(Body):
    """Asked before the fee is charged: would this citizen get this document, and at what fee?
    `fee` is what the kiosk is about to charge, `catalogue_version` the version of the
    catalogue it shows ("" when it has none)."""

    device_id: Identifier
    service_code: Identifier
    national_number: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    card_number: Annotated[str, Field(pattern=r"^SY[0-9]{10}$")]
    fee: Fee
    catalogue_version: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{0,64}$")]


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
    """Issues, refuses and voids certificate requests. `acquirer` is where payments are
    looked up; None when none is configured (every paid request is then unverifiable)."""

    def __init__(self, database: Database, signing_key: Ed25519PrivateKey,
                 acquirer: AcquirerClient | None = None) -> None:
        self._database = database
        self._signing_key = signing_key
        self._acquirer = acquirer

    def submit(self, body: CertificateRequestBody) -> Answer:
        digest = _digest(body)
        with self._database.reading() as session:
            stored = session.get(CertificateRequest, body.request_id)
            if stored is not None:
                return self._replay(stored, body, digest)
            holder = _holder(session, body.service_code, body.national_number, body.card_number, body.language,
                             utc_now())
        # The acquirer is asked outside the write lock (it may be slow), and only for a
        # request that would be issued: a refusal on the citizen's record needs no payment.
        lookup = None if isinstance(holder, str) else self._look_up(body)
        if lookup is not None and lookup.outcome is LookupOutcome.UNREACHABLE:
            return payment_unverifiable()
        with self._database.writing() as session:
            stored = session.get(CertificateRequest, body.request_id)
            if stored is not None:       # a retry racing this one was answered first
                return self._replay(stored, body, digest)
            now = utc_now()
            decided = self._decide(session, body, now, lookup)
            if decided is None:          # the record changed since it was read: the payment was not looked up
                return payment_unverifiable()
            answer, document = decided
            session.add(CertificateRequest(
                request_id=body.request_id, body_digest=digest, device_id=body.device_id,
                status=answer.body["status"], http_status=answer.http_status,
                answer=_answer_text(answer), created_at=iso_utc(now)))
            if document is not None:
                session.flush()
                session.add(document)
                if body.claim:
                    session.flush()
                    session.add(ClaimRecord(serial=document.serial, national_number=document.national_number,
                                            reference=body.claim_reference, device_id=body.device_id,
                                            created_at=iso_utc(now)))
        if document is not None:
            payment = lookup.payment if lookup is not None else None
            log.info("request.issued request_id=%s serial=%s service=%s device=%s terminal=%s claim=%s",
                     body.request_id, document.serial, body.service_code, body.device_id,
                     payment.terminal_id if payment and wire.is_id(payment.terminal_id) else "-",
                     "yes" if body.claim else "no")
        else:
            log.info("request.rejected request_id=%s reason=%s device=%s",
                     body.request_id, answer.body["reason"], body.device_id)
        return answer

    @staticmethod
    def _replay(stored: CertificateRequest, body: CertificateRequestBody, digest: str) -> Answer:
        if stored.body_digest is not None and stored.body_digest != digest:
            return conflict("request_id_reused")
        log.info("request.replayed request_id=%s status=%s", body.request_id, stored.status)
        return _answer_of(stored)

    def _look_up(self, body: CertificateRequestBody) -> PaymentLookup:
        if self._acquirer is None:
            log.error("request.payment_unverifiable request_id=%s cause=no_acquirer device=%s",
                      body.request_id, body.device_id)
            return PaymentLookup(LookupOutcome.UNREACHABLE)
        lookup = self._acquirer.look_up(body.payment_id)
        if lookup.outcome is LookupOutcome.UNREACHABLE:
            log.warning("request.payment_unverifiable request_id=%s cause=acquirer device=%s",
                        body.request_id, body.device_id)
        return lookup

    def eligibility(self, body: EligibilityBody) -> Answer:
        """Whether a request would be issued, payment aside, and central's fee for it now; stores nothing."""
        with self._database.reading() as session:
            catalogue = load_catalogue(session)
            holder = _holder(session, body.service_code, body.national_number, body.card_number, "ar", utc_now())
        service = catalogue.get(body.service_code)
        fee = service.fee.to_json() if service is not None else None
        if service is not None and (fee != body.fee.model_dump() or body.catalogue_version != catalogue.version):
            log.info("request.catalogue_stale service=%s fee_changed=%s kiosk_version=%s version=%s device=%s",
                     service.code, fee != body.fee.model_dump(), body.catalogue_version or "-", catalogue.version,
                     body.device_id)
        if isinstance(holder, str):
            log.info("request.not_eligible reason=%s device=%s", holder, body.device_id)
            return Answer(200, {"eligible": False, "reason": holder, "fee": fee,
                                "catalogue_version": catalogue.version})
        return Answer(200, {"eligible": True, "fee": fee, "catalogue_version": catalogue.version})

    def _decide(self, session: Session, body: CertificateRequestBody, now: datetime,
                lookup: PaymentLookup | None) -> tuple[Answer, IssuedDocumentRecord | None] | None:
        """The answer and the document to store; None when the payment was not looked up and must be."""
        holder = _holder(session, body.service_code, body.national_number, body.card_number, body.language, now)
        if isinstance(holder, str):
            return rejected(holder), None
        if lookup is None:
            return None
        service, citizen, fields = holder
        payment_problem = self._payment_problem(session, body, service, lookup)
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
    def _payment_problem(session: Session, body: CertificateRequestBody, service: Service,
                         lookup: PaymentLookup) -> str | None:
        """Why the acquirer's payment does not pay for this document; None when it does."""
        payment = lookup.payment
        if lookup.outcome is LookupOutcome.UNKNOWN or payment is None:
            return "payment_not_found"
        if payment.status is AcquirerPaymentStatus.DECLINED:
            return "payment_not_approved"
        if payment.status in (AcquirerPaymentStatus.REVERSED, AcquirerPaymentStatus.REFUNDED):
            return "payment_refunded"
        if (payment.amount_minor, payment.currency) != (service.fee.amount_minor, service.fee.currency):
            return "payment_amount_mismatch"
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
