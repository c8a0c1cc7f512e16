"""Central running for real on loopback, with a real SQLite file and a stub acquirer, for the API tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select

from central.db import Database
from central.models import Base
from central.seeding import SEED_DIR
from central.server import RunningCentral, start_in_thread
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import ApiClient

DEVICE_ID = "kiosk-test-01"


@pytest.fixture(scope="module")
def central_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3")


@pytest.fixture(scope="module")
def acquirer() -> Iterator[StubAcquirer]:
    """Where central looks payments up; a test may make it answer badly, and it answers well again after."""
    with StubAcquirer() as stub:
        yield stub


@pytest.fixture(autouse=True)
def _acquirer_answers_well_again(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "acquirer" in request.fixturenames:
        request.getfixturevalue("acquirer").answer_well()


@pytest.fixture(scope="module")
def central(central_db_url: str, acquirer: StubAcquirer) -> Iterator[RunningCentral]:
    running = start_in_thread(central_db_url, acquirer_url=acquirer.url)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(central: RunningCentral) -> Iterator[ApiClient]:
    with ApiClient(central.url + "/api/v1", timeout_s=10) as client:
        yield client


@pytest.fixture(scope="module")
def count_rows(central_db_url: str) -> Iterator[Callable[[type[Base]], int]]:
    """Rows in a table of the running central's database, read beside it."""
    database = Database(central_db_url)

    def count(model: type[Base]) -> int:
        with database.reading() as session:
            return session.scalar(select(func.count()).select_from(model))

    yield count
    database.dispose()


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
def request_body(pay: Callable[..., str], fees: dict[str, int]) -> Callable[..., dict]:
    """A paid certificate request for `citizen` (a seed record); keys may be overridden."""
    def body(citizen: dict, service_code: str, **overrides: object) -> dict:
        values = {"request_id": new_id("req"), "device_id": DEVICE_ID, "service_code": service_code,
                  "national_number": citizen["national_number"], "card_number": citizen["card_number"],
                  "language": "ar"}
        if "payment_id" not in overrides:
            values["payment_id"] = pay(fees.get(service_code, 100000))
        values.update(overrides)
        return values
    return body
