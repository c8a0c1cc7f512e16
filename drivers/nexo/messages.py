"""nexo message bodies other than payments: Login, Display, EventNotification, Abort,
and the structures every body shares (Response, TransactionIdentification,
MessageReference).

Each structure is a small frozen dataclass with `to_json` (the body as it is
sent) and `from_json` (read strictly: NexoProtocolError for anything
missing or mistyped). The POI sends a DisplayRequest of its own to the Sale
while a sale is under way; when it carries an `OutputBarcode` of type
QRCode that is a payment request for a mobile wallet, and its
`MinimumDisplayTime` (seconds) is how long the request stays payable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from drivers.nexo import fields
from drivers.nexo.enums import (
    BarcodeType, Device, ErrorCondition, EventToNotify, InfoQualify, MessageCategory, OutputFormat, Result,
)
from drivers.nexo.errors import NexoProtocolError

MAX_TEXT = 1024


@dataclass(frozen=True)
class Response:
    """The outcome of a request: Result, with an ErrorCondition when it failed."""

    result: Result
    error_condition: ErrorCondition | None = None
    additional_response: str = ""     # Adyen: form-encoded key=value pairs (refusalReason, message, ...)

    @property
    def succeeded(self) -> bool:
        return self.result is Result.SUCCESS

    def additional(self) -> dict[str, str]:
        """AdditionalResponse as key -> value, when it is form-encoded; {} otherwise."""
        try:
            return dict(parse_qsl(self.additional_response, keep_blank_values=True))
        except ValueError:
            return {}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"Result": self.result.value}
        if self.error_condition is not None:
            data["ErrorCondition"] = self.error_condition.value
        if self.additional_response:
            data["AdditionalResponse"] = self.additional_response
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> Response:
        data = fields.as_object(data, where)
        result = fields.choice(data, "Result", Result, where)
        condition = fields.opt_choice(data, "ErrorCondition", ErrorCondition, where)
        if result is Result.FAILURE and condition is None:
            raise NexoProtocolError("%s.ErrorCondition is missing (required when Result is Failure)" % where)
        additional = fields.any_text(data, "AdditionalResponse", where)
        return cls(result, condition, additional)

    @classmethod
    def in_body(cls, body: dict[str, Any], where: str) -> Response:
        """The body's `Response`, which every Service response carries."""
        return cls.from_json(fields.obj(body, "Response", where), where + ".Response")


def success() -> Response:
    return Response(Result.SUCCESS)


def failure(condition: ErrorCondition, **additional: str) -> Response:
    """A Failure; `additional` becomes the form-encoded AdditionalResponse."""
    return Response(Result.FAILURE, condition, urlencode(additional) if additional else "")


@dataclass(frozen=True)
class TransactionIdentification:
    transaction_id: str
    timestamp: str                 # ISO 8601

    def to_json(self) -> dict[str, Any]:
        return {"TransactionID": self.transaction_id, "TimeStamp": self.timestamp}

    @classmethod
    def from_json(cls, data: Any, where: str) -> TransactionIdentification:
        data = fields.as_object(data, where)
        return cls(fields.text(data, "TransactionID", where, max_length=128), fields.timestamp(data, "TimeStamp", where))


@dataclass(frozen=True)
class MessageReference:
    """Which earlier message a request is about (a TransactionStatus, an Abort)."""

    category: MessageCategory
    service_id: str | None = None
    sale_id: str | None = None
    poi_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"MessageCategory": self.category.value}
        for key, value in (("ServiceID", self.service_id), ("SaleID", self.sale_id), ("POIID", self.poi_id)):
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> MessageReference:
        data = fields.as_object(data, where)
        return cls(fields.choice(data, "MessageCategory", MessageCategory, where),
                   fields.opt_text(data, "ServiceID", where, max_length=10),
                   fields.opt_text(data, "SaleID", where, max_length=128),
                   fields.opt_text(data, "POIID", where, max_length=128))


# --- Login ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginRequest:
    date_time: str                      # the Sale's clock, ISO 8601
    application_name: str
    software_version: str
    manufacturer_id: str
    certification_code: str = ""
    terminal_environment: str = "Unattended"    # a kiosk: no cashier
    operator_language: str = "en"

    def to_json(self) -> dict[str, Any]:
        return {
            "DateTime": self.date_time,
            "SaleSoftware": {"ManufacturerID": self.manufacturer_id, "ApplicationName": self.application_name,
                             "SoftwareVersion": self.software_version,
                             "CertificationCode": self.certification_code or "none"},
            "SaleTerminalData": {"TerminalEnvironment": self.terminal_environment,
                                 "SaleCapabilities": ["CustomerDisplay"]},
            "OperatorLanguage": self.operator_language,
        }

    @classmethod
    def from_json(cls, body: Any, where: str = "LoginRequest") -> LoginRequest:
        body = fields.as_object(body, where)
        software = fields.obj(body, "SaleSoftware", where)
        terminal = fields.opt_obj(body, "SaleTerminalData", where) or {}
        return cls(fields.timestamp(body, "DateTime", where),
                   fields.text(software, "ApplicationName", where + ".SaleSoftware", max_length=128),
                   fields.text(software, "SoftwareVersion", where + ".SaleSoftware", max_length=64),
                   fields.text(software, "ManufacturerID", where + ".SaleSoftware", max_length=128),
                   fields.any_text(software, "CertificationCode", where + ".SaleSoftware"),
                   fields.any_text(terminal, "TerminalEnvironment", where + ".SaleTerminalData"),
                   fields.opt_text(body, "OperatorLanguage", where, max_length=8, default="en") or "en")


@dataclass(frozen=True)
class LoginResponse:
    response: Response
    poi_date_time: str | None = None     # POISystemData.DateTime

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"Response": self.response.to_json()}
        if self.poi_date_time is not None:
            data["POISystemData"] = {"DateTime": self.poi_date_time}
        return data

    @classmethod
    def from_json(cls, body: Any, where: str = "LoginResponse") -> LoginResponse:
        body = fields.as_object(body, where)
        response = Response.in_body(body, where)
        system = fields.opt_obj(body, "POISystemData", where)
        date_time = fields.timestamp(system, "DateTime", where + ".POISystemData") \
            if system is not None and "DateTime" in system else None
        return cls(response, date_time)


# --- Display ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Barcode:
    type: BarcodeType
    value: str


@dataclass(frozen=True)
class DisplayOutput:
    """What one display shows: lines of text, or a barcode."""

    device: Device
    info_qualify: InfoQualify
    text: tuple[str, ...] = ()
    barcode: Barcode | None = None
    response_required: bool = False
    minimum_display_time: int | None = None     # seconds

    def to_json(self) -> dict[str, Any]:
        if self.barcode is not None:
            content: dict[str, Any] = {"OutputFormat": OutputFormat.BARCODE.value,
                                       "OutputBarcode": {"BarcodeType": self.barcode.type.value,
                                                         "BarcodeValue": self.barcode.value}}
        else:
            content = {"OutputFormat": OutputFormat.TEXT.value,
                       "OutputText": [{"Text": line} for line in self.text]}
        data: dict[str, Any] = {"Device": self.device.value, "InfoQualify": self.info_qualify.value,
                                "OutputContent": content, "ResponseRequiredFlag": self.response_required}
        if self.minimum_display_time is not None:
            data["MinimumDisplayTime"] = self.minimum_display_time
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> DisplayOutput:
        data = fields.as_object(data, where)
        device = fields.choice(data, "Device", Device, where)
        qualify = fields.choice(data, "InfoQualify", InfoQualify, where)
        content = fields.obj(data, "OutputContent", where)
        inner = where + ".OutputContent"
        output_format = fields.choice(content, "OutputFormat", OutputFormat, inner)
        lines: tuple[str, ...] = ()
        barcode = None
        if output_format is OutputFormat.TEXT:
            texts = fields.array(content, "OutputText", inner)
            lines = tuple(fields.text(fields.as_object(item, "%s.OutputText[%d]" % (inner, index)), "Text",
                                      "%s.OutputText[%d]" % (inner, index), max_length=MAX_TEXT)
                          for index, item in enumerate(texts))
        elif output_format is OutputFormat.BARCODE:
            code = fields.obj(content, "OutputBarcode", inner)
            barcode = Barcode(fields.choice(code, "BarcodeType", BarcodeType, inner + ".OutputBarcode"),
                              fields.text(code, "BarcodeValue", inner + ".OutputBarcode", max_length=MAX_TEXT))
        minimum = fields.whole(data, "MinimumDisplayTime", where) if "MinimumDisplayTime" in data else None
        if minimum is not None and minimum < 0:
            raise NexoProtocolError("%s.MinimumDisplayTime is negative" % where)
        return cls(device, qualify, lines, barcode, fields.flag(data, "ResponseRequiredFlag", where), minimum)


@dataclass(frozen=True)
class DisplayRequest:
    outputs: tuple[DisplayOutput, ...]

    def to_json(self) -> dict[str, Any]:
        return {"DisplayOutput": [output.to_json() for output in self.outputs]}

    @classmethod
    def from_json(cls, body: Any, where: str = "DisplayRequest") -> DisplayRequest:
        body = fields.as_object(body, where)
        outputs = fields.array(body, "DisplayOutput", where)
        if not outputs:
            raise NexoProtocolError("%s.DisplayOutput is empty" % where)
        return cls(tuple(DisplayOutput.from_json(item, "%s.DisplayOutput[%d]" % (where, index))
                         for index, item in enumerate(outputs)))

    @property
    def qr_code(self) -> DisplayOutput | None:
        """The output that shows a QR code, if one does."""
        return next((o for o in self.outputs if o.barcode is not None and o.barcode.type is BarcodeType.QR_CODE),
                    None)


@dataclass(frozen=True)
class OutputResult:
    device: Device
    info_qualify: InfoQualify
    response: Response

    def to_json(self) -> dict[str, Any]:
        return {"Device": self.device.value, "InfoQualify": self.info_qualify.value,
                "Response": self.response.to_json()}


@dataclass(frozen=True)
class DisplayResponse:
    results: tuple[OutputResult, ...] = field(default_factory=tuple)

    @property
    def response(self) -> Response:
        """Success when every output succeeded; else the first failure."""
        return next((r.response for r in self.results if not r.response.succeeded), Response(Result.SUCCESS))

    def to_json(self) -> dict[str, Any]:
        return {"OutputResult": [result.to_json() for result in self.results]}

    @classmethod
    def from_json(cls, body: Any, where: str = "DisplayResponse") -> DisplayResponse:
        body = fields.as_object(body, where)
        items = fields.array(body, "OutputResult", where)
        if not items:
            raise NexoProtocolError("%s.OutputResult is empty" % where)
        results = []
        for index, item in enumerate(items):
            at = "%s.OutputResult[%d]" % (where, index)
            item = fields.as_object(item, at)
            results.append(OutputResult(fields.choice(item, "Device", Device, at),
                                        fields.choice(item, "InfoQualify", InfoQualify, at),
                                        Response.in_body(item, at)))
        return cls(tuple(results))


# --- EventNotification -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventNotification:
    event: EventToNotify
    timestamp: str
    details: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"TimeStamp": self.timestamp, "EventToNotify": self.event.value}
        if self.details:
            data["EventDetails"] = self.details
        return data

    @classmethod
    def from_json(cls, body: Any, where: str = "EventNotification") -> EventNotification:
        body = fields.as_object(body, where)
        return cls(fields.choice(body, "EventToNotify", EventToNotify, where),
                   fields.timestamp(body, "TimeStamp", where),
                   fields.any_text(body, "EventDetails", where))


# --- Abort ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AbortRequest:
    """Abort the transaction `reference` names. nexo gives an AbortRequest no response: the
    aborted request itself ends with Failure, ErrorCondition Aborted."""

    reference: MessageReference
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"MessageReference": self.reference.to_json(), "AbortReason": self.reason}

    @classmethod
    def from_json(cls, body: Any, where: str = "AbortRequest") -> AbortRequest:
        body = fields.as_object(body, where)
        return cls(MessageReference.from_json(fields.obj(body, "MessageReference", where),
                                              where + ".MessageReference"),
                   fields.text(body, "AbortReason", where, max_length=256))
