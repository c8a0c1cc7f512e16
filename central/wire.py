"""What goes over the wire: body types, answers, and the digests of idempotent retries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kiosk.wire import ID_PATTERN, AnswerStatus

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
NOT_ELIGIBLE = "not_eligible"     # the one refusal a device learns about a citizen (the precise one is logged)
Currency = Literal["SYP", "USD", "EUR"]
AmountMinor = Annotated[int, Field(gt=0, le=10 ** 12)]


class Body(BaseModel):
    """A JSON body: unknown keys refused, no type coercion (an amount is never a float or a string)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class Answer:
    http_status: int
    body: dict[str, Any]

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.http_status)


def rejected(reason: str, *, http_status: int = 422) -> Answer:
    """A refusal with a stable reason code (never personal data)."""
    return Answer(http_status, {"status": AnswerStatus.REJECTED, "reason": reason})


def conflict(reason: str) -> Answer:
    """An id used again with a different body: a bug in the caller, never retried."""
    return Answer(409, {"status": AnswerStatus.CONFLICT, "reason": reason})


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def body_digest(body: BaseModel, *, exclude: frozenset[str] = frozenset()) -> str:
    """SHA-256 of a validated body (less the `exclude`d keys): tells a true retry from a reused id."""
    return hashlib.sha256(canonical_json(body.model_dump(mode="json", exclude=set(exclude)))).hexdigest()
