"""Documents claimed while a kiosk could not reach central, and their collection at any kiosk.

A claim's request is issued like any other when it arrives (central/issuing.py)
and its document then awaits collection (a `ClaimRecord`). After a citizen's
card is verified, a kiosk asks which documents wait for them:

    POST /api/v1/claims/waiting            {"device_id", "national_number", "card_number"}
        200 {"documents": [IssuedDocument JSON, ...]}   issued, not voided, not collected; oldest first
        422 {"status": "rejected", "reason": "unknown_citizen" | "card_mismatch"}

and once it printed one, it says so (through its outbox: idempotent, the
answer is the same every time):

    POST /api/v1/claims/{serial}/collected {"device_id"}
        200 {"status": "collected", "serial", "collected_at"}
        404 {"status": "rejected", "reason": "unknown_claim"}
        422 {"status": "rejected", "reason": "request_voided"}    (it was voided meanwhile)

No answer and no log line carries a national number, a name or a card number.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

from pydantic import Field
from sqlalchemy import select

from central.db import Database, iso_utc, utc_now
from central.models import Citizen, ClaimRecord, IssuedDocumentRecord
from central.wire import Answer, Body, Identifier, rejected
from kiosk.wire import AnswerStatus

log = logging.getLogger(__name__)


class WaitingBody(Body):
    device_id: Identifier
    national_number: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    card_number: Annotated[str, Field(pattern=r"^SY[0-9]{10}$")]


class CollectedBody(Body):
    device_id: Identifier


class Claims:
    def __init__(self, database: Database) -> None:
        self._database = database

    def waiting(self, body: WaitingBody) -> Answer:
        """The documents that wait for the card's holder; refused when the card is not theirs."""
        with self._database.reading() as session:
            citizen = session.get(Citizen, body.national_number)
            if citizen is None:
                return rejected("unknown_citizen")
            if citizen.card_number != body.card_number:
                return rejected("card_mismatch")
            rows = session.execute(
                select(IssuedDocumentRecord.document)
                .join(ClaimRecord, ClaimRecord.serial == IssuedDocumentRecord.serial)
                .where(ClaimRecord.national_number == body.national_number, ClaimRecord.collected_at.is_(None),
                       IssuedDocumentRecord.voided_at.is_(None))
                .order_by(ClaimRecord.created_at, ClaimRecord.serial)).scalars().all()
        log.info("claims.waiting count=%d device=%s", len(rows), body.device_id)
        return Answer(200, {"documents": [json.loads(document) for document in rows]})

    def collected(self, serial: str, body: CollectedBody) -> Answer:
        """The document `serial` was printed for its citizen: collected, once."""
        with self._database.writing() as session:
            claim = session.get(ClaimRecord, serial)
            if claim is None:
                return rejected("unknown_claim", http_status=404)
            document = session.get(IssuedDocumentRecord, serial)
            if document is None or document.voided_at is not None:
                return rejected("request_voided")
            if claim.collected_at is None:
                claim.collected_at = iso_utc(utc_now())
                claim.collected_by = body.device_id
                log.info("claims.collected serial=%s device=%s", serial, body.device_id)
            return Answer(200, {"status": AnswerStatus.COLLECTED, "serial": serial,
                                "collected_at": claim.collected_at})
