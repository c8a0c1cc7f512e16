"""Proof that the citizen's card is in the asking kiosk's reader.

Central answers nothing about a citizen, and issues nothing, for a card it
has not challenged itself:

    POST /api/v1/challenges {}          (signed by the kiosk)
        200 {"challenge_id", "challenge": <base64 of 32 random bytes>, "expires_at"}

The kiosk has the card sign the 32 bytes (INTERNAL AUTHENTICATE) and sends
``"challenge_id"`` and ``"card_proof": {"ef_id", "ef_id_sig", "signature"}``
(base64) with its pre-check or its question about waiting documents. Central
checks, in order: the challenge is this device's, unused and unexpired (it is
used up by this check, whatever the outcome); EF.ID_SIG verifies with an
issuer key central trusts; the card's signature over the challenge verifies
with the key in the card's D0; the card is the registry's current card for
that national number and has not expired. Any failure is answered as the
one refusal a device learns about a citizen, ``not_eligible``; the precise
reason goes to central's log, without personal data.

A proven challenge is the card's presence: the numbers read from the card
are kept with it, and it pays for one certificate request (bound to the
first request id that uses it, within `PRESENCE_MAX_AGE`, so that a request
kept in the kiosk's outbox while the link is down still arrives).

An offline claim cannot fetch a challenge: it carries the card's signature
over the claim itself (`kiosk.card_proof.claim_challenge` of its request id,
service and time), which central takes for claims only, made no longer than
`PRESENCE_MAX_AGE` ago, once per claim id (the request id is answered once).
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Mapping

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field

from central.db import Database, iso_utc, utc_now
from central.models import CardChallenge, Citizen
from central.wire import Answer, Body, Identifier
from kiosk.card_proof import CardProof, CardProofRefused, check_card_proof, claim_challenge

log = logging.getLogger(__name__)

CHALLENGE_LIFETIME = timedelta(minutes=5)
PRESENCE_MAX_AGE = timedelta(days=7)       # a request may arrive this long after its card proved itself
CLAIM_CLOCK_SKEW = timedelta(minutes=10)   # a claim stamped this far in the future is still taken

_BASE64 = r"^[A-Za-z0-9+/]+={0,2}$"


class CardProofBody(Body):
    """`kiosk.card_proof.CardProof.to_json`'s form; sizes bound what a card can hold."""

    ef_id: Annotated[str, Field(min_length=4, max_length=8192, pattern=_BASE64)]
    ef_id_sig: Annotated[str, Field(min_length=4, max_length=200, pattern=_BASE64)]
    signature: Annotated[str, Field(min_length=4, max_length=200, pattern=_BASE64)]

    def proof(self) -> CardProof:
        """CardProofRefused("malformed") when a value is not base64 after all."""
        return CardProof.from_json(self.model_dump())


@dataclass(frozen=True, repr=False)
class Holder:
    """The citizen a card proved to be: personal data, never logged."""

    national_number: str
    card_number: str

    def __repr__(self) -> str:
        return "Holder(<personal data withheld>)"


class Presence:
    """Challenges to cards, and the proofs they became."""

    def __init__(self, database: Database, issuer_keys: Mapping[bytes, ec.EllipticCurvePublicKey]) -> None:
        self._database = database
        self._issuer_keys = dict(issuer_keys)
        if not self._issuer_keys:
            log.error("central.no_issuer_keys: no card issuer key is trusted (--issuer-key PEM); every card is "
                      "refused")

    def challenge(self, device_id: str) -> Answer:
        nonce, now = secrets.token_bytes(32), utc_now()
        challenge_id = "ch-" + secrets.token_hex(16)
        with self._database.writing() as session:
            session.add(CardChallenge(challenge_id=challenge_id, nonce=nonce.hex(), device_id=device_id,
                                      created_at=iso_utc(now), expires_at=iso_utc(now + CHALLENGE_LIFETIME)))
        return Answer(200, {"challenge_id": challenge_id, "challenge": base64.b64encode(nonce).decode("ascii"),
                            "expires_at": iso_utc(now + CHALLENGE_LIFETIME)})

    def prove(self, device_id: str, challenge_id: str, body: CardProofBody) -> Holder | None:
        """The holder of the card that signed `challenge_id`, now used up; None (logged) when it did not."""
        now = utc_now()
        # Used up first, under the write lock; the signatures are checked outside it (they take a few
        # milliseconds, and every other writer would wait), then the holder is kept with it.
        with self._database.writing() as session:
            row = session.get(CardChallenge, challenge_id)
            if row is None or row.device_id != device_id:
                return self._refused("unknown_challenge", device_id)
            if row.used_at is not None:
                return self._refused("challenge_used", device_id)
            row.used_at = iso_utc(now)
            if row.expires_at <= iso_utc(now):
                return self._refused("challenge_expired", device_id)
            nonce = bytes.fromhex(row.nonce)
        with self._database.reading() as session:
            holder = self._holder(session, body, nonce, device_id, now)
        if holder is not None:
            with self._database.writing() as session:
                row = session.get(CardChallenge, challenge_id)
                row.national_number, row.card_number = holder.national_number, holder.card_number
        return holder

    def holder_for_claim(self, device_id: str, body: CardProofBody, *, request_id: str, service_code: str,
                         taken_at: str) -> Holder | None:
        """The holder of the card that signed this claim, when it was taken recently enough."""
        now = utc_now()
        try:
            taken = datetime.fromisoformat(taken_at.replace("Z", "+00:00"))
        except ValueError:
            return self._refused("claim_time_unreadable", device_id)
        if taken.tzinfo is None:
            return self._refused("claim_time_unreadable", device_id)
        if taken > now + CLAIM_CLOCK_SKEW:
            return self._refused("claim_in_future", device_id)
        if taken < now - PRESENCE_MAX_AGE:
            return self._refused("claim_too_old", device_id)
        with self._database.reading() as session:
            return self._holder(session, body, claim_challenge(request_id, service_code, taken_at), device_id, now)

    def holder_for_request(self, device_id: str, presence_id: str, request_id: str) -> Holder | None:
        """The holder proven by `presence_id` for this device, bound to `request_id` (the first one to use
        it; a retry of the same request finds it bound to itself)."""
        now = utc_now()
        with self._database.writing() as session:
            row = session.get(CardChallenge, presence_id)
            if row is None or row.device_id != device_id or row.national_number is None or row.card_number is None:
                return self._refused("unknown_presence", device_id)
            if row.created_at < iso_utc(now - PRESENCE_MAX_AGE):
                return self._refused("presence_too_old", device_id)
            if row.request_id not in (None, request_id):
                return self._refused("presence_used", device_id)
            row.request_id = request_id
            return Holder(row.national_number, row.card_number)

    def _holder(self, session, body: CardProofBody, challenge: bytes, device_id: str, now: datetime) -> Holder | None:
        try:
            identity = check_card_proof(self._issuer_keys, body.proof(), challenge)
        except CardProofRefused as exc:
            return self._refused("card_" + exc.reason, device_id)
        citizen = session.get(Citizen, identity.national_number)
        if citizen is None:
            return self._refused("unknown_citizen", device_id)
        if citizen.card_number != identity.card_number:
            return self._refused("card_mismatch", device_id)
        if citizen.card_expires < now.date() or identity.date_of_expiry < now.date():
            return self._refused("card_expired", device_id)
        return Holder(identity.national_number, identity.card_number)

    @staticmethod
    def _refused(reason: str, device_id: str) -> None:
        log.warning("presence.refused reason=%s device=%s", reason, device_id)
        return None


class ProvenBody(Body):
    """A question about the citizen whose card is in the reader: the challenge and the card's answer to it."""

    challenge_id: Identifier
    card_proof: CardProofBody
