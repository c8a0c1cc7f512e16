"""What the outbox carries: one kind per message, written and read by name."""

from __future__ import annotations

import enum


class MessageKind(str, enum.Enum):
    CERTIFICATE_REQUEST = "certificate_request"   # to central: issue a paid document
    VOID_REQUEST = "void_request"                 # to central: void a document that did not reach the citizen
    CLAIM_COLLECTED = "claim_collected"           # to central: a claimed document was printed for its citizen
