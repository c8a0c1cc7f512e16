"""For the API tests, beside central itself (tests/running_central.py): `http` is an enrolled kiosk (every call signed with its device key), `anonymous`
anyone on the network; `present(citizen)` puts a citizen's card in that
kiosk's reader and proves it to central, as the kiosk's pre-check does;
`claim_body(citizen)` is an offline claim, signed by the citizen's card."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from central.db import Database, iso_utc, utc_now
from central.models import Base
from central.seeding import SEED_DIR
from central.server import RunningCentral, start_in_thread
from kiosk import wire
from kiosk.central_client import signed_by
from tests.central.cards import CardInReader
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import ApiClient
from tests.running_central import DATABASES, enrol, new_database

DEVICE_ID = "kiosk-test-01"
OTHER_DEVICE_ID = "kiosk-test-02"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only(reason): a central test that makes sense on SQLite only "
                                       "(a database file, the signing key beside it): not run on PostgreSQL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked sqlite_only is left out where its database is PostgreSQL."""
    left_out = [item for item in items if item.get_closest_marker("sqlite_only") and hasattr(item, "callspec")
                and item.callspec.params.get("database_kind") == "postgresql"]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


@pytest.fixture(scope="module", params=DATABASES)
def database_kind(request: pytest.FixtureRequest) -> str:
    """What central's tests run on: every module's tests that use a database run on SQLite, then again on
    PostgreSQL (`central_db_url` and `fresh_db_url` alike)."""
    return request.param


@pytest.fixture(scope="module")
def central_db_url(database_kind: str, request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database of the module's central (on PostgreSQL, prepared already)."""
    with new_database(database_kind, request, tmp_path_factory.mktemp("central"), prepared=True) as url:
        yield url


@pytest.fixture
def fresh_db_url(database_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own."""
    with new_database(database_kind, request, tmp_path) as url:
        yield url


@pytest.fixture(autouse=True)
def _acquirer_answers_well_again(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "acquirer" in request.fixturenames:
        request.getfixturevalue("acquirer").answer_well()


@pytest.fixture
def own_central(issuer_pem: Path) -> Callable[..., contextlib.AbstractContextManager[tuple[RunningCentral, ApiClient]]]:
    """`with own_central(db_url, **options) as (central, kiosk)`: a central of the test's own
    (`start_in_thread`'s options; it trusts the session's card issuer), and the kiosk DEVICE_ID enrolled
    there, signing every call. `present(citizen, client=kiosk)` proves a card to it."""
    @contextlib.contextmanager
    def started(db_url: str, **options: object) -> Iterator[tuple[RunningCentral, ApiClient]]:
        options.setdefault("issuer_key_paths", [issuer_pem])
        with start_in_thread(db_url, **options) as running:
            key = enrol(running.url, db_url, DEVICE_ID)
            with ApiClient(running.url + wire.API, timeout_s=10, auth=signed_by(DEVICE_ID, key)) as kiosk:
                yield running, kiosk
    return started


@pytest.fixture(scope="module")
def device_key(central: RunningCentral, central_db_url: str) -> Ed25519PrivateKey:
    return enrol(central.url, central_db_url, DEVICE_ID)


@pytest.fixture(scope="module")
def http(central: RunningCentral, device_key: Ed25519PrivateKey) -> Iterator[ApiClient]:
    """The enrolled kiosk DEVICE_ID: every call signed."""
    with ApiClient(central.url + "/api/v1", timeout_s=10, auth=signed_by(DEVICE_ID, device_key)) as client:
        yield client


@pytest.fixture(scope="module")
def other_kiosk(central: RunningCentral, central_db_url: str) -> Iterator[ApiClient]:
    """Another enrolled kiosk, OTHER_DEVICE_ID."""
    key = enrol(central.url, central_db_url, OTHER_DEVICE_ID)
    with ApiClient(central.url + "/api/v1", timeout_s=10, auth=signed_by(OTHER_DEVICE_ID, key)) as client:
        yield client


@pytest.fixture(scope="module")
def anonymous(central: RunningCentral) -> Iterator[ApiClient]:
    """Anyone who can reach central: no device key."""
    with ApiClient(central.url + "/api/v1", timeout_s=10) as client:
        yield client


@pytest.fixture
def card_of(issuer) -> Callable[..., CardInReader]:
    """`card_of(citizen)`: the citizen's card, in the reader, PIN verified."""
    return lambda citizen, **options: CardInReader(citizen, issuer, **options)


@pytest.fixture
def present(http: ApiClient, card_of: Callable[..., CardInReader], fees: dict[str, int]) -> Callable[..., str]:
    """`present(citizen, service_code)`: the citizen's card proves itself to central in the pre-check
    for `service_code`; the presence id a request names (given whatever the pre-check answered)."""
    def present(citizen: dict, service_code: str = "birth-certificate", *, client: ApiClient | None = None) -> str:
        client = client or http
        answer = card_of(citizen).answer(client)
        response = client.post("/requests/eligibility", json={
            **answer, "service_code": service_code, "catalogue_version": "",
            "fee": {"amount_minor": fees.get(service_code, 100000), "currency": "SYP"}})
        assert response.status_code == 200, response.text
        return answer["challenge_id"]
    return present


@pytest.fixture(scope="module")
def count_rows(central_database: Database) -> Callable[[type[Base]], int]:
    """Rows in a table of the running central's database, read beside it."""
    def count(model: type[Base]) -> int:
        with central_database.reading() as session:
            return session.scalar(select(func.count()).select_from(model))

    return count


@pytest.fixture(scope="session")
def seed_citizens() -> dict[str, dict]:
    """The seed citizens by Latin given name (Arabic given name when there is none)."""
    citizens = json.loads((SEED_DIR / "citizens.json").read_text(encoding="utf-8"))["citizens"]
    return {c.get("given_name_latin") or c["given_name_ar"]: c for c in citizens}


def new_id(prefix: str) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


@pytest.fixture
def pay(acquirer: StubAcquirer) -> Callable[..., str]:
    """A payment the acquirer knows (approved unless `status` says otherwise); its id."""
    def pay(amount_minor: int, *, currency: str = "SYP", status: str = "approved") -> str:
        return acquirer.pay(amount_minor, currency, status=status)
    return pay


@pytest.fixture
def fees(http: ApiClient) -> dict[str, int]:
    return {s["code"]: s["fee"]["amount_minor"] for s in http.get("/catalogue").json()["services"]}


@pytest.fixture
def request_body(pay: Callable[..., str], fees: dict[str, int], present: Callable[..., str]) -> Callable[..., dict]:
    """A paid certificate request for `citizen` (a seed record), whose card proved itself in the
    pre-check just before; keys may be overridden."""
    def body(citizen: dict, service_code: str, **overrides: object) -> dict:
        values = {"request_id": new_id("req"), "service_code": service_code, "language": "ar"}
        if "presence_id" not in overrides and not overrides.get("claim"):
            values["presence_id"] = present(citizen, service_code)
        if "payment_id" not in overrides:
            values["payment_id"] = pay(fees.get(service_code, 100000))
        values.update(overrides)
        return values
    return body


@pytest.fixture
def claim_body(request_body: Callable[..., dict], card_of: Callable[..., CardInReader]) -> Callable[..., dict]:
    """`claim_body(citizen, service_code)`: a paid request the kiosk took offline, as a claim, with the
    card's signature over it (made now, or at `taken_at`, by `card` when given); keys may be overridden."""
    def body(citizen: dict, service_code: str = "civil-status-extract", *, taken_at: str | None = None,
             card: CardInReader | None = None, **overrides: object) -> dict:
        request_id = str(overrides.pop("request_id", new_id("req")))
        taken_at = taken_at or iso_utc(utc_now())
        proof = (card or card_of(citizen)).sign_claim(request_id, service_code, taken_at)
        values = {"request_id": request_id, "claim": True, "claim_reference": new_id("CLM"), "taken_at": taken_at,
                  "card_proof": proof, **overrides}
        return request_body(citizen, service_code, **values)
    return body
