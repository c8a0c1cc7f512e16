"""Documents claimed while a kiosk could not reach central, and their collection at any kiosk.

A claim's request is issued like any other when it arrives (central/issuing.py)
and its document then awaits collection (a `ClaimRecord`). After a citizen's
card is verified, a kiosk asks which documents wait for them:

    POST /api/v1/claims/waiting            {"challenge_id", "card_proof"}   (central/presence.py)
        200 {"documents": [IssuedDocument JSON, ...]}   issued, not voided, not collected; oldest first
        422 {"status": "rejected", "reason": "not_eligible"}   (the card did not prove itself)

and once it printed one, it says so (through its outbox: idempotent, the
answer is the same every time):

    POST /api/v1/claims/{serial}/collected {}
        200 {"status": "collected", "serial", "collected_at"}
        404 {"status": "rejected", "reason": "unknown_claim"}
        422 {"status": "rejected", "reason": "request_voided"}    (it was voided meanwhile)

The device is the one that signed the call (central/device_auth.py). No answer and no log line carries a national number, a name or a card number.
"""

from __future__ import annotations

import json
import logging
from sqlalchemy import select

from central.db import Database, iso_utc, utc_now
from central.models import ClaimRecord, IssuedDocumentRecord
from central.presence import Presence, ProvenBody
from central.wire import NOT_ELIGIBLE, Answer, Body, rejected
from kiosk.wire import AnswerStatus

log = logging.getLogger(__name__)


class WaitingBody(ProvenBody):
    pass


class CollectedBody(Body):
    pass


class Claims:
    def __init__(self, database: Database, presence: Presence) -> None:
        self._database = database
        self._presence = presence

    def waiting(self, device_id: str, body: WaitingBody) -> Answer:
        """The documents that wait for the holder of the card that just signed central's challenge."""
        holder = self._presence.prove(device_id, body.challenge_id, body.card_proof)
        if holder is None:
            return rejected(NOT_ELIGIBLE)
        with self._database.reading() as session:
            rows = session.execute(
                select(IssuedDocumentRecord.document)
                .join(ClaimRecord, ClaimRecord.serial == IssuedDocumentRecord.serial)
                .where(ClaimRecord.national_number == holder.national_number, ClaimRecord.collected_at.is_(None),
                       IssuedDocumentRecord.voided_at.is_(None))
                .order_by(ClaimRecord.created_at, ClaimRecord.serial)).scalars().all()
        log.info("claims.waiting count=%d device=%s", len(rows), device_id)
        return Answer(200, {"documents": [json.loads(document) for document in rows]})

    def collected(self, device_id: str, serial: str) -> Answer:
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
                claim.collected_by = device_id
                log.info("claims.collected serial=%s device=%s", serial, device_id)
            return Answer(200, {"status": AnswerStatus.COLLECTED, "serial": serial,
                                "collected_at": claim.collected_at})
