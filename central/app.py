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
    POST /api/v1/telemetry/heartbeat          a kiosk's state, devices and alerts; answered with its commands
                                              and the catalogue's and announcements' versions now
    POST /api/v1/telemetry/audit              a batch of its audit log, the hash chain checked (central/telemetry.py)
    POST /api/v1/telemetry/selftest           its self-test report
    POST /api/v1/commands/{id}/result         what a kiosk did with a command it was sent (central/commands.py)
    POST /api/v1/commands/{id}/logs           the log lines a collect-logs command asked for
    GET  /api/v1/announcements                the attract screens' announcements; signed (central/announcements.py)
    GET  /api/v1/rollout?platform=&version=   the release this kiosk's rollout offers it, if any (central/rollouts.py)
    POST /api/v1/rollout/report               what became of it: installed, proven, failed (a failure pauses it)
    GET  /verify/{serial}[?lang=en]           the verification page for officials (central/verify_page.py)
    GET  /dashboard, POST /dashboard/...      central's staff's dashboard, behind their accounts (central/dashboard/)
    GET  /tuf/metadata/{name}, /tuf/targets/{name}   signed releases, with --release-repo (central/releases/)

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

from central import dashboard, limits, signing, verify_page
from central.dashboard import announcement_pages, command_pages, release_pages, rollout_pages
from central.acquirer import AcquirerClient
from central.catalogue_store import load_catalogue, served_catalogue
from central.announcements import Announcements
from central.claims import Claims, WaitingBody
from central.commands import Commands, LogsBody, ResultBody
from central.device_auth import DeviceAuthenticator, DeviceRefused, refusal_response
from central.devices import Devices, EnrolBody
from central.presence import Presence
from central.rollouts import PLATFORM_PATTERN, VERSION_PATTERN, ReportBody, Rollouts, published_in
from central.db import Database, iso_utc, sqlite_path, utc_now
from central.issuing import CertificateRequestBody, EligibilityBody, Issuer
from central.models import IssuedDocumentRecord
from central.seeding import prepare_database
from central.telemetry import DEFAULT_KEEP_DAYS, AuditBatchBody, HeartbeatBody, SelftestBody, Telemetry
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
               device_burst: int = DEVICE_BURST, release_repo: Path | str | None = None,
               telemetry_days: int = DEFAULT_KEEP_DAYS) -> FastAPI:
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

    What the kiosks report (heartbeats, alerts, self-test reports) is kept `telemetry_days` days
    (central/telemetry.py); their audit logs are kept.
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
    commands = Commands(database)
    rollouts = Rollouts(database, published=published_in(release_repo) if release_repo is not None else None)
    announcements = Announcements(database)
    telemetry = Telemetry(database, keep_days=telemetry_days,
                          commands_for=lambda device: commands.for_heartbeat(device, signing_key))
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
    # A release bundle's upload (the dashboard's releases page) may be larger, streamed: central/limits.py.
    app.add_middleware(limits.BodyLimit, limit=body_limit,
                       by_route={**release_pages.BODY_LIMITS, **(body_limits or {})})
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

    def with_versions(answer: Answer) -> Answer:
        """A heartbeat's answer names the catalogue's and the announcements' versions now: a kiosk that
        shows another fetches them between two citizens (kiosk/commands.py)."""
        if answer.http_status != 200:
            return answer
        with database.reading() as session:
            catalogue_version = load_catalogue(session).version
        return Answer(200, {**answer.body, "catalogue_version": catalogue_version,
                            "announcements_version": announcements.version()})

    @app.post(wire.TELEMETRY_HEARTBEAT)
    def heartbeat(body: HeartbeatBody, device: str = device_of) -> JSONResponse:
        return with_versions(telemetry.heartbeat(device, body)).response()

    @app.post(wire.TELEMETRY_AUDIT)
    def audit_batch(body: AuditBatchBody, device: str = device_of) -> JSONResponse:
        return telemetry.audit(device, body).response()

    @app.post(wire.TELEMETRY_SELFTEST)
    def selftest_report(body: SelftestBody, device: str = device_of) -> JSONResponse:
        return telemetry.selftest(device, body).response()

    @app.post(wire.COMMAND_RESULT)
    def command_result(command_id: Annotated[str, PathParam(pattern=wire.ID_PATTERN)], body: ResultBody,
                       device: str = device_of) -> JSONResponse:
        return commands.record_result(device, command_id, body).response()

    @app.post(wire.COMMAND_LOGS)
    def command_logs(command_id: Annotated[str, PathParam(pattern=wire.ID_PATTERN)], body: LogsBody,
                     device: str = device_of) -> JSONResponse:
        return commands.store_logs(device, command_id, body).response()

    @app.get(wire.ROLLOUT)
    def rollout_offer(platform: Annotated[str, Query(pattern=PLATFORM_PATTERN)],
                      version: Annotated[str, Query(pattern=VERSION_PATTERN)], device: str = device_of) -> JSONResponse:
        return rollouts.offer(device, platform, version).response()

    @app.post(wire.ROLLOUT_REPORT)
    def rollout_report(body: ReportBody, device: str = device_of) -> JSONResponse:
        return rollouts.report(device, body).response()

    @app.get(wire.ANNOUNCEMENTS)
    def current_announcements(_device: str = device_of) -> dict:
        return announcements.served(signing_key)

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

    if release_repo is not None:
        # Signed updates: the release repository's metadata and bundles, read-only (central/releases/serving.py).
        from central.releases import serving as release_serving
        app.include_router(release_serving.router(release_repo))

    # The staff's dashboard, /dashboard (central/dashboard/).
    dashboard.install(app, database, devices)
    rollout_pages.install(app, rollouts)          # its rollouts' pages and forms (central/dashboard/rollout_pages.py)
    release_pages.install(app, release_repo)      # its releases' page and upload (central/dashboard/release_pages.py)
    command_pages.install(app, commands)          # its commands' page and form (central/dashboard/command_pages.py)
    announcement_pages.install(app, announcements)   # the announcements' (central/dashboard/announcement_pages.py)

    return app
