"""Every route central serves, sent what a careless or hostile client might send: JSON values of
every kind (nested hundreds deep, numbers of thousands of digits, NaN and Infinity, NUL, bidi
overrides and lone surrogates, every known field with a value of the wrong type), random bytes,
and the wrong content types.

Central, real on loopback, must always answer (the client waits 10 s at most), with a status it
documents, never a 500 and never a traceback. The kiosk routes are sent signed by an enrolled
kiosk, so that the bodies reach the routes' own checks (and unsigned now and then); the public
routes unsigned (and signed now and then: a signature changes nothing there). Where a body names
a challenge, it is sometimes a fresh one of this kiosk's, so that the card proof's bytes reach
the card checks themselves.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.db import iso_utc, utc_now
from central.seeding import SEED_DIR
from central.server import RunningCentral
from drivers.card_sim.issuer import IssuerKey
from kiosk import wire
from kiosk.card_proof import CardProof
from kiosk.central_client import signed_by
from tests.central.cards import CardInReader
from tests.running_central import enrol, start_without_rate_limits

FUZZ_DEVICE = "kiosk-fuzz-01"

# What central answers, all told: served, a path with a slash at its end (redirected to the path
# without, by Starlette), invalid input, not this device (401, 403), not found, wrong method, a
# request id reused, too large, refused, too many, payment not checkable now.
KNOWN_STATUSES = {200, 307, 400, 401, 403, 404, 405, 409, 413, 422, 429, 503}

FRESH_CHALLENGE = object()    # drawn in place of a challenge id: one central just gave this kiosk
ISSUER = IssuerKey.generate()   # the card issuer this central trusts


@functools.cache
def real_proof() -> CardProof:
    """A real card's answer to some other challenge than the one it is sent with."""
    citizen = json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"][0]
    return CardInReader(citizen, ISSUER).sign(bytes(32))


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str                              # with {param} for a path parameter
    kiosk: bool                            # signed by a kiosk, or open to anyone
    fields: tuple[str, ...] = ()           # the body's known fields
    query: tuple[str, ...] = ()            # the query's known parameters


ROUTES = [
    Route("health", "GET", wire.HEALTH, kiosk=False),
    Route("catalogue", "GET", wire.CATALOGUE, kiosk=True),
    Route("challenges", "POST", wire.CHALLENGES, kiosk=True),
    Route("eligibility", "POST", wire.ELIGIBILITY, kiosk=True,
          fields=("challenge_id", "card_proof", "service_code", "fee", "catalogue_version")),
    Route("requests", "POST", wire.REQUESTS, kiosk=True,
          fields=("request_id", "service_code", "language", "payment_id", "presence_id", "place", "time_zone",
                  "claim", "claim_reference", "card_proof", "taken_at")),
    Route("void", "POST", wire.VOID, kiosk=True),
    Route("claims waiting", "POST", wire.CLAIMS_WAITING, kiosk=True, fields=("challenge_id", "card_proof")),
    Route("claim collected", "POST", wire.CLAIM_COLLECTED, kiosk=True),
    Route("enrol", "POST", wire.ENROL, kiosk=False, fields=("device_id", "code", "public_key")),
    Route("documents verify", "GET", wire.VERIFY_DOCUMENT, kiosk=False, query=("payload",)),
    Route("signing key", "GET", wire.SIGNING_KEY, kiosk=False),
    Route("verify page", "GET", "/verify/{serial}", kiosk=False, query=("lang",)),
]

# --- what is sent ---------------------------------------------------------------------------------

ODD_TEXTS = ["", " ", "NaN", "Infinity", "-Infinity", "nan", "1e999", "-0", "0x10", "null", "true", "\x00",
             "a\x00b", "\u202e", "\u202eevil\u202c", "\u2066x\u2069", "\ud800", "\udfff", "\ufeff", "\u2028",
             "\x1b[2J", "%00", "../../etc/passwd", "' OR 1=1 --", "<script>alert(1)</script>", "𝕏" * 40, "ا" * 300,
             "x" * 70_000]
odd_text = st.sampled_from(ODD_TEXTS) | st.text(max_size=80) | st.text(st.characters(codec="utf-8"), max_size=20)
huge_int = st.integers(min_value=-(10 ** 400), max_value=10 ** 400) | st.sampled_from([2 ** 63, -(2 ** 63) - 1,
                                                                                       2 ** 64, 10 ** 4000])
scalars = st.none() | st.booleans() | st.integers() | huge_int | st.floats() | odd_text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(odd_text | st.sampled_from(["device_id", "national_number"]), inner,
                                             max_size=4), max_leaves=12)


def nested(depth: int, kind: str) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


deep_values = st.builds(nested, st.integers(min_value=50, max_value=600), st.sampled_from(["list", "dict"]))
b64_bytes = st.binary(max_size=400).map(lambda data: base64.b64encode(data).decode("ascii"))
identifiers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")

# Values a field could plausibly hold, beside anything at all.
PLAUSIBLE = {
    "challenge_id": st.just(FRESH_CHALLENGE) | identifiers,
    "presence_id": st.just(FRESH_CHALLENGE) | identifiers,
    "card_proof": st.fixed_dictionaries({}, optional={name: b64_bytes | json_values
                                                      for name in ("ef_id", "ef_id_sig", "signature")})
    | st.deferred(lambda: card_proofs()),
    "service_code": st.sampled_from(["civil-status-extract", "birth-certificate", "passport"]),
    "fee": st.fixed_dictionaries({}, optional={"amount_minor": st.integers() | huge_int | st.floats(),
                                               "currency": st.sampled_from(["SYP", "USD", "", "syp"])}),
    "catalogue_version": st.sampled_from(["", "0123456789abcdef"]),
    "language": st.sampled_from(["ar", "en", "fr", ""]),
    "place": st.fixed_dictionaries({}, optional={"ar": odd_text, "en": odd_text, "fr": odd_text}),
    "time_zone": st.sampled_from(["Asia/Damascus", "UTC", "Mars/Olympus", "../etc", "a" * 41]),
    "claim": st.booleans(),
    "taken_at": st.sampled_from(["2026-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                                 "2026-13-45T25:61:61Z", "2026-01-01T00:00:00+02:00"]),
    "code": st.sampled_from(["ABCD-EFGH-JKMN-PQRS-TVWX", "abcd efgh jkmn pqrs tvwx", "\x00" * 20]),
    "public_key": st.sampled_from(["00" * 32, "ff" * 32, "0" * 64, "g" * 64]) | st.binary(min_size=32, max_size=32)
    .map(bytes.hex),
}


def field_value(name: str) -> st.SearchStrategy:
    return PLAUSIBLE.get(name, identifiers) | json_values | deep_values


def shaped_bodies(route: Route) -> st.SearchStrategy:
    """A JSON object with the route's fields (any of them, with any value), and now and then another key."""
    fields = {name: field_value(name) for name in route.fields}
    extra = {"device_id": identifiers, "national_number": st.just("01020345671"), "unexpected": json_values}
    return st.fixed_dictionaries({}, optional={**fields, **extra})


def wire_bytes(text: str) -> bytes:
    """`text` as UTF-8, a lone surrogate too (as a client that does not check would send it)."""
    return text.encode("utf-8", "surrogatepass")


def to_json(value: object, ascii_only: bool) -> bytes:
    return wire_bytes(json.dumps(value, ensure_ascii=ascii_only))       # NaN and Infinity as Python writes them


JSON_TYPES = ["application/json", "application/json; charset=utf-8", "application/json; charset=utf-16"]
OTHER_TYPES = [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
               "application/octet-stream", "application/json\x7f", "*/*"]
RAW_BODIES = [b"", b"{", b"[" * 5000, b"1" + b"0" * 5000, b"1e999", b"-1e999", b"NaN", b"Infinity",
              b'{"fee": {"amount_minor": 1' + b"0" * 4000 + b'}}', b"\xff\xfe{\x00}", b'{"a": "\\ud800"}',
              b'{"a": 1, "a": 2}', b"\x00" * 100]


def flipped(data: bytes, at: int, bits: int) -> str:
    """`data` with one byte changed, as base64."""
    changed = bytearray(data)
    if changed:
        changed[at % len(changed)] ^= bits
    return base64.b64encode(bytes(changed)).decode("ascii")


@st.composite
def card_proofs(draw: st.DrawFn) -> dict:
    """A real card's proof (not over the challenge it is sent with), one of its parts changed, or random bytes."""
    proof = real_proof().to_json()
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(proof)))
        proof[name] = flipped(base64.b64decode(proof[name]), draw(st.integers(0, 10_000)), draw(st.integers(1, 255)))
    else:
        proof = {name: draw(b64_bytes) for name in proof}
    return proof


def complete_body(route: Route, draw: st.DrawFn) -> dict:
    """A body central would take as well formed, for the route's checks to look at."""
    if route.name in ("eligibility", "claims waiting"):
        body = {"challenge_id": FRESH_CHALLENGE, "card_proof": draw(card_proofs())}
        if route.name == "eligibility":
            body.update(service_code="civil-status-extract", fee={"amount_minor": 150000, "currency": "SYP"},
                        catalogue_version="")
        return body
    if route.name == "requests":
        body = {"request_id": draw(identifiers), "service_code": "civil-status-extract", "language": "ar",
                "payment_id": draw(identifiers)}
        if draw(st.booleans()):
            return {**body, "presence_id": FRESH_CHALLENGE}
        return {**body, "claim": True, "claim_reference": draw(identifiers), "card_proof": draw(card_proofs()),
                "taken_at": iso_utc(utc_now())}
    if route.name == "enrol":
        return {"device_id": draw(identifiers), "code": draw(PLAUSIBLE["code"]),
                "public_key": draw(PLAUSIBLE["public_key"])}
    return {}


@st.composite
def almost_complete_bodies(draw: st.DrawFn, route: Route) -> dict:
    """A well-formed body with none, one or two of its fields replaced by anything, or left out."""
    body = complete_body(route, draw)
    for name in draw(st.lists(st.sampled_from(sorted(body)), max_size=2, unique=True)) if body else ():
        if draw(st.booleans()):
            del body[name]
        else:
            body[name] = draw(field_value(name))
    return body


@st.composite
def bodies(draw: st.DrawFn, route: Route) -> tuple[object, str | None]:
    """A body (JSON to be dumped, or bytes as they are, or None) and its content type."""
    kind = draw(st.sampled_from(["almost", "almost", "shaped", "json", "deep", "raw", "bytes", "none"]))
    if kind == "almost":
        return draw(almost_complete_bodies(route)), "application/json"
    if kind == "shaped":
        return draw(shaped_bodies(route)), draw(st.sampled_from(JSON_TYPES))
    if kind == "json":
        return draw(json_values), draw(st.sampled_from(JSON_TYPES + OTHER_TYPES))
    if kind == "deep":
        return draw(deep_values), "application/json"
    if kind == "raw":
        return draw(st.sampled_from(RAW_BODIES)), draw(st.sampled_from(JSON_TYPES + OTHER_TYPES))
    if kind == "bytes":
        return draw(st.binary(max_size=2000)), draw(st.sampled_from(JSON_TYPES + OTHER_TYPES))
    return None, draw(st.sampled_from(JSON_TYPES + OTHER_TYPES))


# --- central, and how it is called ------------------------------------------------------------------

@dataclass
class Fuzzing:
    central: RunningCentral
    kiosk: requests.Session
    anyone: requests.Session

    def fresh_challenge(self) -> str:
        answer = self.kiosk.post(self.central.url + wire.CHALLENGES, json={}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["challenge_id"]


@pytest.fixture(scope="module")
def fuzzing(tmp_path_factory: pytest.TempPathFactory, central_db_url: str) -> Iterator[Fuzzing]:
    """Central on a database of its own (no acquirer: nothing fuzzed is paid), one kiosk enrolled."""
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "issuer.pub.pem").write_bytes(ISSUER.public_pem)
    db_url = central_db_url
    running = start_without_rate_limits(db_url, issuer_key_paths=[directory / "issuer.pub.pem"])
    try:
        key = enrol(running.url, db_url, FUZZ_DEVICE)
        with requests.Session() as kiosk, requests.Session() as anyone:
            kiosk.auth = signed_by(FUZZ_DEVICE, key)
            yield Fuzzing(running, kiosk, anyone)
    finally:
        running.stop()


def replace_fresh(value: object, fuzzing: Fuzzing) -> object:
    if value is FRESH_CHALLENGE:
        return fuzzing.fresh_challenge()
    if isinstance(value, dict):
        return {key: replace_fresh(item, fuzzing) for key, item in value.items()}
    return value


path_texts = odd_text | identifiers | st.sampled_from(["", ".", "..", "a/b", "req-1?x=1", "2026-ABCDEFGH#x"])


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_every_route_answers_anything_with_a_status_it_documents(fuzzing: Fuzzing, route: Route,
                                                                 data: st.DataObject) -> None:
    path = route.path
    for name in ("request_id", "serial"):
        if "{%s}" % name in path:
            path = path.replace("{%s}" % name, quote(wire_bytes(data.draw(path_texts, label=name)), safe=""))
    params = {name: wire_bytes(data.draw(odd_text | identifiers, label=name)) for name in route.query
              if data.draw(st.booleans(), label="with " + name)}
    body, content_type = data.draw(bodies(route), label="body")
    if not isinstance(body, bytes) and body is not None:
        body = to_json(replace_fresh(body, fuzzing), data.draw(st.booleans(), label="ascii only"))
    signed = data.draw(st.integers(0, 9), label="signed") > 0 if route.kiosk else \
        data.draw(st.integers(0, 9), label="signed") == 0
    headers = {"Content-Type": content_type} if content_type is not None else {}

    session = fuzzing.kiosk if signed else fuzzing.anyone
    answer = session.request(route.method, fuzzing.central.url + path, params=params, data=body, headers=headers,
                             timeout=10, allow_redirects=False)

    assert answer.status_code in KNOWN_STATUSES, (answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text and 'File "' not in answer.text
    if answer.status_code == 307:
        assert answer.headers["location"].startswith(fuzzing.central.url + "/"), answer.headers["location"]
    if route.kiosk and not signed:
        assert answer.status_code in (400, 401, 404, 405, 413), answer.text[:300]
    if route.kiosk and signed:
        assert answer.status_code not in (401, 403), answer.text[:300]      # a kiosk's signature holds
    if answer.headers.get("content-type", "").startswith("application/json"):
        answer_body = answer.json()
        if answer.status_code >= 400:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", answer_body["reason"]), answer_body    # a code, no value
