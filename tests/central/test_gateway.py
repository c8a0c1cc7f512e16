"""The payment gateway simulator over real HTTP: charges, declines, idempotency, refunds."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from central.db import Database
from central.models import GatewayCharge
from tests.central.stub_http import ApiClient

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README


def charge_body(amount_minor: int = 150000, **overrides: object) -> dict:
    return {"charge_id": "charge-" + uuid.uuid4().hex, "amount_minor": amount_minor, "currency": "SYP",
            "device_id": "kiosk-gw", "reference": "req-1", **overrides}


def refund_body(payment_id: str, amount_minor: int, **overrides: object) -> dict:
    return {"refund_id": "refund-" + uuid.uuid4().hex, "payment_id": payment_id, "amount_minor": amount_minor,
            "currency": "SYP", **overrides}


def script(http: ApiClient, outcome: str, device_id: str | None = None) -> None:
    body = {"outcome": outcome} if device_id is None else {"outcome": outcome, "device_id": device_id}
    assert http.post("/gateway/sim/next-outcome", json=body).status_code == 200


def test_charge_is_approved_and_can_be_looked_up(http) -> None:
    body = charge_body()
    answer = http.post("/gateway/charges", json=body).json()
    assert answer["status"] == "approved" and answer["payment_id"].startswith("pay_")
    assert (answer["charge_id"], answer["amount_minor"], answer["currency"]) == (body["charge_id"], 150000, "SYP")
    looked_up = http.get("/gateway/charges/%s" % answer["payment_id"]).json()
    assert looked_up["status"] == "approved" and looked_up["refunded_minor"] == 0 and looked_up["refunds"] == []


def test_scripted_decline_is_a_decline_and_stays_one(http) -> None:
    script(http, "declined")
    body = charge_body()
    first = http.post("/gateway/charges", json=body)
    assert first.status_code == 200 and first.json()["status"] == "declined"
    assert http.post("/gateway/charges", json=body).json() == first.json()
    assert http.post("/gateway/charges", json=charge_body()).json()["status"] == "approved"


def test_scripted_outcome_for_one_device_leaves_others_alone(http) -> None:
    script(http, "declined", device_id="kiosk-b")
    assert http.post("/gateway/charges", json=charge_body(device_id="kiosk-a")).json()["status"] == "approved"
    assert http.post("/gateway/charges", json=charge_body(device_id="kiosk-b")).json()["status"] == "declined"


def test_acquirer_error_charges_nothing_and_the_same_id_may_be_asked_again(http) -> None:
    script(http, "error")
    body = charge_body()
    failed = http.post("/gateway/charges", json=body)
    assert failed.status_code == 503 and failed.json()["charged"] is False
    assert http.post("/gateway/charges", json=body).json()["status"] == "approved"


def test_lost_answer_leaves_one_approved_charge_behind(http) -> None:
    script(http, "lost")
    body = charge_body()
    assert http.post("/gateway/charges", json=body).status_code == 502
    assert http.post("/gateway/charges", json=body).json()["status"] == "approved"


def test_same_charge_id_charges_once(http, central_db_url) -> None:
    body = charge_body()
    answers = [http.post("/gateway/charges", json=body).json() for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    database = Database(central_db_url)
    try:
        with database.reading() as session:
            assert session.scalar(select(func.count()).select_from(GatewayCharge).where(
                GatewayCharge.charge_id == body["charge_id"])) == 1
    finally:
        database.dispose()


def test_same_charge_id_with_another_amount_is_a_conflict(http) -> None:
    body = charge_body()
    http.post("/gateway/charges", json=body)
    response = http.post("/gateway/charges", json={**body, "amount_minor": 1})
    assert response.status_code == 409 and response.json()["reason"] == "charge_id_reused"


def test_refund_in_full_is_idempotent(http) -> None:
    payment_id = http.post("/gateway/charges", json=charge_body(200000)).json()["payment_id"]
    body = refund_body(payment_id, 200000)
    first = http.post("/gateway/refunds", json=body)
    assert first.status_code == 200 and first.json()["status"] == "refunded"
    assert http.post("/gateway/refunds", json=body).json() == first.json()
    assert http.get("/gateway/charges/%s" % payment_id).json()["refunded_minor"] == 200000


def test_refunds_never_exceed_the_charge(http) -> None:
    payment_id = http.post("/gateway/charges", json=charge_body(100000)).json()["payment_id"]
    assert http.post("/gateway/refunds", json=refund_body(payment_id, 60000)).status_code == 200
    over = http.post("/gateway/refunds", json=refund_body(payment_id, 40001))
    assert over.status_code == 422 and over.json() == {"status": "rejected", "reason": "exceeds_charge"}
    assert http.post("/gateway/refunds", json=refund_body(payment_id, 40000)).status_code == 200
    assert http.get("/gateway/charges/%s" % payment_id).json()["refunded_minor"] == 100000


@pytest.mark.parametrize("change, status, reason", [
    ({"payment_id": "pay_unknown"}, 404, "unknown_payment"),
    ({"currency": "USD"}, 422, "currency_mismatch"),
])
def test_refund_refusals(http, change, status, reason) -> None:
    payment_id = http.post("/gateway/charges", json=charge_body()).json()["payment_id"]
    response = http.post("/gateway/refunds", json={**refund_body(payment_id, 1000), **change})
    assert (response.status_code, response.json()["reason"]) == (status, reason)


def test_declined_charge_cannot_be_refunded(http) -> None:
    script(http, "declined")
    payment_id = http.post("/gateway/charges", json=charge_body()).json()["payment_id"]
    assert http.post("/gateway/refunds", json=refund_body(payment_id, 1000)).json()["reason"] == "not_refundable"


def test_refund_id_reused_for_another_refund_is_a_conflict(http) -> None:
    payment_id = http.post("/gateway/charges", json=charge_body()).json()["payment_id"]
    body = refund_body(payment_id, 1000)
    http.post("/gateway/refunds", json=body)
    assert http.post("/gateway/refunds", json={**body, "amount_minor": 2000}).status_code == 409


@pytest.mark.parametrize("change", [{"amount_minor": 1500.0}, {"amount_minor": "150000"}, {"amount_minor": 0},
                                    {"amount_minor": -5}, {"currency": "XYZ"}, {"charge_id": ""}])
def test_amounts_are_positive_integers_never_floats_or_strings(http, change) -> None:
    response = http.post("/gateway/charges", json=charge_body(**change))
    assert response.status_code == 400 and response.json()["reason"] == "invalid_input"


def test_unknown_payment_lookup_is_a_404(http) -> None:
    assert http.get("/gateway/charges/pay_nothing").status_code == 404


def test_asking_again_under_another_reference_is_the_same_charge(http) -> None:
    body = charge_body()
    first = http.post("/gateway/charges", json=body).json()
    assert http.post("/gateway/charges", json={**body, "reference": "refund-1"}).json() == first


def test_device_statement_lists_its_charges_with_refunds(http):
    for charge_id in ("stmt-1", "stmt-2"):
        answer = http.post("/gateway/charges", json={
            "charge_id": charge_id, "amount_minor": 150000, "currency": "SYP",
            "device_id": "statement-kiosk", "reference": charge_id}).json()
    http.post("/gateway/refunds", json={"refund_id": "stmt-r", "payment_id": answer["payment_id"],
                                               "amount_minor": 150000, "currency": "SYP"})
    statement = http.get("/gateway/devices/statement-kiosk/charges").json()
    assert [c["charge_id"] for c in statement["charges"]] == ["stmt-1", "stmt-2"]
    assert [c["refunded_minor"] for c in statement["charges"]] == [0, 150000]
