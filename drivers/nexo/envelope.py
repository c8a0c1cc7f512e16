"""Whole nexo messages: the MessageHeader, the envelope, bytes in and out.

On the wire a message is one JSON object:

    {"SaleToPOIRequest":  {"MessageHeader": {...}, "PaymentRequest": {...}}}
    {"SaleToPOIResponse": {"MessageHeader": {...}, "PaymentResponse": {...}}}

The body's name is the header's MessageCategory followed by its MessageType
(`EventNotification` for an Event notification). Requests and notifications
travel in `SaleToPOIRequest`, whichever side sends them (the POI's own
DisplayRequest and EventNotification too); responses in `SaleToPOIResponse`.

`decode` reads JSON numbers as Decimal (never float), refuses NaN and
Infinity, duplicate keys, a second body, an envelope that does not match
the header's MessageType, and an encrypted message (Adyen's `NexoBlob`,
which this kiosk does not use). `expect_answer` checks that a response
belongs to the request that was sent: same class and category, same SaleID,
POIID and ServiceID (DeviceID for a device message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from drivers.nexo import fields
from drivers.nexo.enums import MessageCategory, MessageClass, MessageType
from drivers.nexo.errors import NexoProtocolError

PROTOCOL_VERSION = "3.0"
REQUEST_ENVELOPE = "SaleToPOIRequest"
RESPONSE_ENVELOPE = "SaleToPOIResponse"
MAX_ID_LENGTH = 10           # ServiceID, DeviceID: "^.{1,10}$"
MAX_SYSTEM_ID_LENGTH = 128   # SaleID, POIID


@dataclass(frozen=True)
class MessageHeader:
    message_class: MessageClass
    category: MessageCategory
    type: MessageType
    sale_id: str
    poi_id: str
    service_id: str | None = None
    device_id: str | None = None
    protocol_version: str | None = PROTOCOL_VERSION

    @property
    def body_name(self) -> str:
        return self.category.value + self.type.value

    def response(self) -> MessageHeader:
        """The header of the answer to this request: the same, as a Response."""
        return replace(self, type=MessageType.RESPONSE)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.protocol_version is not None:
            data["ProtocolVersion"] = self.protocol_version
        data["MessageClass"] = self.message_class.value
        data["MessageCategory"] = self.category.value
        data["MessageType"] = self.type.value
        if self.service_id is not None:
            data["ServiceID"] = self.service_id
        if self.device_id is not None:
            data["DeviceID"] = self.device_id
        data["SaleID"] = self.sale_id
        data["POIID"] = self.poi_id
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = "MessageHeader") -> MessageHeader:
        data = fields.as_object(data, where)
        message_class = fields.choice(data, "MessageClass", MessageClass, where)
        category = fields.choice(data, "MessageCategory", MessageCategory, where)
        kind = fields.choice(data, "MessageType", MessageType, where)
        version = fields.opt_text(data, "ProtocolVersion", where, max_length=16)
        if version is None and category in (MessageCategory.LOGIN, MessageCategory.DIAGNOSIS):
            raise NexoProtocolError("%s.ProtocolVersion is missing (required for %s)" % (where, category.value))
        service_id = fields.opt_text(data, "ServiceID", where, max_length=MAX_ID_LENGTH)
        device_id = fields.opt_text(data, "DeviceID", where, max_length=MAX_ID_LENGTH)
        if message_class is not MessageClass.DEVICE and service_id is None:
            raise NexoProtocolError("%s.ServiceID is missing (required for a %s message)"
                                    % (where, message_class.value))
        if message_class is MessageClass.DEVICE and service_id is None and device_id is None:
            raise NexoProtocolError("%s has neither DeviceID nor ServiceID (a Device message needs one)" % where)
        sale_id = fields.text(data, "SaleID", where, max_length=MAX_SYSTEM_ID_LENGTH)
        if kind is MessageType.RESPONSE:
            poi_id = fields.text(data, "POIID", where, max_length=MAX_SYSTEM_ID_LENGTH)
        else:       # a Sale that does not know its terminal's POIID yet logs in with an empty one
            poi_id = fields.any_text(data, "POIID", where)
            if "POIID" not in data:
                raise NexoProtocolError("%s.POIID is missing" % where)
            if len(poi_id) > MAX_SYSTEM_ID_LENGTH:
                raise NexoProtocolError("%s.POIID is longer than %d characters" % (where, MAX_SYSTEM_ID_LENGTH))
        return cls(message_class, category, kind, sale_id, poi_id, service_id, device_id, version)


@dataclass(frozen=True)
class Message:
    """A header and its body (the object under `<Category><Type>`), as plain JSON data."""

    header: MessageHeader
    body: dict[str, Any]

    @property
    def envelope(self) -> str:
        return RESPONSE_ENVELOPE if self.header.type is MessageType.RESPONSE else REQUEST_ENVELOPE

    def to_json(self) -> dict[str, Any]:
        return {self.envelope: {"MessageHeader": self.header.to_json(), self.header.body_name: self.body}}


def encode(message: Message) -> bytes:
    """The message as UTF-8 JSON, amounts written as exact decimal numbers."""
    return dumps(message.to_json()).encode("utf-8")


def decode(data: bytes) -> Message:
    """The message in `data`; NexoProtocolError for anything that is not one well-formed message."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NexoProtocolError("the message is not UTF-8") from None
    try:
        document = json.loads(text, parse_float=Decimal, parse_constant=_no_constant,
                              object_pairs_hook=_no_duplicates)
    except NexoProtocolError:
        raise
    except (ValueError, RecursionError) as exc:      # json.JSONDecodeError is a ValueError
        raise NexoProtocolError("the message is not JSON (%s)" % type(exc).__name__) from None
    document = fields.as_object(document, "the message")
    if len(document) != 1 or next(iter(document)) not in (REQUEST_ENVELOPE, RESPONSE_ENVELOPE):
        raise NexoProtocolError("the message is neither a SaleToPOIRequest nor a SaleToPOIResponse")
    ((envelope_name, envelope),) = document.items()
    envelope = fields.as_object(envelope, envelope_name)
    if "NexoBlob" in envelope:
        raise NexoProtocolError("%s is encrypted (NexoBlob); this kiosk speaks plain nexo" % envelope_name)
    header = MessageHeader.from_json(fields.obj(envelope, "MessageHeader", envelope_name),
                                     envelope_name + ".MessageHeader")
    expected = RESPONSE_ENVELOPE if header.type is MessageType.RESPONSE else REQUEST_ENVELOPE
    if envelope_name != expected:
        raise NexoProtocolError("a %s travels in %s, not %s" % (header.type.value, expected, envelope_name))
    bodies = [key for key in envelope if key not in ("MessageHeader", "SecurityTrailer")]
    if header.body_name not in envelope:
        raise NexoProtocolError("%s has no %s" % (envelope_name, header.body_name))
    if len(bodies) != 1:
        raise NexoProtocolError("%s carries more than one body" % envelope_name)
    return Message(header, fields.obj(envelope, header.body_name, envelope_name))


def expect_answer(request: MessageHeader, answer: Message) -> None:
    """NexoProtocolError unless `answer` is the response to `request`."""
    got = answer.header
    if got.type is not MessageType.RESPONSE:
        raise NexoProtocolError("a %s came where the %s response was awaited" % (got.body_name, request.category.value))
    if (got.message_class, got.category) != (request.message_class, request.category):
        raise NexoProtocolError("a %s %s response came to a %s %s request" % (
            got.message_class.value, got.category.value, request.message_class.value, request.category.value))
    if got.sale_id != request.sale_id:
        raise NexoProtocolError("the %s response is for another SaleID" % got.category.value)
    if request.poi_id and got.poi_id != request.poi_id:
        raise NexoProtocolError("the %s response comes from another POIID" % got.category.value)
    if request.message_class is MessageClass.DEVICE:
        compared = [(mine, theirs) for mine, theirs in ((request.device_id, got.device_id),
                                                        (request.service_id, got.service_id))
                    if mine is not None and theirs is not None]
        if not compared or any(mine != theirs for mine, theirs in compared):
            raise NexoProtocolError("the %s response answers another DeviceID" % got.category.value)
    elif got.service_id != request.service_id:
        raise NexoProtocolError("the %s response answers another ServiceID" % got.category.value)


def dumps(value: Any) -> str:
    """JSON text for plain data with Decimal amounts written as exact numbers (json.dumps would
    need floats); compact, UTF-8 text kept as is."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("an amount must be finite")
        parts.append(format(value, "f"))
    elif isinstance(value, str):
        parts.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    elif isinstance(value, dict):
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError("JSON keys are strings")
            if index:
                parts.append(",")
            parts.append(json.dumps(key, ensure_ascii=False))
            parts.append(":")
            _write(item, parts)
        parts.append("}")
    else:
        raise TypeError("cannot write %s as nexo JSON" % type(value).__name__)


def _no_constant(name: str) -> Any:
    raise NexoProtocolError("the message has %s, which is not JSON" % name)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise NexoProtocolError("the key %r appears twice in one object" % key[:40])
        result[key] = value
    return result
