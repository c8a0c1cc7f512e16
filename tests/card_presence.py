"""Central's side of a card's proof of presence, for the tests' fakes of central.

The fakes give out challenges and check the card's proofs with the core's own
`check_card_proof`, as central does (central/presence.py): a runtime that
signed the wrong bytes, or with no card, is caught by the tests that run on
fakes too. Cards for them are issued by `ISSUER` (`issued_card`).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from drivers.card_sim.issuer import IssuerKey
from drivers.fakes.card_reader import FakeCard
from kiosk.card_proof import CHALLENGE_LENGTH, CardProof, CardProofRefused, check_card_proof, claim_challenge
from kiosk.issuer_keys import TrustStore
from kiosk.ports.card_reader import Identity
from kiosk.ports.central import Challenge

ISSUER = IssuerKey.generate()


def issued_card(identity: Identity, **options: Any) -> FakeCard:
    """`identity`'s card as ISSUER makes it: its proofs check."""
    return FakeCard.issued(identity, ISSUER, **options)


class CardChallenges:
    """Challenges given out, each taken once; the presences they became; the claims' proofs."""

    def __init__(self) -> None:
        self._trusted = TrustStore([ISSUER.public_key])
        self._ids = itertools.count(1)
        self._given: dict[str, bytes] = {}
        self.presences: dict[str, Identity] = {}     # challenge id -> the card's holder
        self.refused = 0                             # proofs that did not check

    def challenge(self) -> Challenge:
        challenge = Challenge("ch-%d" % next(self._ids), os.urandom(CHALLENGE_LENGTH))
        self._given[challenge.challenge_id] = challenge.nonce
        return challenge

    def prove(self, challenge: Challenge, proof: CardProof) -> Identity | None:
        """The holder of the card that signed `challenge` (used up), or None."""
        nonce = self._given.pop(challenge.challenge_id, None)
        identity = self._check(proof, nonce) if nonce is not None else None
        if identity is not None:
            self.presences[challenge.challenge_id] = identity
        return identity

    def requester(self, payload: dict) -> Identity | None:
        """Whose certificate request `payload` is: its presence, or for a claim the card's proof over it."""
        if payload.get("claim"):
            return self._check(CardProof.from_json(payload["card_proof"]), claim_challenge(payload["request_id"], payload["service_code"],
                                                      payload["taken_at"]))
        return self.presences.get(payload.get("presence_id", ""))

    def _check(self, proof: CardProof, challenge: bytes) -> Identity | None:
        try:
            return check_card_proof(self._trusted, proof, challenge)
        except CardProofRefused:
            self.refused += 1
            return None
