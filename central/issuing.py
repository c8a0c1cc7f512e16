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

Who asks is the device that signed the call (central/device_auth.py); for
whom, the card that proved itself (central/presence.py): the request names
the presence its pre-check made, or for a claim carries the card's signature
over the claim. A request id belongs to the device that sent it first:
another device gets 404 ``not_found`` for it, as for a void.

Rejection reasons a device sees: unknown_service, not_eligible (the one
refusal for everything about the citizen: a card that did not prove itself,
a citizen the registry does not know, another card, an expired card, and the
requirements of the kinds' layouts in central/seed/layouts.json; the precise
reason is in central's log only), payment_not_found, payment_not_approved,
payment_refunded (reversed or refunded at the acquirer),
payment_amount_mismatch, payment_already_used, request_voided.
"""

from __future__ import annotations

import json
import logging
import secrets
import zoneinfo
from datetime import date, datetime
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import AfterValidator, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from central import signing
from central.acquirer import AcquirerClient, LookupOutcome, PaymentLookup
from central.catalogue_store import find_service, load_catalogue
from central.certificates import NotApplicable, document_fields
from central.db import Database, iso_utc, utc_now
from central.models import CertificateRequest, Citizen, ClaimRecord, IssuedDocumentRecord
from central.presence import CardProofBody, Holder, Presence, ProvenBody
from central.wire import NOT_ELIGIBLE, AmountMinor, Answer, Body, Currency, Identifier, body_digest, \
    canonical_json, conflict, rejected
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
    """Who asks is the signing device; for whom, the card's proof: `presence_id` (a challenge the card
    signed at the pre-check), or for a claim the card's signature over the claim (`card_proof`, made at
    `taken_at`, kiosk.card_proof.claim_challenge)."""

    request_id: Identifier
    service_code: Identifier
    language: Literal["ar", "en"]
    payment_id: Identifier
    presence_id: Identifier | None = None
    place: Place | None = None
    time_zone: TimeZone | None = None    # the kiosk's: the signed issue time carries its offset
    claim: bool = False                  # taken while the kiosk could not reach central: collected at any kiosk
    claim_reference: Identifier | None = None
    card_proof: CardProofBody | None = None
    taken_at: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")] | None = None

    @model_validator(mode="after")
    def _one_proof(self) -> CertificateRequestBody:
        if self.claim and (self.card_proof is None or self.taken_at is None or self.presence_id is not None):
            raise ValueError("a claim carries the card's proof over the claim and its time")
        if not self.claim and (self.presence_id is None or self.card_proof is not None or self.taken_at is not None):
            raise ValueError("a request carries the presence its card proved")
        return self


def _digest(body: CertificateRequestBody) -> str:
    """The fields left unset are left out: the same request, sent again, has the same digest."""
    return body_digest(body, exclude=frozenset(name for name in ("place", "time_zone", "claim_reference",
                                                                   "presence_id", "card_proof", "taken_at")
                                               if getattr(body, name) is None))


class Fee(Body):
    amount_minor: AmountMinor
    currency: Currency


class EligibilityBody(ProvenBody):
    """Asked before the fee is charged: would the citizen whose card signed `challenge_id` get this
    document, and at what fee? `fee` is what the kiosk is about to charge, `catalogue_version` the
    version of the catalogue it shows ("" when it has none)."""

    service_code: Identifier
    fee: Fee
    catalogue_version: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{0,64}$")]


def _answer_of(row: CertificateRequest) -> Answer:
    return Answer(row.http_status, json.loads(row.answer))


def _answer_text(answer: Answer) -> str:
    """The answer as stored: key order kept, so a retry gets the very same bytes."""
    return json.dumps(answer.body, ensure_ascii=False, separators=(",", ":"))


def _holder(session: Session, service_code: str, holder: Holder, language: str,
            now: datetime) -> tuple[Service, Citizen, tuple] | str:
    """The service, the citizen and the document's fields, or why not (for central's log only)."""
    service = find_service(session, service_code)
    if service is None:
        return "unknown_service"
    citizen = session.get(Citizen, holder.national_number)
    if citizen is None:
        return "unknown_citizen"
    if citizen.card_number != holder.card_number:
        return "card_mismatch"
    if citizen.card_expires < now.date():
        return "card_expired"
    fields = document_fields(service.code, citizen, language)
    if isinstance(fields, NotApplicable):
        return fields.reason
    return service, citizen, fields


class Issuer:
    """Issues, refuses and voids certificate requests. `acquirer` is where payments are
    looked up; None when none is configured (every paid request is then unverifiable).
    `presence` tells whose card proved itself, for which device."""

    def __init__(self, database: Database, signing_key: Ed25519PrivateKey, presence: Presence,
                 acquirer: AcquirerClient | None = None) -> None:
        self._database = database
        self._signing_key = signing_key
        self._presence = presence
        self._acquirer = acquirer

    def submit(self, device_id: str, body: CertificateRequestBody) -> Answer:
        digest = _digest(body)
        with self._database.reading() as session:
            stored = session.get(CertificateRequest, body.request_id)
        if stored is not None:
            return self._replay(stored, device_id, body, digest)
        holder = self._holder_of(device_id, body)
        if holder is None:
            return self._store_refusal(device_id, body, digest, NOT_ELIGIBLE)
        with self._database.reading() as session:
            found = _holder(session, body.service_code, holder, body.language, utc_now())
        # The acquirer is asked outside the write lock (it may be slow), and only for a
        # request that would be issued: a refusal on the citizen's record needs no payment.
        lookup = None if isinstance(found, str) else self._look_up(device_id, body)
        if lookup is not None and lookup.outcome is LookupOutcome.UNREACHABLE:
            return payment_unverifiable()
        with self._database.writing() as session:
            stored = session.get(CertificateRequest, body.request_id)
            if stored is not None:       # a retry racing this one was answered first
                return self._replay(stored, device_id, body, digest)
            now = utc_now()
            decided = self._decide(session, body, holder, now, lookup)
            if decided is None:          # the record changed since it was read: the payment was not looked up
                return payment_unverifiable()
            answer, document = decided
            session.add(CertificateRequest(
                request_id=body.request_id, body_digest=digest, device_id=device_id,
                status=answer.body["status"], http_status=answer.http_status,
                answer=_answer_text(answer), created_at=iso_utc(now)))
            if document is not None:
                session.flush()
                session.add(document)
                if body.claim:
                    session.flush()
                    session.add(ClaimRecord(serial=document.serial, national_number=document.national_number,
                                            reference=body.claim_reference, device_id=device_id,
                                            created_at=iso_utc(now)))
        if document is not None:
            payment = lookup.payment if lookup is not None else None
            log.info("request.issued request_id=%s serial=%s service=%s device=%s terminal=%s claim=%s",
                     body.request_id, document.serial, body.service_code, device_id,
                     payment.terminal_id if payment and wire.is_id(payment.terminal_id) else "-",
                     "yes" if body.claim else "no")
        return answer

    def _holder_of(self, device_id: str, body: CertificateRequestBody) -> Holder | None:
        if body.claim:
            assert body.card_proof is not None and body.taken_at is not None
            return self._presence.holder_for_claim(device_id, body.card_proof, request_id=body.request_id,
                                                   service_code=body.service_code, taken_at=body.taken_at)
        assert body.presence_id is not None
        return self._presence.holder_for_request(device_id, body.presence_id, body.request_id)

    def _store_refusal(self, device_id: str, body: CertificateRequestBody, digest: str, reason: str) -> Answer:
        """A request whose card did not prove itself: refused, and answered the same way ever after."""
        answer = rejected(reason)
        with self._database.writing() as session:
            stored = session.get(CertificateRequest, body.request_id)
            if stored is not None:
                return self._replay(stored, device_id, body, digest)
            session.add(CertificateRequest(
                request_id=body.request_id, body_digest=digest, device_id=device_id, status="rejected",
                http_status=answer.http_status, answer=_answer_text(answer), created_at=iso_utc(utc_now())))
        log.info("request.rejected request_id=%s reason=not_proven device=%s", body.request_id, device_id)
        return answer

    @staticmethod
    def _replay(stored: CertificateRequest, device_id: str, body: CertificateRequestBody, digest: str) -> Answer:
        if stored.device_id is not None and stored.device_id != device_id:
            log.warning("request.other_device request_id=%s device=%s", body.request_id, device_id)
            return rejected("not_found", http_status=404)
        if stored.body_digest is not None and stored.body_digest != digest:
            return conflict("request_id_reused")
        log.info("request.replayed request_id=%s status=%s", body.request_id, stored.status)
        return _answer_of(stored)

    def _look_up(self, device_id: str, body: CertificateRequestBody) -> PaymentLookup:
        if self._acquirer is None:
            log.error("request.payment_unverifiable request_id=%s cause=no_acquirer device=%s",
                      body.request_id, device_id)
            return PaymentLookup(LookupOutcome.UNREACHABLE)
        lookup = self._acquirer.look_up(body.payment_id)
        if lookup.outcome is LookupOutcome.UNREACHABLE:
            log.warning("request.payment_unverifiable request_id=%s cause=acquirer device=%s",
                        body.request_id, device_id)
        return lookup

    def eligibility(self, device_id: str, body: EligibilityBody) -> Answer:
        """Whether a request would be issued, payment aside, for the citizen whose card just signed
        central's challenge, and central's fee for it now. The answer names the presence the card
        proved: the request that follows carries it."""
        holder = self._presence.prove(device_id, body.challenge_id, body.card_proof)
        with self._database.reading() as session:
            catalogue = load_catalogue(session)
            found = _holder(session, body.service_code, holder, "ar", utc_now()) if holder is not None \
                else "not_proven"
        service = catalogue.get(body.service_code)
        fee = service.fee.to_json() if service is not None else None
        if service is not None and (fee != body.fee.model_dump() or body.catalogue_version != catalogue.version):
            log.info("request.catalogue_stale service=%s fee_changed=%s kiosk_version=%s version=%s device=%s",
                     service.code, fee != body.fee.model_dump(), body.catalogue_version or "-", catalogue.version,
                     device_id)
        if isinstance(found, str):
            # The precise reason stays here: a device learns nothing of a citizen it may not.
            log.info("request.not_eligible reason=%s device=%s", found, device_id)
            return Answer(200, {"eligible": False, "reason": NOT_ELIGIBLE, "fee": fee,
                                "catalogue_version": catalogue.version})
        return Answer(200, {"eligible": True, "fee": fee, "catalogue_version": catalogue.version,
                            "presence_id": body.challenge_id})

    def _decide(self, session: Session, body: CertificateRequestBody, holder: Holder, now: datetime,
                lookup: PaymentLookup | None) -> tuple[Answer, IssuedDocumentRecord | None] | None:
        """The answer and the document to store; None when the payment was not looked up and must be."""
        found = _holder(session, body.service_code, holder, body.language, now)
        if isinstance(found, str):
            log.info("request.rejected request_id=%s reason=%s", body.request_id, found)
            return rejected(found if found == "unknown_service" else NOT_ELIGIBLE), None
        if lookup is None:
            return None
        service, citizen, fields = found
        payment_problem = self._payment_problem(session, body, service, lookup)
        if payment_problem is not None:
            log.info("request.rejected request_id=%s reason=%s", body.request_id, payment_problem)
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

    def void(self, device_id: str, request_id: str) -> Answer:
        """Void the document of `request_id` (the kiosk could not deliver it and refunded); only the
        device that asked for it may."""
        with self._database.writing() as session:
            stored = session.get(CertificateRequest, request_id)
            now = iso_utc(utc_now())
            if stored is not None and stored.device_id is not None and stored.device_id != device_id:
                log.warning("request.other_device request_id=%s device=%s call=void", request_id, device_id)
                return rejected("not_found", http_status=404)
            if stored is None:
                stored = CertificateRequest(
                    request_id=request_id, body_digest=None, device_id=device_id, status="voided",
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
