"""The reference central service as a FastAPI application.

    GET  /api/v1/health
    GET  /api/v1/catalogue                    the services, their fees, the catalogue's version; signed
    POST /api/v1/requests/eligibility         the pre-check before a charge: eligible?, central's fee now
    POST /api/v1/requests                     issue a certificate (idempotent on request_id)
    POST /api/v1/requests/{request_id}/void   void it (idempotent)
    GET  /api/v1/documents/verify?payload=... check a printed QR code: issued (valid), voided, or invalid
    GET  /api/v1/signing-key                  the document-verification public key, PEM
    POST /api/v1/claims/waiting               documents claimed offline that wait for a card's holder
    POST /api/v1/claims/{serial}/collected    one of them printed for its citizen (idempotent)
    POST /api/v1/challenges                   a fresh challenge for the card in the kiosk's reader
    POST /api/v1/devices/enrol                a kiosk enrols its public key with a one-time code (central/devices.py)
    GET  /verify/{serial}[?lang=en]           the verification page for officials (central/verify_page.py)

Every call but the health check, enrolment, the document checks and the
signing key is a kiosk's, signed with its device key (central/device_auth.py):
the device id is the credential's, never a body's. Whatever central says
about a citizen, it says only about the holder of a card that has just signed
central's own challenge in that kiosk's reader (central/presence.py).

Central approves and holds no payment: it looks each request's payment id up
at the acquirer (central/acquirer.py), whose URL it is given.

Money is always ``{"amount_minor": int, "currency": str}``. A body that does
not validate is a 400 ``{"status": "invalid", "reason": "invalid_input",
"errors": [{"field", "problem"}]}``; no answer and no log line carries a
national number, a name or a card number.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from central import limits, signing, verify_page
from central.acquirer import AcquirerClient
from central.catalogue_store import load_catalogue, served_catalogue
from central.claims import Claims, WaitingBody
from central.device_auth import DeviceAuthenticator, DeviceRefused, refusal_response
from central.devices import Devices, EnrolBody
from central.presence import Presence
from central.db import Database, iso_utc, sqlite_path, utc_now
from central.issuing import CertificateRequestBody, EligibilityBody, Issuer
from central.models import IssuedDocumentRecord
from central.seeding import prepare_database
from central.wire import Answer
from kiosk import wire
from kiosk.issuer_keys import load_issuer_keys
from kiosk.documents import IssuedDocument
from kiosk.wire import AnswerStatus

log = logging.getLogger(__name__)



def _invalid_input(_request: Request, exc: Exception) -> JSONResponse:
    # Pydantic's error records carry the offending input: only where and what go out.
    errors = [{"field": ".".join(str(part) for part in error.get("loc", ())[1:]) or "(body)",
               "problem": error.get("type", "invalid")}
              for error in exc.errors()] if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"status": "invalid", "reason": "invalid_input", "errors": errors}, status_code=400)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    code = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    reason = {404: "not_found", 405: "method_not_allowed"}.get(code, "http_%d" % code)
    return JSONResponse({"status": "error", "reason": reason}, status_code=code)


def _verify_document(database: Database, public_keys: list[Ed25519PublicKey], payload: str) -> Answer:
    """The verdict on a scanned payload: issued and valid, voided (not valid, with the date), or invalid."""
    try:
        signed = signing.verify(payload, public_keys)
    except signing.InvalidPayload as exc:
        return Answer(422, {"status": "invalid", "valid": False, "reason": exc.reason})
    with database.reading() as session:
        record = session.get(IssuedDocumentRecord, signed.serial)
        stored = IssuedDocument.from_json(json.loads(record.document)) if record is not None else None
    if (record is None or record.service_code != signed.kind
            or stored.content_digest() != signed.content_digest):
        return Answer(422, {"status": "invalid", "valid": False, "reason": "unknown_document"})
    facts = {"serial": record.serial, "service_code": record.service_code, "issued_at": record.issued_at,
             "voided_at": record.voided_at, "signed": signed.to_json()}
    if record.voided_at:
        return Answer(200, {"status": AnswerStatus.VOIDED, "valid": False, "reason": "voided", **facts})
    return Answer(200, {"status": AnswerStatus.ISSUED, "valid": True, **facts})


DEVICE_RATE_PER_S = 2.0
DEVICE_BURST = 60


def create_app(db_url: str, *, signing_key_path: Path | str | None = None, acquirer_url: str | None = None,
               acquirer_ca_file: Path | str | None = None,
               issuer_key_paths: Sequence[Path | str] = (), body_limit: int = limits.DEFAULT_BODY_LIMIT,
               body_limits: Mapping[str, int] | None = None, public_rate_per_s: float = limits.PUBLIC_RATE_PER_S,
               public_burst: int = limits.PUBLIC_BURST, device_rate_per_s: float = DEVICE_RATE_PER_S,
               device_burst: int = DEVICE_BURST) -> FastAPI:
    """The service on the database `db_url`, created and seeded when empty.

    The signing key is read from `signing_key_path`, which must exist, or kept
    beside a SQLite database file (created there only while the database holds
    no issued document): central refuses to start (signing.SigningKeyError, a
    ValueError) rather than sign under a new key. Payments are looked up at
    the acquirer at `acquirer_url` (its certificate checked against
    `acquirer_ca_file` when given); without one, central starts but answers
    every paid request 503 ``payment_unverifiable``, and says so in its log.
    Cards are checked against the issuer public keys in `issuer_key_paths`
    (PEM); without any, no card proves itself.

    A request body over `body_limit` bytes (64 KB; `body_limits` maps a path
    prefix to a limit of its own) is answered 413 before anything reads it. The
    routes open to anyone (document verification, the verification page,
    enrolment) allow one client address `public_burst` requests at once, then
    `public_rate_per_s` a second, and answer 429 with Retry-After beyond
    (central/limits.py). Each enrolled kiosk may send `device_burst` requests at
    once, then `device_rate_per_s` a second (its outbox, emptied after a day
    offline, is sent again later with backoff on a 429).
    """
    acquirer = AcquirerClient(acquirer_url, ca_file=acquirer_ca_file) if acquirer_url else None
    if acquirer is None:
        log.error("central.no_acquirer: no acquirer is configured (--acquirer URL); every certificate request "
                  "is answered 503 payment_unverifiable until one is")
    else:
        log.info("central.acquirer host=%s pinned_ca=%s", urlsplit(acquirer.base_url).netloc.rpartition("@")[2],
                 "yes" if acquirer_ca_file else "no")
    database = Database(db_url)
    prepare_database(database)
    with database.reading() as session:
        documents_issued = session.scalar(select(IssuedDocumentRecord.serial).limit(1)) is not None
    signing_key = signing.central_key(Path(signing_key_path) if signing_key_path else None, sqlite_path(db_url),
                                      documents_issued=documents_issued)
    public_key = signing_key.public_key()
    public_pem = signing.public_key_pem(public_key)
    public_keys = [public_key]     # what central verifies with; a rotation would add the previous key here
    presence = Presence(database, load_issuer_keys(issuer_key_paths))
    issuer = Issuer(database, signing_key, presence, acquirer)
    claims = Claims(database, presence)
    devices = Devices(database)
    signing_key_id = signing.key_id(public_key).hex()
    # The signing kiosk's id (central/device_auth.py), within its rate.
    device_of = Depends(DeviceAuthenticator(database, take_turn=limits.RateLimiter(device_rate_per_s,
                                                                                   device_burst).take))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if acquirer is not None:
            acquirer.close()
        database.dispose()

    app = FastAPI(title="Citizen kiosk central (reference)", version="1", lifespan=lifespan,
                  docs_url=wire.API + "/docs", openapi_url=wire.API + "/openapi.json", redoc_url=None)
    app.add_exception_handler(RequestValidationError, _invalid_input)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DeviceRefused, refusal_response)
    app.state.database = database
    # Outermost after log_and_contain (added below, so it logs their 413 and 429 too): nothing reads first.
    app.add_middleware(limits.BodyLimit, limit=body_limit, by_route=body_limits)
    app.add_middleware(limits.PublicRateLimit, rate_per_s=public_rate_per_s, burst=public_burst)

    @app.middleware("http")
    async def log_and_contain(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """One line per request (the path only: a query can carry a payload) and no 500 with a trace."""
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception as exc:  # the message may hold data from the database: log its type only
            log.error("http.failed method=%s path=%s error=%s", request.method, request.url.path,
                      type(exc).__name__)
            response = JSONResponse({"status": "error", "reason": "internal_error"}, status_code=500)
        log.info("http.request method=%s path=%s status=%d ms=%.1f", request.method, request.url.path,
                 response.status_code, (time.perf_counter() - started) * 1000)
        return response

    @app.get(wire.HEALTH)
    def health() -> dict:
        return {"status": "ok"}

    @app.get(wire.CATALOGUE)
    def catalogue(_device: str = device_of) -> dict:
        with database.reading() as session:
            served = served_catalogue(load_catalogue(session), issued_at=iso_utc(utc_now()))
        return signing.sign_catalogue(signing_key, served)

    @app.post(wire.ELIGIBILITY)
    def check_eligibility(body: EligibilityBody, device: str = device_of) -> JSONResponse:
        return issuer.eligibility(device, body).response()

    @app.post(wire.REQUESTS)
    def submit_request(body: CertificateRequestBody, device: str = device_of) -> JSONResponse:
        return issuer.submit(device, body).response()

    @app.post(wire.VOID)
    def void_request(request_id: Annotated[str, PathParam(pattern=wire.ID_PATTERN)], device: str = device_of) -> JSONResponse:
        return issuer.void(device, request_id).response()

    @app.post(wire.CHALLENGES)
    def new_challenge(device: str = device_of) -> JSONResponse:
        return presence.challenge(device).response()

    @app.post(wire.CLAIMS_WAITING)
    def claims_waiting(body: WaitingBody, device: str = device_of) -> JSONResponse:
        return claims.waiting(device, body).response()

    @app.post(wire.CLAIM_COLLECTED)
    def claim_collected(serial: Annotated[str, PathParam(pattern=wire.ID_PATTERN)],
                        device: str = device_of) -> JSONResponse:
        return claims.collected(device, serial).response()

    @app.post(wire.ENROL)
    def enrol(body: EnrolBody) -> JSONResponse:
        return devices.enrolment_answer(body, public_pem, signing_key_id).response()

    @app.get(wire.VERIFY_DOCUMENT)
    def verify_document(payload: Annotated[str, Query(min_length=1, max_length=1000)]) -> JSONResponse:
        return _verify_document(database, public_keys, payload).response()

    @app.get(wire.SIGNING_KEY)
    def signing_key_pem() -> PlainTextResponse:
        return PlainTextResponse(public_pem, media_type="application/x-pem-file")

    @app.get(verify_page.PAGE, response_class=HTMLResponse)
    def verification_page(serial: Annotated[str, PathParam(max_length=64)],
                          lang: Annotated[str, Query(max_length=8)] = "ar") -> HTMLResponse:
        facts = verify_page.look_up(database, public_keys, serial)
        status = 404 if facts.state is verify_page.State.UNKNOWN else 200
        return HTMLResponse(verify_page.render(facts, lang), status_code=status, headers=verify_page.HEADERS)

    return app
