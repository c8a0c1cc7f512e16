"""A payment gateway simulator with its own endpoints, under /api/v1/gateway.

Charges and refunds are idempotent on the id the kiosk chooses: the same
charge_id (or refund_id) with the same body gets the same answer and never a
second charge; with a different amount, currency or device it is a 409 (a
charge's `reference` is only a label and may differ when asking again). A
refund never takes back more than was charged.

Outcomes are approved unless a test or a demo scripts the next one with
``POST /api/v1/gateway/sim/next-outcome`` (optionally for one device only):

    approved   the charge is approved
    declined   the charge is declined (stored: asking again gives the decline)
    error      503 {"status": "error", "reason": "acquirer_unavailable",
               "charged": false}: nothing was charged, nothing stored; the
               same charge_id may be asked again
    lost       the charge is approved and stored, but the answer is a 502
               without "charged": the kiosk cannot know, asks again with the
               same charge_id and gets the approval
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy import select

from central.db import Database, iso_utc, utc_now
from central.models import GatewayCharge, GatewayRefund
from central.wire import AmountMinor, Answer, Body, Currency, Identifier, body_digest, conflict, rejected

log = logging.getLogger(__name__)

Outcome = Literal["approved", "declined", "error", "lost"]


class ChargeBody(Body):
    charge_id: Identifier
    amount_minor: AmountMinor
    currency: Currency
    device_id: Identifier
    reference: Identifier


class RefundBody(Body):
    refund_id: Identifier
    payment_id: Identifier
    amount_minor: AmountMinor
    currency: Currency


class NextOutcomeBody(Body):
    outcome: Outcome
    device_id: Identifier | None = None


def _charge_answer(charge: GatewayCharge) -> dict:
    answer = {"status": charge.status, "charge_id": charge.charge_id, "payment_id": charge.payment_id,
              "amount_minor": charge.amount_minor, "currency": charge.currency, "device_id": charge.device_id,
              "reference": charge.reference, "created_at": charge.created_at}
    if charge.status == "declined":
        answer["decline_reason"] = "do_not_honour"
    return answer


def _refund_answer(refund: GatewayRefund) -> dict:
    return {"status": "refunded", "refund_id": refund.refund_id, "payment_id": refund.payment_id,
            "amount_minor": refund.amount_minor, "currency": refund.currency, "created_at": refund.created_at}


class GatewaySimulator:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._scripted: dict[str | None, collections.deque[Outcome]] = collections.defaultdict(collections.deque)
        self._scripted_lock = threading.Lock()

    def script(self, outcome: Outcome, device_id: str | None = None) -> None:
        """The next new charge (of `device_id`, or of any device) gets `outcome`."""
        with self._scripted_lock:
            self._scripted[device_id].append(outcome)
        log.info("gateway.outcome_scripted outcome=%s device=%s", outcome, device_id or "any")

    def _next_outcome(self, device_id: str) -> Outcome:
        with self._scripted_lock:
            for key in (device_id, None):
                if self._scripted.get(key):
                    return self._scripted[key].popleft()
        return "approved"

    def charge(self, body: ChargeBody) -> Answer:
        # The reference is a label: asking again under another one is still the same charge.
        digest = body_digest(body, exclude=frozenset({"reference"}))
        with self._database.writing() as session:
            charge = session.scalar(select(GatewayCharge).where(GatewayCharge.charge_id == body.charge_id))
            if charge is not None:
                if charge.body_digest != digest:
                    return conflict("charge_id_reused")
                return Answer(200, _charge_answer(charge))
            outcome = self._next_outcome(body.device_id)
            if outcome == "error":
                log.info("gateway.charge charge_id=%s outcome=error", body.charge_id)
                return Answer(503, {"status": "error", "reason": "acquirer_unavailable", "charged": False})
            charge = GatewayCharge(
                payment_id="pay_" + secrets.token_hex(8), charge_id=body.charge_id, body_digest=digest,
                status="declined" if outcome == "declined" else "approved", amount_minor=body.amount_minor,
                currency=body.currency, device_id=body.device_id, reference=body.reference,
                created_at=iso_utc(utc_now()))
            session.add(charge)
        log.info("gateway.charge charge_id=%s outcome=%s payment_id=%s amount_minor=%d currency=%s",
                 body.charge_id, outcome, charge.payment_id, body.amount_minor, body.currency)
        if outcome == "lost":
            return Answer(502, {"status": "error", "reason": "answer_lost"})
        return Answer(200, _charge_answer(charge))

    def refund(self, body: RefundBody) -> Answer:
        digest = body_digest(body)
        with self._database.writing() as session:
            refund = session.get(GatewayRefund, body.refund_id)
            if refund is not None:
                if refund.body_digest != digest:
                    return conflict("refund_id_reused")
                return Answer(200, _refund_answer(refund))
            charge = session.get(GatewayCharge, body.payment_id)
            if charge is None:
                return rejected("unknown_payment", http_status=404)
            if charge.status != "approved":
                return rejected("not_refundable")
            if charge.currency != body.currency:
                return rejected("currency_mismatch")
            if charge.refunded_minor() + body.amount_minor > charge.amount_minor:
                return rejected("exceeds_charge")
            refund = GatewayRefund(refund_id=body.refund_id, payment_id=body.payment_id, body_digest=digest,
                                   amount_minor=body.amount_minor, currency=body.currency,
                                   created_at=iso_utc(utc_now()))
            session.add(refund)
        log.info("gateway.refund refund_id=%s payment_id=%s amount_minor=%d currency=%s",
                 body.refund_id, body.payment_id, body.amount_minor, body.currency)
        return Answer(200, _refund_answer(refund))

    def device_charges(self, device_id: str) -> Answer:
        """Every charge a device made, oldest first, with what was refunded: the
        merchant's statement that reconciliation works from."""
        with self._database.reading() as session:
            charges = session.scalars(
                select(GatewayCharge).where(GatewayCharge.device_id == device_id).order_by(GatewayCharge.created_at)
            ).all()
            return Answer(200, {"device_id": device_id, "charges": [
                {**_charge_answer(c), "refunded_minor": c.refunded_minor()} for c in charges]})

    def get_charge(self, payment_id: str) -> Answer:
        with self._database.reading() as session:
            charge = session.get(GatewayCharge, payment_id)
            if charge is None:
                return rejected("unknown_payment", http_status=404)
            return Answer(200, {**_charge_answer(charge), "refunded_minor": charge.refunded_minor(),
                                "refunds": [_refund_answer(r) for r in charge.refunds]})


def gateway_router(simulator: GatewaySimulator) -> APIRouter:
    router = APIRouter(prefix="/api/v1/gateway")

    @router.post("/charges")
    def post_charge(body: ChargeBody) -> JSONResponse:
        return simulator.charge(body).response()

    @router.post("/refunds")
    def post_refund(body: RefundBody) -> JSONResponse:
        return simulator.refund(body).response()

    @router.get("/devices/{device_id}/charges")
    def get_device_charges(device_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]) -> JSONResponse:
        return simulator.device_charges(device_id).response()

    @router.get("/charges/{payment_id}")
    def get_charge(payment_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]) -> JSONResponse:
        return simulator.get_charge(payment_id).response()

    @router.post("/sim/next-outcome")
    def post_next_outcome(body: NextOutcomeBody) -> JSONResponse:
        simulator.script(body.outcome, body.device_id)
        return JSONResponse({"status": "scripted", "outcome": body.outcome, "device_id": body.device_id})

    return router
