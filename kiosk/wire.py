"""The central API as both sides see it: where each call goes and what its answers say.

Central (`central/`) serves these paths and answers with these statuses; the
kiosk's client (`kiosk.central_client`) calls them and checks the answers
against them. Neither side spells a path or a status anywhere else.

The acquirer's payment look-up is here too: central asks it (`central/acquirer.py`)
before it issues a paid document, and the terminal simulator serves it.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from urllib.parse import quote

API = "/api/v1"
HEALTH = API + "/health"
CATALOGUE = API + "/catalogue"
ELIGIBILITY = API + "/requests/eligibility"
REQUESTS = API + "/requests"
VOID = API + "/requests/{request_id}/void"
VERIFY_DOCUMENT = API + "/documents/verify"
SIGNING_KEY = API + "/signing-key"
# Documents claimed while a kiosk could not reach central, waiting for their citizen at any kiosk.
CLAIMS_WAITING = API + "/claims/waiting"
CLAIM_COLLECTED = API + "/claims/{serial}/collected"
# A kiosk's identity: enrolled once with a code central staff issued, then every request signed
# (RFC 9421, Ed25519, the device id as keyid); a card's presence, proven over central's challenge.
ENROL = API + "/devices/enrol"
CHALLENGES = API + "/challenges"
# What a kiosk learns when central will not serve it (HTTP 401 or 403): its `reason`. A call
# refused as "replayed" (a signature central saw already) is only sent again, newly signed.
DEVICE_REFUSALS = frozenset({"unauthenticated", "unknown_device", "device_revoked"})
REPLAYED = "replayed"
# Covered by every kiosk's signature; a body is covered by its Content-Digest too.
SIGNED_COMPONENTS = ("@method", "@authority", "@target-uri")
SIGNATURE_MAX_AGE_S = 300

# The place a kiosk stands, as signed into every document: short, and plain text.
PLACE_MAX_LENGTH = 40
# Characters that would move or hide printed text (bidi embeddings, overrides and
# isolates; line and paragraph separators), beside the control characters.
_HIDING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")

# An id chosen by a kiosk (request, charge, refund, device): safe in a URL and a log line.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID = re.compile(ID_PATTERN)


class AnswerStatus(str, enum.Enum):
    """The `status` of central's answer to a certificate request or a void."""

    ISSUED = "issued"        # {"status", "document"}
    REJECTED = "rejected"    # {"status", "reason"}: never issued for this request id
    VOIDED = "voided"        # {"status", "request_id", "serial", "voided_at"}: to a void, and to a request replayed
                             # after its void (never the document again)
    CONFLICT = "conflict"    # a request id used again with another body: a bug, never retried
    COLLECTED = "collected"  # {"status", "serial", "collected_at"}: a claimed document printed for its citizen


# The acquirer's API: GET ACQUIRER_PAYMENT -> 200 {"payment_id", "status", "amount_minor",
# "currency", "terminal_id", "sale_id"}, or 404 {"reason": UNKNOWN_PAYMENT}.
ACQUIRER_PAYMENT = "/acquirer/v1/payments/{payment_id}"
UNKNOWN_PAYMENT = "unknown_payment"


class AcquirerPaymentStatus(str, enum.Enum):
    """The `status` of a payment as the acquirer holds it."""

    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"     # cancelled before settlement: nothing was taken
    REFUNDED = "refunded"     # given back after settlement


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def is_plain_text(value: str) -> bool:
    """No control character and nothing that moves or hides the text around it."""
    return not any(unicodedata.category(ch) == "Cc" or ch in _HIDING for ch in value)


def claim_collected_path(serial: str) -> str:
    return CLAIM_COLLECTED.format(serial=quote(serial, safe=""))


def void_path(request_id: str) -> str:
    return VOID.format(request_id=quote(request_id, safe=""))


def acquirer_payment_path(payment_id: str) -> str:
    return ACQUIRER_PAYMENT.format(payment_id=quote(payment_id, safe=""))
