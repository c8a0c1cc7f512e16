"""The kiosk's side of the central service, over HTTP.

Central cannot be reached (link down, timeout, a 5xx, an unreadable answer)
is part of normal life: it comes back as a value (UNREACHABLE, or None from
``deliver``) and the caller asks again with the same request id, which
central answers idempotently. :class:`~kiosk.errors.CentralError` is kept for
an answer that can never succeed (a request id reused with another body, a
body central calls invalid). Nothing here logs or raises with personal data.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from kiosk.catalogue import Catalogue
from kiosk.documents import IssuedDocument
from kiosk.errors import CentralError

log = logging.getLogger(__name__)

# The outbox message kinds `deliver` knows.
CERTIFICATE_REQUEST = "certificate_request"
VOID_REQUEST = "void_request"

_RETRY_LATER = frozenset({408, 425, 429})


class CentralUnreachable(CentralError):
    """Central could not be reached or gave no usable answer; try again later."""


class SubmitStatus(enum.Enum):
    ISSUED = "issued"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"   # retry with the same request id


@dataclass(frozen=True)
class SubmitResult:
    status: SubmitStatus
    document: IssuedDocument | None = None   # set when ISSUED
    reason: str | None = None                # central's reason code, set when REJECTED


class VoidStatus(enum.Enum):
    VOIDED = "voided"
    UNREACHABLE = "unreachable"   # retry with the same request id


class Eligibility(enum.Enum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not eligible"     # central would refuse this document for this card
    UNREACHABLE = "unreachable"       # no answer: do not charge


class _Garbled(Exception):
    """Central's answer does not have the expected shape."""


def _text_map(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _Garbled("not a map of texts")


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


def _checked_answer(kind: str, message: dict, answer: Any) -> dict:
    """`answer` when it is a well-formed final answer to `message`, else _Garbled."""
    if not isinstance(answer, dict):
        raise _Garbled("answer is not an object")
    status = answer.get("status")
    if status == "rejected" and kind == CERTIFICATE_REQUEST:
        if not isinstance(answer.get("reason"), str) or not answer["reason"]:
            raise _Garbled("rejection without a reason")
    elif status == "issued" and kind == CERTIFICATE_REQUEST:
        document = _document(answer.get("document"))
        if document.request_id != message["request_id"] or document.service_code != message["service_code"]:
            raise _Garbled("document is for another request")
    elif status == "voided" and kind == VOID_REQUEST:
        if answer.get("request_id") != message["request_id"]:
            raise _Garbled("void of another request")
    else:
        raise _Garbled("unexpected status")
    return answer


class CentralClient:
    """Central's API for one kiosk. Safe to share between threads."""

    def __init__(self, base_url: str, *, device_id: str, timeout_s: float = 10.0) -> None:
        self.device_id = device_id
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout_s,
                                  headers={"user-agent": "citizen-kiosk/%s" % device_id})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CentralClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def fetch_catalogue(self) -> Catalogue:
        """The services and their fees. Raises CentralUnreachable (a CentralError) when
        central cannot be reached or answers something unreadable."""
        try:
            response = self._http.get("/catalogue")
        except httpx.HTTPError as exc:
            log.warning("central.unreachable call=catalogue error=%s", type(exc).__name__)
            raise CentralUnreachable("central unreachable (%s)" % type(exc).__name__) from None
        if response.status_code != 200:
            log.warning("central.unavailable call=catalogue http=%d", response.status_code)
            raise CentralUnreachable("central answered HTTP %d to the catalogue" % response.status_code)
        try:
            data = response.json()
            for service in data["services"]:
                if not isinstance(service["code"], str) or not service["code"]:
                    raise _Garbled("service without a code")
                _text_map(service["names"])
                if "ar" not in service["names"]:
                    raise _Garbled("service without an Arabic name")
            catalogue = Catalogue.from_json(data)
        except (ValueError, KeyError, TypeError, _Garbled):  # ValueError: not JSON, or bad money
            log.error("central.answer_garbled call=catalogue")
            raise CentralUnreachable("central's catalogue is unreadable") from None
        return catalogue

    def check_eligibility(self, *, service_code: str, national_number: str, card_number: str) -> Eligibility:
        """Asked before the fee is charged, so that nobody pays for a document
        central would refuse, nor while central cannot be reached."""
        try:
            response = self._http.post("/requests/eligibility", json={
                "device_id": self.device_id, "service_code": service_code,
                "national_number": national_number, "card_number": card_number})
        except httpx.HTTPError as exc:
            log.info("central.unreachable call=eligibility error=%s", type(exc).__name__)
            return Eligibility.UNREACHABLE
        try:
            answer = response.json() if response.status_code == 200 else None
            eligible = answer["eligible"] if isinstance(answer, dict) else None
        except (ValueError, KeyError):
            eligible = None
        if not isinstance(eligible, bool):
            log.warning("central.unavailable call=eligibility http=%d", response.status_code)
            return Eligibility.UNREACHABLE
        if not eligible:
            log.info("central.not_eligible reason=%s", self._reason(response))
        return Eligibility.ELIGIBLE if eligible else Eligibility.NOT_ELIGIBLE

    def submit_request(self, request_id: str, *, service_code: str, national_number: str, card_number: str,
                       language: str, payment_id: str) -> SubmitResult:
        """Ask for the certificate paid by `payment_id`. UNREACHABLE means: ask again
        later with the same request_id and the same details (never a second document)."""
        answer = self.deliver(CERTIFICATE_REQUEST, {
            "request_id": request_id, "service_code": service_code, "national_number": national_number,
            "card_number": card_number, "language": language, "payment_id": payment_id})
        if answer is None:
            return SubmitResult(SubmitStatus.UNREACHABLE)
        if answer["status"] == "issued":
            return SubmitResult(SubmitStatus.ISSUED, document=_document(answer["document"]))
        return SubmitResult(SubmitStatus.REJECTED, reason=answer["reason"])

    def void_request(self, request_id: str) -> VoidStatus:
        """Void the document of `request_id`: it could not be delivered and was refunded."""
        answer = self.deliver(VOID_REQUEST, {"request_id": request_id})
        return VoidStatus.UNREACHABLE if answer is None else VoidStatus.VOIDED

    def deliver(self, kind: str, payload: dict) -> dict | None:
        """Send one outbox message and return central's final answer as JSON.

        `kind` "certificate_request": `payload` is the body of POST /requests
        (``device_id`` is filled in when missing); the answer is
        ``{"status": "issued", "document": ...}`` or ``{"status": "rejected", "reason": ...}``.
        `kind` "void_request": `payload` is ``{"request_id": ...}``; the answer is
        ``{"status": "voided", ...}``.
        None: central cannot take it now (retry later). CentralError: never will.
        """
        if kind == CERTIFICATE_REQUEST:
            message = {"device_id": self.device_id, **payload}
            path = "/requests"
        elif kind == VOID_REQUEST:
            message = dict(payload)
            path = "/requests/%s/void" % quote(str(payload.get("request_id", "")), safe="")
        else:
            raise CentralError("unknown outbox message kind %r" % kind)
        request_id = message.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise CentralError("%s without a request id" % kind)

        try:
            response = self._http.post(path, json=message if kind == CERTIFICATE_REQUEST else None)
        except httpx.HTTPError as exc:
            log.info("central.unreachable kind=%s request_id=%s error=%s", kind, request_id, type(exc).__name__)
            return None
        code = response.status_code
        if code >= 500 or code in _RETRY_LATER:
            log.warning("central.unavailable kind=%s request_id=%s http=%d", kind, request_id, code)
            return None
        if code not in (200, 422):
            reason = self._reason(response)
            log.error("central.refused kind=%s request_id=%s http=%d reason=%s", kind, request_id, code, reason)
            raise CentralError("central refused %s %s: HTTP %d, %s" % (kind, request_id, code, reason))
        try:
            answer = _checked_answer(kind, message, response.json())
        except (ValueError, _Garbled) as exc:  # ValueError: not JSON at all
            log.error("central.answer_garbled kind=%s request_id=%s http=%d problem=%s", kind, request_id, code,
                      exc if isinstance(exc, _Garbled) else "not JSON")
            return None
        if answer["status"] == "rejected":
            log.info("central.rejected request_id=%s reason=%s", request_id, answer["reason"])
        return answer

    @staticmethod
    def _reason(response: httpx.Response) -> str:
        """Central's reason code for a refusal, for a log line (codes only, never values)."""
        try:
            reason = response.json().get("reason")
        except (ValueError, AttributeError):
            return "unreadable"
        return reason if isinstance(reason, str) and reason.isidentifier() else "unreadable"
