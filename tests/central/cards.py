"""A citizen's ID card in a kiosk's reader, for central's tests: the card simulator's card, read
and made to sign through the kiosk's own card protocol, in process (no pcscd).

`CardInReader.answer(http)` asks central for a challenge as a kiosk would and
returns the challenge id with the card's proof over it, as the body of a
pre-check or of a question about waiting documents names them.

A card the kiosk refuses (forged, cloned, expired, a swapped photo) gives
the kiosk no proof (`kiosk_proof` is None); `sign` then answers what a
tampered kiosk would send central anyway: EF.ID and EF.ID_SIG as the card
holds them, and the chip's own signature over the challenge.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from drivers.card_sim.card import CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.id_card import apdu
from drivers.id_card.errors import CardUnreadable
from drivers.id_card.pin import pin_block
from drivers.id_card.protocol import IdCardSession
from kiosk.card_proof import CardProof, claim_challenge
from kiosk.issuer_keys import TrustStore
from kiosk.ports.card_reader import CardVerdict

PIN = "1234"


class CardInReader:
    """`citizen`'s card (a seed record), authenticated with its PIN as the kiosk does before it asks
    central anything."""

    def __init__(self, citizen: dict[str, Any], issuer: IssuerKey, *,
                 profile: CardProfile = CardProfile.VALID) -> None:
        self.card = SimulatedCard.for_citizen(citizen, issuer=issuer, profile=profile, pin=PIN)
        self.card.power_on()
        self._session = IdCardSession(self._transmit, TrustStore([issuer.public_key]))
        self._session.select()
        result = self._session.authenticate(pin_block(PIN), today=dt.date.today())
        # A forged or cloned card is refused by the kiosk; central is shown what it would have sent.
        # So is a card whose date of expiry (the registry record's) has passed.
        self.verdict = result.verdict
        assert profile is not CardProfile.VALID or result.verdict in (CardVerdict.VALID, CardVerdict.EXPIRED), \
            result

    def _transmit(self, command: bytes | bytearray) -> tuple[bytes, int]:
        answer = self.card.transmit(bytes(command))
        if answer is None or len(answer) < 2:
            raise CardUnreadable("silent")
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    def kiosk_proof(self, challenge: bytes) -> CardProof | None:
        """What the kiosk's own card protocol gives for `challenge`: None for a card it refused."""
        return self._session.prove(challenge)

    def sign(self, challenge: bytes) -> CardProof:
        """The card's proof over `challenge`: the kiosk's, or for a card the kiosk refused, the same
        three things read past the kiosk's checks (as a tampered kiosk would send them)."""
        if self.verdict is CardVerdict.VALID:
            proof = self.kiosk_proof(challenge)
            assert proof is not None, "the card did not sign"
            return proof
        signature, sw = self._transmit(apdu.internal_authenticate(challenge))
        assert sw == apdu.SW_OK, "the card did not sign: %04X" % sw
        return CardProof(ef_id=self.card.file(apdu.FID_ID), ef_id_sig=self.card.file(apdu.FID_ID_SIG),
                         signature=signature)

    def answer(self, http: Any) -> dict[str, Any]:
        """Central's fresh challenge, signed by this card: ``{"challenge_id", "card_proof"}``."""
        response = http.post("/challenges", json={})
        assert response.status_code == 200, response.text
        challenge = response.json()
        nonce = base64.b64decode(challenge["challenge"])
        return {"challenge_id": challenge["challenge_id"], "card_proof": self.sign(nonce).to_json()}

    def sign_claim(self, request_id: str, service_code: str, taken_at: str) -> dict[str, Any]:
        """The card's proof over an offline claim, as the kiosk puts it in the claim's request."""
        return self.sign(claim_challenge(request_id, service_code, taken_at)).to_json()
