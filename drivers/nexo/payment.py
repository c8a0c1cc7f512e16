"""nexo payment bodies: Payment (a sale, or a refund of one), TransactionStatus and Reversal.

    PaymentRequest   SaleData.SaleTransactionID {TransactionID, TimeStamp},
                     PaymentTransaction.AmountsReq {Currency, RequestedAmount}
                     (and OriginalPOITransaction for a referenced refund),
                     PaymentData {PaymentType, PaymentInstrumentData.PaymentInstrumentType}
    PaymentResponse  Response, SaleData, POIData.POITransactionID, PaymentResult
                     {PaymentType, PaymentInstrumentData {PaymentInstrumentType, CardData
                     {PaymentBrand, MaskedPAN}}, AmountsResp {Currency, AuthorizedAmount},
                     PaymentAcquirerData.ApprovalCode}
    TransactionStatusRequest   MessageReference {MessageCategory, ServiceID, SaleID}
    TransactionStatusResponse  Response, MessageReference, RepeatedMessageResponse
                     {MessageHeader, RepeatedResponseMessageBody {PaymentResponse | ReversalResponse}}
    ReversalRequest  OriginalPOITransaction {SaleID, POIID, POITransactionID}, ReversalReason,
                     ReversedAmount, SaleData.SaleTransactionID (the reversal's own id)
    ReversalResponse Response, POIData, ReversedAmount

Amounts are Money here and decimal major units on the wire (`amounts`).
The nexo schema spells the masked card number `MaskedPAN`; Adyen's JSON
writes `MaskedPan`: both are read, `MaskedPAN` is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.nexo import fields
from drivers.nexo.amounts import to_decimal, to_money
from drivers.nexo.enums import PaymentInstrumentType, PaymentType, ReversalReason
from drivers.nexo.envelope import MessageHeader
from drivers.nexo.errors import NexoProtocolError
from drivers.nexo.messages import MessageReference, Response, TransactionIdentification
from kiosk.money import Money

MAX_SHORT_TEXT = 64


@dataclass(frozen=True)
class OriginalPOITransaction:
    """The earlier transaction a refund or a reversal gives back."""

    poi_transaction: TransactionIdentification
    poi_id: str | None = None
    sale_id: str | None = None
    approval_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.sale_id is not None:
            data["SaleID"] = self.sale_id
        if self.poi_id is not None:
            data["POIID"] = self.poi_id
        data["POITransactionID"] = self.poi_transaction.to_json()
        if self.approval_code is not None:
            data["ApprovalCode"] = self.approval_code
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> OriginalPOITransaction:
        data = fields.as_object(data, where)
        return cls(TransactionIdentification.from_json(fields.obj(data, "POITransactionID", where),
                                                       where + ".POITransactionID"),
                   fields.opt_text(data, "POIID", where, max_length=128),
                   fields.opt_text(data, "SaleID", where, max_length=128),
                   fields.opt_text(data, "ApprovalCode", where, max_length=MAX_SHORT_TEXT))


@dataclass(frozen=True)
class PaymentRequest:
    sale_transaction: TransactionIdentification      # the kiosk's sale_id (or a refund's own id)
    amount: Money
    payment_type: PaymentType = PaymentType.NORMAL
    instrument: PaymentInstrumentType | None = None  # MOBILE asks for a wallet payment
    original: OriginalPOITransaction | None = None   # the sale a referenced refund gives back
    sale_reference: str | None = None                # SaleData.SaleReferenceID: the kiosk's request id

    def to_json(self) -> dict[str, Any]:
        sale_data: dict[str, Any] = {"SaleTransactionID": self.sale_transaction.to_json()}
        if self.sale_reference is not None:
            sale_data["SaleReferenceID"] = self.sale_reference
        transaction: dict[str, Any] = {"AmountsReq": {"Currency": self.amount.currency,
                                                      "RequestedAmount": to_decimal(self.amount)}}
        if self.original is not None:
            transaction["OriginalPOITransaction"] = self.original.to_json()
        payment_data: dict[str, Any] = {"PaymentType": self.payment_type.value}
        if self.instrument is not None:
            payment_data["PaymentInstrumentData"] = {"PaymentInstrumentType": self.instrument.value}
        return {"SaleData": sale_data, "PaymentTransaction": transaction, "PaymentData": payment_data}

    @classmethod
    def from_json(cls, body: Any, where: str = "PaymentRequest") -> PaymentRequest:
        body = fields.as_object(body, where)
        sale_data = fields.obj(body, "SaleData", where)
        sale_transaction = TransactionIdentification.from_json(
            fields.obj(sale_data, "SaleTransactionID", where + ".SaleData"), where + ".SaleData.SaleTransactionID")
        transaction = fields.obj(body, "PaymentTransaction", where)
        at = where + ".PaymentTransaction.AmountsReq"
        amounts = fields.obj(transaction, "AmountsReq", where + ".PaymentTransaction")
        currency = fields.text(amounts, "Currency", at, max_length=3)
        amount = to_money(fields.number(amounts, "RequestedAmount", at), currency, where=at + ".RequestedAmount")
        original = transaction.get("OriginalPOITransaction")
        payment_data = fields.opt_obj(body, "PaymentData", where) or {}
        payment_type = fields.opt_choice(payment_data, "PaymentType", PaymentType, where + ".PaymentData") \
            or PaymentType.NORMAL
        instrument_data = fields.opt_obj(payment_data, "PaymentInstrumentData", where + ".PaymentData")
        instrument = fields.opt_choice(instrument_data, "PaymentInstrumentType", PaymentInstrumentType,
                                       where + ".PaymentData.PaymentInstrumentData") if instrument_data else None
        return cls(sale_transaction, amount, payment_type, instrument,
                   None if original is None else OriginalPOITransaction.from_json(
                       original, where + ".PaymentTransaction.OriginalPOITransaction"),
                   fields.opt_text(sale_data, "SaleReferenceID", where + ".SaleData", max_length=128))


@dataclass(frozen=True)
class PaymentResponse:
    """A payment's outcome as the POI answers it (also repeated by TransactionStatus).

    A Success carries the POI transaction, the sale transaction and the amount
    authorised; a Failure may carry them (the POI took the transaction, and it
    failed) or not (the POI never started it: busy, logged out)."""

    response: Response
    sale_transaction: TransactionIdentification | None = None
    poi_transaction: TransactionIdentification | None = None
    amount: Money | None = None                      # AmountsResp.AuthorizedAmount
    payment_type: PaymentType | None = None
    instrument: PaymentInstrumentType | None = None
    masked_pan: str = field(default="", repr=False)  # as the POI masks it; kept out of repr (and logs)
    brand: str = ""
    approval_code: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"Response": self.response.to_json()}
        if self.sale_transaction is not None:
            data["SaleData"] = {"SaleTransactionID": self.sale_transaction.to_json()}
        if self.poi_transaction is not None:
            data["POIData"] = {"POITransactionID": self.poi_transaction.to_json()}
        result: dict[str, Any] = {}
        if self.payment_type is not None:
            result["PaymentType"] = self.payment_type.value
        if self.instrument is not None:
            instrument: dict[str, Any] = {"PaymentInstrumentType": self.instrument.value}
            card: dict[str, Any] = {}
            if self.brand:
                card["PaymentBrand"] = self.brand
            if self.masked_pan:
                card["MaskedPAN"] = self.masked_pan
            if card:
                instrument["CardData"] = card
            result["PaymentInstrumentData"] = instrument
        if self.amount is not None:
            result["AmountsResp"] = {"Currency": self.amount.currency, "AuthorizedAmount": to_decimal(self.amount)}
        if self.approval_code:
            result["PaymentAcquirerData"] = {"ApprovalCode": self.approval_code}
        if result:
            data["PaymentResult"] = result
        return data

    @classmethod
    def from_json(cls, body: Any, where: str = "PaymentResponse") -> PaymentResponse:
        body = fields.as_object(body, where)
        response = Response.in_body(body, where)
        sale_data = fields.opt_obj(body, "SaleData", where)
        sale_transaction = None
        if sale_data is not None and "SaleTransactionID" in sale_data:
            sale_transaction = TransactionIdentification.from_json(sale_data["SaleTransactionID"],
                                                                   where + ".SaleData.SaleTransactionID")
        poi_data = fields.opt_obj(body, "POIData", where)
        poi_transaction = None
        if poi_data is not None:
            poi_transaction = TransactionIdentification.from_json(fields.obj(poi_data, "POITransactionID",
                                                                             where + ".POIData"),
                                                                  where + ".POIData.POITransactionID")
        result = fields.opt_obj(body, "PaymentResult", where) or {}
        at = where + ".PaymentResult"
        amount = None
        amounts = fields.opt_obj(result, "AmountsResp", at)
        if amounts is not None:
            currency = fields.text(amounts, "Currency", at + ".AmountsResp", max_length=3)
            amount = to_money(fields.number(amounts, "AuthorizedAmount", at + ".AmountsResp"), currency,
                              where=at + ".AmountsResp.AuthorizedAmount")
        instrument_data = fields.opt_obj(result, "PaymentInstrumentData", at) or {}
        instrument = fields.opt_choice(instrument_data, "PaymentInstrumentType", PaymentInstrumentType,
                                       at + ".PaymentInstrumentData")
        card = fields.opt_obj(instrument_data, "CardData", at + ".PaymentInstrumentData") or {}
        card_at = at + ".PaymentInstrumentData.CardData"
        masked_key = "MaskedPAN" if "MaskedPAN" in card else "MaskedPan"
        masked_pan = fields.any_text(card, masked_key, card_at)[:MAX_SHORT_TEXT]   # as printed; kept short
        acquirer = fields.opt_obj(result, "PaymentAcquirerData", at) or {}
        if response.succeeded:
            for what, value in (("SaleData.SaleTransactionID", sale_transaction),
                                ("POIData.POITransactionID", poi_transaction),
                                ("PaymentResult.AmountsResp", amount)):
                if value is None:
                    raise NexoProtocolError("%s.%s is missing (required when Result is Success)" % (where, what))
        return cls(response, sale_transaction, poi_transaction, amount,
                   fields.opt_choice(result, "PaymentType", PaymentType, at), instrument, masked_pan,
                   fields.any_text(card, "PaymentBrand", card_at)[:MAX_SHORT_TEXT],
                   fields.any_text(acquirer, "ApprovalCode", at + ".PaymentAcquirerData")[:MAX_SHORT_TEXT])


# --- TransactionStatus ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TransactionStatusRequest:
    reference: MessageReference | None = None     # None: the last transaction

    def to_json(self) -> dict[str, Any]:
        return {} if self.reference is None else {"MessageReference": self.reference.to_json()}

    @classmethod
    def from_json(cls, body: Any, where: str = "TransactionStatusRequest") -> TransactionStatusRequest:
        body = fields.as_object(body, where)
        reference = body.get("MessageReference")
        return cls(None if reference is None else MessageReference.from_json(reference, where + ".MessageReference"))


@dataclass(frozen=True)
class TransactionStatusResponse:
    """The status of an earlier transaction: on Success, its own response repeated."""

    response: Response
    reference: MessageReference | None = None
    repeated_header: MessageHeader | None = None
    repeated_payment: PaymentResponse | None = None
    repeated_reversal: ReversalResponse | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"Response": self.response.to_json()}
        if self.reference is not None:
            data["MessageReference"] = self.reference.to_json()
        if self.repeated_header is not None:
            body: dict[str, Any] = {}
            if self.repeated_payment is not None:
                body["PaymentResponse"] = self.repeated_payment.to_json()
            if self.repeated_reversal is not None:
                body["ReversalResponse"] = self.repeated_reversal.to_json()
            data["RepeatedMessageResponse"] = {"MessageHeader": self.repeated_header.to_json(),
                                               "RepeatedResponseMessageBody": body}
        return data

    @classmethod
    def from_json(cls, body: Any, where: str = "TransactionStatusResponse") -> TransactionStatusResponse:
        body = fields.as_object(body, where)
        response = Response.in_body(body, where)
        reference = body.get("MessageReference")
        reference = None if reference is None else MessageReference.from_json(reference, where + ".MessageReference")
        repeated = fields.opt_obj(body, "RepeatedMessageResponse", where)
        if repeated is None:
            return cls(response, reference)
        at = where + ".RepeatedMessageResponse"
        header = MessageHeader.from_json(fields.obj(repeated, "MessageHeader", at), at + ".MessageHeader") \
            if "MessageHeader" in repeated else None
        message = fields.obj(repeated, "RepeatedResponseMessageBody", at)
        at += ".RepeatedResponseMessageBody"
        payment = PaymentResponse.from_json(message["PaymentResponse"], at + ".PaymentResponse") \
            if "PaymentResponse" in message else None
        reversal = ReversalResponse.from_json(message["ReversalResponse"], at + ".ReversalResponse") \
            if "ReversalResponse" in message else None
        if payment is None and reversal is None:
            raise NexoProtocolError("%s repeats neither a PaymentResponse nor a ReversalResponse" % at)
        return cls(response, reference, header, payment, reversal)


# --- Reversal ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReversalRequest:
    original: OriginalPOITransaction
    reason: ReversalReason
    reversed_amount: Money | None = None                       # in full when None
    sale_transaction: TransactionIdentification | None = None  # the reversal's own id (SaleData)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"OriginalPOITransaction": self.original.to_json(),
                                "ReversalReason": self.reason.value}
        if self.reversed_amount is not None:
            data["ReversedAmount"] = to_decimal(self.reversed_amount)
        if self.sale_transaction is not None:
            data["SaleData"] = {"SaleTransactionID": self.sale_transaction.to_json()}
        return data

    @classmethod
    def from_json(cls, body: Any, currency: str, where: str = "ReversalRequest") -> ReversalRequest:
        """`currency` is the original sale's: ReversedAmount carries none of its own."""
        body = fields.as_object(body, where)
        original = OriginalPOITransaction.from_json(fields.obj(body, "OriginalPOITransaction", where),
                                                    where + ".OriginalPOITransaction")
        reason = fields.choice(body, "ReversalReason", ReversalReason, where)
        amount = fields.opt_number(body, "ReversedAmount", where)
        sale_data = fields.opt_obj(body, "SaleData", where)
        sale_transaction = None
        if sale_data is not None and "SaleTransactionID" in sale_data:
            sale_transaction = TransactionIdentification.from_json(sale_data["SaleTransactionID"],
                                                                   where + ".SaleData.SaleTransactionID")
        return cls(original, reason,
                   None if amount is None else to_money(amount, currency, where=where + ".ReversedAmount"),
                   sale_transaction)


@dataclass(frozen=True)
class ReversalResponse:
    response: Response
    poi_transaction: TransactionIdentification | None = None
    reversed_amount: Money | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"Response": self.response.to_json()}
        if self.poi_transaction is not None:
            data["POIData"] = {"POITransactionID": self.poi_transaction.to_json()}
        if self.reversed_amount is not None:
            data["ReversedAmount"] = to_decimal(self.reversed_amount)
        return data

    @classmethod
    def from_json(cls, body: Any, where: str = "ReversalResponse", *, currency: str | None = None) -> ReversalResponse:
        """`currency` (the original sale's) turns ReversedAmount into Money; without it the
        amount is checked to be a number and left out."""
        body = fields.as_object(body, where)
        response = Response.in_body(body, where)
        poi_data = fields.opt_obj(body, "POIData", where)
        poi_transaction = None
        if poi_data is not None:
            poi_transaction = TransactionIdentification.from_json(fields.obj(poi_data, "POITransactionID",
                                                                             where + ".POIData"),
                                                                  where + ".POIData.POITransactionID")
        amount = fields.opt_number(body, "ReversedAmount", where)
        reversed_amount = None
        if amount is not None and currency is not None:
            reversed_amount = to_money(amount, currency, where=where + ".ReversedAmount")
        return cls(response, poi_transaction, reversed_amount)
