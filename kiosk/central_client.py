"""The kiosk's side of the central service, over HTTP.

Central cannot be reached (link down, timeout, a 5xx, an unreadable answer)
is part of normal life: it comes back as a value (UNREACHABLE, or None from
``deliver``) and the caller asks again with the same request id, which
central answers idempotently. :class:`~kiosk.errors.CentralError` is kept for
an answer that can never succeed (a request id reused with another body, a
body central calls invalid). Nothing here logs or raises with personal data.

The pre-check before a charge sends the fee about to be charged and the
version of the catalogue the kiosk shows; central answers with its current
fee and version, read strictly (a garbled fee is UNREACHABLE: nothing is
charged). The catalogue carries its version (missing: "").

Every call has a timeout, TLS certificates are always verified (against the
system's authorities, or against central's own CA when the kiosk pins it),
and only the catalogue, a GET, is ever retried by the transport: a POST is
sent once, and the outbox asks again later under the same request id.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from requests_http_signature import HTTPSignatureAuth, algorithms
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kiosk import wire
from kiosk.catalogue import Catalogue
from kiosk.documents import IssuedDocument
from kiosk.errors import CentralError
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.card_proof import CHALLENGE_LENGTH, CardProof
from kiosk.ports.central import Central, Challenge, Eligibility, EligibilityAnswer
from kiosk.wire import AnswerStatus

log = logging.getLogger(__name__)

_RETRY_LATER = frozenset({408, 425, 429})
_VERSION = re.compile(r"^[A-Za-z0-9._:-]{0,64}$")     # a catalogue version, as central gives it

# Connecting takes at most this long (or timeout_s, when shorter); waiting for
# the answer takes up to timeout_s.
CONNECT_TIMEOUT_S = 3.0

# What the transport itself may raise: requests' errors, the odd urllib3 error
# that requests lets through unwrapped, and an OSError (a pinned CA file gone).
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def _no_retries() -> Retry:
    """Each request is sent once; an error or a 5xx goes back to the caller as it came."""
    return Retry(total=0, read=False, redirect=False)


def _catalogue_retries() -> Retry:
    """The catalogue is a GET and may be asked twice more: when the connection could not
    be made, or central answered 502, 503 or 504. A read that timed out is not asked
    again (the timeout is already the longest wait), nor is a Retry-After obeyed (it
    could hold the kiosk for as long as central likes); the last 5xx answer is returned."""
    return Retry(total=2, connect=2, read=False, status=2, other=0, redirect=False, backoff_factor=0.2,
                 status_forcelist=frozenset({502, 503, 504}), allowed_methods=frozenset({"GET"}),
                 respect_retry_after_header=False, raise_on_status=False)


class CentralUnreachable(CentralError):
    """Central could not be reached or gave no usable answer; try again later."""


class SubmitStatus(enum.Enum):
    ISSUED = "issued"
    REJECTED = "rejected"
    VOIDED = "voided"             # issued once, voided since: not issued, and never will be
    UNREACHABLE = "unreachable"   # retry with the same request id


@dataclass(frozen=True)
class SubmitResult:
    status: SubmitStatus
    document: IssuedDocument | None = None   # set when ISSUED
    reason: str | None = None                # central's reason code, set when REJECTED or VOIDED


@dataclass(frozen=True)
class TelemetryReply:
    """Central's answer to a telemetry call, as it came: read by kiosk/telemetry.py."""

    http_status: int
    body: dict


class VoidStatus(enum.Enum):
    VOIDED = "voided"
    UNREACHABLE = "unreachable"   # retry with the same request id


class _Garbled(Exception):
    """Central's answer does not have the expected shape."""


def _text_map(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _Garbled("not a map of texts")


def _code(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Garbled("%s without a code" % what)
    return value


def _names(value: Any, what: str) -> None:
    _text_map(value)
    if not value.get("ar"):
        raise _Garbled("%s without an Arabic name" % what)


def _version(value: Any) -> str:
    """A catalogue version: short text; missing (None) is "" (a central from before versions)."""
    if value is None:
        return ""
    if not isinstance(value, str) or not _VERSION.match(value):
        raise _Garbled("a catalogue version that is not a short code")
    return value


def _money(value: Any) -> Money:
    """``{"amount_minor": int, "currency": str}``: a positive whole amount in a currency the kiosk knows."""
    if not isinstance(value, dict) or set(value) != {"amount_minor", "currency"}:
        raise _Garbled("a fee that is not an amount and a currency")
    amount = value["amount_minor"]
    if type(amount) is not int or amount <= 0 or not isinstance(value["currency"], str):
        raise _Garbled("a fee that is not a positive whole number of minor units")
    return Money.of(amount, value["currency"])        # ValueError: a currency the kiosk does not handle


def _minor(value: Any, what: str) -> int:
    if type(value) is not int or value <= 0:
        raise _Garbled("%s is not a positive whole number of minor units" % what)
    return value


def _offline(value: Any) -> None:
    """A service's offline policy: missing or ``{"mode": "online_only"}``, or ``{"mode": "claim",
    "max_fee_minor": int, "daily_cap_minor": int}`` with a day's cap of at least one payment."""
    if value is None:
        return
    if not isinstance(value, dict) or value.get("mode") not in ("online_only", "claim"):
        raise _Garbled("a service's offline policy is not one the kiosk knows")
    if value["mode"] == "claim" and _minor(value.get("daily_cap_minor"), "a daily cap") < \
            _minor(value.get("max_fee_minor"), "an offline fee limit"):
        raise _Garbled("a service's daily offline cap is below its fee limit")


def _catalogue(data: Any) -> Catalogue:
    """A Catalogue from central's JSON, checked strictly before it is built: codes and
    Arabic names present and unique, every service's category among the categories,
    governorates a list of codes, a rank a positive whole number or null, an offline
    policy one the kiosk knows (missing: online only), the version short text (missing: "")."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise _Garbled("catalogue without a list of services")
    version = _version(data.get("version"))
    categories = data.get("categories", [])
    if not isinstance(categories, list):
        raise _Garbled("catalogue.categories is not a list")
    category_codes: set[str] = set()
    for category in categories:
        if not isinstance(category, dict):
            raise _Garbled("a category is not an object")
        code = _code(category.get("code"), "category")
        if code in category_codes:
            raise _Garbled("a category given twice")
        category_codes.add(code)
        _names(category.get("names"), "category")
    service_codes: set[str] = set()
    for service in data["services"]:
        if not isinstance(service, dict):
            raise _Garbled("a service is not an object")
        code = _code(service.get("code"), "service")
        if code in service_codes:
            raise _Garbled("a service given twice")
        service_codes.add(code)
        _names(service.get("names"), "service")
        category = service.get("category", "")
        if not isinstance(category, str) or (category_codes and category not in category_codes):
            raise _Garbled("a service in no known category")
        governorates = service.get("governorates", [])
        if not isinstance(governorates, list) or not all(isinstance(g, str) and g for g in governorates):
            raise _Garbled("a service's governorates are not a list of codes")
        rank = service.get("rank")
        if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 1):
            raise _Garbled("a service's rank is not a positive whole number")
        _offline(service.get("offline"))
    return dataclasses.replace(Catalogue.from_json(data), version=version)


def catalogue_from_json(data: Any) -> Catalogue:
    """A Catalogue from central's JSON (served now, or kept by the kiosk), checked strictly;
    ValueError when it is not one."""
    try:
        return _catalogue(data)
    except (ValueError, KeyError, TypeError, _Garbled) as exc:     # ValueError: bad money
        raise ValueError("not a catalogue: %s" % (exc if isinstance(exc, _Garbled) else type(exc).__name__)) \
            from None


def _document(data: Any) -> IssuedDocument:
    """An IssuedDocument from central's JSON, checked strictly before it is built."""
    if not isinstance(data, dict):
        raise _Garbled("document is not an object")
    for key in ("request_id", "serial", "service_code", "issued_at", "verification"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _Garbled("document.%s missing" % key)
    _text_map(data.get("title"))
    fields = data.get("fields")
    if not isinstance(fields, list):
        raise _Garbled("document.fields is not a list")
    for field in fields:
        if not isinstance(field, dict) or not isinstance(field.get("value"), str):
            raise _Garbled("document.fields has a bad field")
        _text_map(field.get("label"))
    return IssuedDocument.from_json(data)


def _checked_answer(kind: MessageKind, message: dict, answer: Any) -> dict:
    """`answer` when it is a well-formed final answer to `message`, else _Garbled."""
    if not isinstance(answer, dict):
        raise _Garbled("answer is not an object")
    status = answer.get("status")
    if status == AnswerStatus.REJECTED and kind in (MessageKind.CERTIFICATE_REQUEST, MessageKind.CLAIM_COLLECTED):
        if not isinstance(answer.get("reason"), str) or not answer["reason"]:
            raise _Garbled("rejection without a reason")
    elif status == AnswerStatus.ISSUED and kind is MessageKind.CERTIFICATE_REQUEST:
        document = _document(answer.get("document"))
        if document.request_id != message["request_id"] or document.service_code != message["service_code"]:
            raise _Garbled("document is for another request")
    elif status == AnswerStatus.COLLECTED and kind is MessageKind.CLAIM_COLLECTED:
        if answer.get("serial") != message["serial"]:
            raise _Garbled("collection of another document")
    elif status == AnswerStatus.VOIDED and kind is MessageKind.VOID_REQUEST:
        if answer.get("request_id") != message["request_id"]:
            raise _Garbled("void of another request")
    elif status == AnswerStatus.VOIDED and kind is MessageKind.CERTIFICATE_REQUEST:
        # A request sent again after its document was voided: a final "not issued",
        # whatever else the answer holds (never a document to print).
        if answer.get("request_id") != message["request_id"]:
            raise _Garbled("void of another request")
    else:
        raise _Garbled("unexpected status")
    return answer


def signed_by(device_id: str, device_key: Ed25519PrivateKey) -> HTTPSignatureAuth:
    """What signs every call of the kiosk `device_id` (RFC 9421): central's check is central/device_auth.py."""
    return HTTPSignatureAuth(signature_algorithm=algorithms.ED25519, key_id=device_id, use_nonce=True,
                             covered_component_ids=wire.SIGNED_COMPONENTS,
                             key=device_key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))


class CentralClient(Central):
    """Central's API for one kiosk, over HTTP. Safe to share between threads: the session is
    set up once here and not changed afterwards, and its connection pool is
    thread-safe.

    `ca_file` (a PEM file of certificate authorities) pins central's CA: central's
    certificate is then checked against it instead of the system's authorities.

    `device_key` (the kiosk's own Ed25519 key, made by `kiosk provision`) signs every
    call (HTTP Message Signatures, RFC 9421: method, authority, target URI and the
    body's digest, a creation time and a nonce, the device id as key id). Without
    one, central refuses every call but the public ones; a refusal of the device
    (``device_refused``) puts the kiosk out of service, and what the outbox holds
    waits for it to be enrolled again.
    """

    def __init__(self, base_url: str, *, device_id: str, timeout_s: float = 10.0,
                 ca_file: str | os.PathLike[str] | None = None,
                 device_key: Ed25519PrivateKey | None = None) -> None:
        self.device_id = device_id
        self._refused: str | None = None
        self._base = base_url.rstrip("/")
        self._timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
        if ca_file is not None and not os.path.exists(ca_file):
            raise FileNotFoundError("central's CA file %s does not exist" % os.fspath(ca_file))
        self._http = requests.Session()
        self._http.verify = os.fspath(ca_file) if ca_file is not None else True
        self._http.headers["User-Agent"] = "citizen-kiosk/%s" % device_id
        if device_key is not None:
            self._http.auth = signed_by(device_id, device_key)
        self._http.mount("http://", HTTPAdapter(max_retries=_no_retries()))
        self._http.mount("https://", HTTPAdapter(max_retries=_no_retries()))
        # The longest matching prefix picks the adapter: only the catalogue gets retries.
        self._http.mount(self._base + wire.CATALOGUE, HTTPAdapter(max_retries=_catalogue_retries()))

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call to central with the timeouts and TLS settings every call has. `verify`
        is passed on each call so that a CA bundle named in the environment
        (REQUESTS_CA_BUNDLE) cannot replace a pinned CA. Redirects are not followed."""
        response = self._http.request(method, self._base + path, timeout=self._timeout, verify=self._http.verify,
                                      allow_redirects=False, **kwargs)
        if response.status_code in (401, 403):
            reason = self._reason(response)
            if reason == wire.REPLAYED:      # central saw this signature already (a transport's retry)
                return response
            reason = reason if reason in wire.DEVICE_REFUSALS else "unauthenticated"
            if reason != self._refused:
                log.error("central.device_refused reason=%s", reason)
            self._refused = reason
        elif response.status_code < 500 and response.status_code not in _RETRY_LATER:
            if self._refused is not None:
                log.info("central.device_accepted")
            self._refused = None
        return response

    def device_refused(self) -> str | None:
        return self._refused

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CentralClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def fetch_catalogue(self) -> Catalogue:
        """The services (fees, categories, governorates, ranks) and their categories. Raises
        CentralUnreachable (a CentralError) when central cannot be reached or answers something
        unreadable or inconsistent."""
        try:
            return catalogue_from_json(self.fetch_signed_catalogue())
        except ValueError:
            log.error("central.answer_garbled call=catalogue")
            raise CentralUnreachable("central's catalogue is unreadable") from None

    def fetch_signed_catalogue(self) -> dict:
        """The catalogue as central served it, its signature included (checked by the caller,
        kiosk.catalogue_supply). CentralUnreachable when central cannot be reached, or answers
        with something else than a JSON object."""
        try:
            response = self._call("GET", wire.CATALOGUE)
        except _TRANSPORT_ERRORS as exc:
            log.warning("central.unreachable call=catalogue error=%s", type(exc).__name__)
            raise CentralUnreachable("central unreachable (%s)" % type(exc).__name__) from None
        if response.status_code != 200:
            log.warning("central.unavailable call=catalogue http=%d", response.status_code)
            raise CentralUnreachable("central answered HTTP %d to the catalogue" % response.status_code)
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            log.error("central.answer_garbled call=catalogue")
            raise CentralUnreachable("central's catalogue is unreadable")
        return document

    def challenge(self) -> Challenge | None:
        """A fresh challenge from central for the card in the reader; None when central cannot be
        asked or answers something else than an id and 32 bytes."""
        try:
            response = self._call("POST", wire.CHALLENGES, json={})
        except _TRANSPORT_ERRORS as exc:
            log.info("central.unreachable call=challenge error=%s", type(exc).__name__)
            return None
        if response.status_code != 200:
            log.warning("central.unavailable call=challenge http=%d", response.status_code)
            return None
        try:
            data = response.json()
            nonce = base64.b64decode(data["challenge"], validate=True)
            if not wire.is_id(data["challenge_id"]) or len(nonce) != CHALLENGE_LENGTH:
                raise _Garbled("not an id and %d bytes" % CHALLENGE_LENGTH)
        except (ValueError, KeyError, TypeError, _Garbled) as exc:
            log.error("central.answer_garbled call=challenge problem=%s",
                      exc if isinstance(exc, _Garbled) else type(exc).__name__)
            return None
        return Challenge(data["challenge_id"], nonce)

    def check_eligibility(self, *, service_code: str, challenge: Challenge, proof: CardProof, fee: Money,
                          catalogue_version: str) -> EligibilityAnswer:
        """Asked before the fee is charged, so that nobody pays for a document central
        would refuse, nor while central cannot be reached, nor a fee central no longer
        asks. `proof` is the card's answer to central's `challenge`; `fee` is what the
        kiosk is about to charge, `catalogue_version` the version of the catalogue it
        shows; the answer carries central's current fee for the service and its
        catalogue's version (the caller compares them), and the presence the card
        proved. An answer that is unreadable, or eligible without a fee or a presence,
        is UNREACHABLE: do not charge."""
        try:
            response = self._call("POST", wire.ELIGIBILITY, json={
                "service_code": service_code, "challenge_id": challenge.challenge_id,
                "card_proof": proof.to_json(), "fee": fee.to_json(), "catalogue_version": catalogue_version})
        except _TRANSPORT_ERRORS as exc:
            log.info("central.unreachable call=eligibility error=%s", type(exc).__name__)
            return EligibilityAnswer(Eligibility.UNREACHABLE)
        if response.status_code != 200:
            log.warning("central.unavailable call=eligibility http=%d", response.status_code)
            return EligibilityAnswer(Eligibility.UNREACHABLE)
        try:
            answer = self._eligibility_answer(response.json())
        except (ValueError, _Garbled) as exc:   # ValueError: not JSON, or a currency the kiosk does not handle
            log.error("central.answer_garbled call=eligibility problem=%s",
                      exc if isinstance(exc, _Garbled) else "not JSON or an unknown currency")
            return EligibilityAnswer(Eligibility.UNREACHABLE)
        if answer.eligibility is Eligibility.NOT_ELIGIBLE:
            log.info("central.not_eligible reason=%s", self._reason(response))
        if answer.fee is not None and answer.fee != fee:
            log.info("central.fee_changed service=%s version=%s", service_code, answer.catalogue_version or "-")
        return answer

    def waiting_documents(self, *, challenge: Challenge, proof: CardProof) -> tuple[IssuedDocument, ...] | None:
        """The documents claimed earlier that central issued and that wait for the holder of the card
        that signed `challenge`, oldest first; None when central cannot be asked or answers something
        unreadable (nothing is shown); () when the card did not prove itself to central."""
        try:
            response = self._call("POST", wire.CLAIMS_WAITING, json={
                "challenge_id": challenge.challenge_id, "card_proof": proof.to_json()})
        except _TRANSPORT_ERRORS as exc:
            log.info("central.unreachable call=claims_waiting error=%s", type(exc).__name__)
            return None
        if response.status_code == 422:
            log.info("central.claims_refused reason=%s", self._reason(response))
            return ()
        if response.status_code != 200:
            log.warning("central.unavailable call=claims_waiting http=%d", response.status_code)
            return None
        try:
            data = response.json()
            if not isinstance(data, dict) or not isinstance(data.get("documents"), list):
                raise _Garbled("no list of documents")
            documents = tuple(_document(item) for item in data["documents"])
        except (ValueError, KeyError, TypeError, _Garbled) as exc:
            log.error("central.answer_garbled call=claims_waiting problem=%s",
                      exc if isinstance(exc, _Garbled) else type(exc).__name__)
            return None
        log.info("central.claims_waiting count=%d", len(documents))
        return documents

    @staticmethod
    def _eligibility_answer(data: Any) -> EligibilityAnswer:
        """``{"eligible": bool, ["reason",] "fee": money or null, "catalogue_version": str}``,
        checked strictly; an eligible answer must name the fee."""
        if not isinstance(data, dict) or not isinstance(data.get("eligible"), bool):
            raise _Garbled("no eligible flag")
        fee = _money(data["fee"]) if data.get("fee") is not None else None
        if data["eligible"] and fee is None:
            raise _Garbled("eligible without a fee")
        presence = data.get("presence_id", "")
        if data["eligible"] and not wire.is_id(presence):
            raise _Garbled("eligible without a presence")
        return EligibilityAnswer(Eligibility.ELIGIBLE if data["eligible"] else Eligibility.NOT_ELIGIBLE, fee=fee,
                                 catalogue_version=_version(data.get("catalogue_version")),
                                 presence_id=presence if data["eligible"] else "")

    def submit_request(self, request_id: str, *, service_code: str, presence_id: str, language: str,
                       payment_id: str, place: dict[str, str] | None = None) -> SubmitResult:
        """Ask for the certificate paid by `payment_id`, for the card that proved `presence_id`, issued
        at `place` (``{"ar": ..., "en": ...}``, signed into its QR code). UNREACHABLE means: ask again
        later with the same request_id and the same details (never a second document)."""
        message = {"request_id": request_id, "service_code": service_code, "presence_id": presence_id,
                   "language": language, "payment_id": payment_id}
        if place is not None:
            message["place"] = place
        answer = self.deliver(MessageKind.CERTIFICATE_REQUEST, message)
        if answer is None:
            return SubmitResult(SubmitStatus.UNREACHABLE)
        if answer["status"] == AnswerStatus.ISSUED:
            return SubmitResult(SubmitStatus.ISSUED, document=_document(answer["document"]))
        if answer["status"] == AnswerStatus.VOIDED:
            return SubmitResult(SubmitStatus.VOIDED, reason=str(answer.get("reason") or "request_voided"))
        return SubmitResult(SubmitStatus.REJECTED, reason=answer["reason"])

    def void_request(self, request_id: str) -> VoidStatus:
        """Void the document of `request_id`: it could not be delivered and was refunded."""
        answer = self.deliver(MessageKind.VOID_REQUEST, {"request_id": request_id})
        return VoidStatus.UNREACHABLE if answer is None else VoidStatus.VOIDED

    def deliver(self, kind: MessageKind | str, payload: dict) -> dict | None:
        """Send one outbox message and return central's final answer as JSON.

        `kind` is a MessageKind or its value. CERTIFICATE_REQUEST: `payload` is the
        body of POST /requests, passed on as it is (``device_id`` is filled in when
        missing; ``place``, ``{"ar": ..., "en": ...}``, goes along when present); the answer
        is ``{"status": "issued", "document": ...}``, ``{"status": "rejected", "reason": ...}``,
        or, for a request sent again after its document was voided,
        ``{"status": "voided", "reason": "request_voided", ...}``: final, and not issued.
        VOID_REQUEST: `payload` is ``{"request_id": ...}``; the answer is
        ``{"status": "voided", ...}``. CLAIM_COLLECTED: `payload` is ``{"serial": ..., "request_id":
        ...}`` (the claim's); the answer is ``{"status": "collected", "serial", "collected_at"}``, or
        ``{"status": "rejected", "reason"}`` for a document that may not be collected (voided).
        Any other kind is not central's: CentralError.
        None: central cannot take it now (retry later). CentralError: never will.
        """
        try:
            kind = MessageKind(kind)
        except (ValueError, TypeError):
            raise CentralError("unknown outbox message kind %r" % (kind,)) from None
        if kind is MessageKind.CERTIFICATE_REQUEST:
            message = dict(payload)
            path = wire.REQUESTS
        elif kind is MessageKind.VOID_REQUEST:
            message = dict(payload)
            path = wire.void_path(str(payload.get("request_id", "")))
        elif kind is MessageKind.CLAIM_COLLECTED:
            message = dict(payload)
            if not wire.is_id(message.get("serial")):
                raise CentralError("claim_collected without a serial")
            path = wire.claim_collected_path(message["serial"])
        else:
            raise CentralError("outbox message kind %r is not for central" % kind.value)
        request_id = message.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise CentralError("%s without a request id" % kind.value)

        try:
            body = message if kind is MessageKind.CERTIFICATE_REQUEST else None
            response = self._call("POST", path, json=body)
        except _TRANSPORT_ERRORS as exc:
            log.info("central.unreachable kind=%s request_id=%s error=%s", kind.value, request_id,
                     type(exc).__name__)
            return None
        code = response.status_code
        if code in (401, 403):
            # This kiosk is not served now (revoked, not enrolled yet), or the call was taken for a replay:
            # the message waits, and goes again signed anew.
            log.warning("central.not_served kind=%s request_id=%s http=%d reason=%s", kind.value, request_id, code,
                        self._reason(response))
            return None
        if code >= 500 or code in _RETRY_LATER:
            log.warning("central.unavailable kind=%s request_id=%s http=%d", kind.value, request_id, code)
            return None
        if code not in (200, 422):
            reason = self._reason(response)
            log.error("central.refused kind=%s request_id=%s http=%d reason=%s", kind.value, request_id, code,
                      reason)
            raise CentralError("central refused %s %s: HTTP %d, %s" % (kind.value, request_id, code, reason))
        try:
            answer = _checked_answer(kind, message, response.json())
        except (ValueError, _Garbled) as exc:  # ValueError: not JSON at all
            log.error("central.answer_garbled kind=%s request_id=%s http=%d problem=%s", kind.value, request_id, code,
                      exc if isinstance(exc, _Garbled) else "not JSON")
            return None
        if answer["status"] == AnswerStatus.REJECTED:
            log.info("central.rejected request_id=%s reason=%s", request_id, answer["reason"])
        elif answer["status"] == AnswerStatus.VOIDED and kind is MessageKind.CERTIFICATE_REQUEST:
            log.info("central.request_voided request_id=%s", request_id)
        return answer

    def send_telemetry(self, path: str, body: dict) -> TelemetryReply | None:
        """POST a telemetry body (kiosk/telemetry.py) to `path`, once: central's HTTP status and its JSON
        object ({} when it sent none), or None when central cannot be reached. A refusal of this kiosk
        (401, 403) is remembered as every call's is (`device_refused`)."""
        try:
            response = self._call("POST", path, json=body)
        except _TRANSPORT_ERRORS as exc:
            log.info("central.unreachable call=telemetry error=%s", type(exc).__name__)
            return None
        try:
            data = response.json()
        except ValueError:
            data = None
        return TelemetryReply(response.status_code, data if isinstance(data, dict) else {})

    def fetch_signed_announcements(self) -> dict:
        """Central's announcements for the attract screen as it served them, signature included (checked
        by the caller, kiosk.catalogue_supply); CentralUnreachable when central cannot be reached or
        answers with something else than a JSON object."""
        try:
            response = self._call("GET", wire.ANNOUNCEMENTS)
        except _TRANSPORT_ERRORS as exc:
            log.info("central.unreachable call=announcements error=%s", type(exc).__name__)
            raise CentralUnreachable("central unreachable (%s)" % type(exc).__name__) from None
        try:
            document = response.json() if response.status_code == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            log.warning("central.unavailable call=announcements http=%d", response.status_code)
            raise CentralUnreachable("central answered HTTP %d to the announcements" % response.status_code)
        return document

    def report_command(self, command_id: str, outcome: str, reason: str | None) -> bool | None:
        """What this kiosk did with central's command `command_id` (kiosk/commands.py): True once central
        holds it, or never will (it knows no such command); None when it cannot be told now."""
        return self._command_call("result", wire.command_result_path(command_id),
                                  {"outcome": outcome, "reason": reason})

    def send_command_logs(self, command_id: str, lines: list[str], dropped: int) -> bool | None:
        """The log lines a collect-logs command asked for: True once central holds them, False when it
        refuses them for good, None when it cannot be told now."""
        return self._command_call("logs", wire.command_logs_path(command_id), {"lines": lines, "dropped": dropped})

    def _command_call(self, call: str, path: str, body: dict) -> bool | None:
        try:
            response = self._call("POST", path, json=body)
        except _TRANSPORT_ERRORS as exc:
            log.info("central.unreachable call=command_%s error=%s", call, type(exc).__name__)
            return None
        code = response.status_code
        if code == 200 or (code == 404 and self._reason(response) == wire.UNKNOWN_COMMAND):
            return True
        if code in (400, 422):
            log.error("central.refused call=command_%s http=%d reason=%s", call, code, self._reason(response))
            return False
        log.warning("central.unavailable call=command_%s http=%d", call, code)
        return None

    @staticmethod
    def _reason(response: requests.Response) -> str:
        """Central's reason code for a refusal, for a log line (codes only, never values)."""
        try:
            reason = response.json().get("reason")
        except (ValueError, AttributeError):
            return "unreadable"
        return reason if isinstance(reason, str) and reason.isidentifier() else "unreadable"
