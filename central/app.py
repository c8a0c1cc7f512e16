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
    GET  /verify/{serial}[?lang=en]           the verification page for officials (central/verify_page.py)

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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from central import signing, verify_page
from central.acquirer import AcquirerClient
from central.catalogue_store import load_catalogue, served_catalogue
from central.claims import Claims, CollectedBody, WaitingBody
from central.db import Database, iso_utc, sqlite_path, utc_now
from central.issuing import CertificateRequestBody, EligibilityBody, Issuer
from central.models import IssuedDocumentRecord
from central.seeding import prepare_database
from central.wire import Answer
from kiosk import wire
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


def create_app(db_url: str, *, signing_key_path: Path | str | None = None, acquirer_url: str | None = None,
               acquirer_ca_file: Path | str | None = None) -> FastAPI:
    """The service on the database `db_url`, created and seeded when empty.

    The signing key is read from `signing_key_path`, or kept beside a SQLite
    database file (created there on first start). Payments are looked up at
    the acquirer at `acquirer_url` (its certificate checked against
    `acquirer_ca_file` when given); without one, central starts but answers
    every paid request 503 ``payment_unverifiable``, and says so in its log.
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
    key_path = Path(signing_key_path) if signing_key_path else signing.default_key_path(sqlite_path(db_url))
    signing_key = signing.load_or_create_key(key_path)
    public_key = signing_key.public_key()
    public_pem = signing.public_key_pem(public_key)
    public_keys = [public_key]     # what central verifies with; a rotation would add the previous key here
    issuer = Issuer(database, signing_key, acquirer)
    claims = Claims(database)

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
    app.state.database = database

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
    def catalogue() -> dict:
        with database.reading() as session:
            served = served_catalogue(load_catalogue(session), issued_at=iso_utc(utc_now()))
        return signing.sign_catalogue(signing_key, served)

    @app.post(wire.ELIGIBILITY)
    def check_eligibility(body: EligibilityBody) -> JSONResponse:
        return issuer.eligibility(body).response()

    @app.post(wire.REQUESTS)
    def submit_request(body: CertificateRequestBody) -> JSONResponse:
        return issuer.submit(body).response()

    @app.post(wire.VOID)
    def void_request(request_id: Annotated[str, PathParam(pattern=wire.ID_PATTERN)]) -> JSONResponse:
        return issuer.void(request_id).response()

    @app.post(wire.CLAIMS_WAITING)
    def claims_waiting(body: WaitingBody) -> JSONResponse:
        return claims.waiting(body).response()

    @app.post(wire.CLAIM_COLLECTED)
    def claim_collected(serial: Annotated[str, PathParam(pattern=wire.ID_PATTERN)], body: CollectedBody) -> JSONResponse:
        return claims.collected(serial, body).response()

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
