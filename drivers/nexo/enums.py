"""The nexo enumerations the kiosk sends or reads, spelt as on the wire.

The values are those of the nexo Sale to POI 3.0 schema as Adyen's Terminal
API libraries generate them (e.g. `ErrorConditionType`, `EventToNotifyType`
in Adyen's .NET library). A value outside its enumeration is a
NexoProtocolError when read.
"""

from __future__ import annotations

import enum


class MessageClass(enum.Enum):
    SERVICE = "Service"      # a Sale request and its POI response (Login, Payment, ...)
    DEVICE = "Device"        # a request to a device of the other side (a display), and its response
    EVENT = "Event"          # a notification from the POI, never answered


class MessageCategory(enum.Enum):
    ABORT = "Abort"
    ADMIN = "Admin"
    BALANCE_INQUIRY = "BalanceInquiry"
    BATCH = "Batch"
    CARD_ACQUISITION = "CardAcquisition"
    CARD_READER_APDU = "CardReaderAPDU"
    CARD_READER_INIT = "CardReaderInit"
    CARD_READER_POWER_OFF = "CardReaderPowerOff"
    DIAGNOSIS = "Diagnosis"
    DISPLAY = "Display"
    ENABLE_SERVICE = "EnableService"
    EVENT = "Event"
    GET_TOTALS = "GetTotals"
    INPUT = "Input"
    INPUT_UPDATE = "InputUpdate"
    LOGIN = "Login"
    LOGOUT = "Logout"
    LOYALTY = "Loyalty"
    PAYMENT = "Payment"
    PIN = "PIN"
    PRINT = "Print"
    RECONCILIATION = "Reconciliation"
    REVERSAL = "Reversal"
    SOUND = "Sound"
    STORED_VALUE = "StoredValue"
    TRANSACTION_STATUS = "TransactionStatus"
    TRANSMIT = "Transmit"


class MessageType(enum.Enum):
    REQUEST = "Request"
    RESPONSE = "Response"
    NOTIFICATION = "Notification"


class Result(enum.Enum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    PARTIAL = "Partial"      # a partial approval: less than asked


class ErrorCondition(enum.Enum):
    ABORTED = "Aborted"                  # the Sale aborted it (AbortRequest)
    BUSY = "Busy"                        # the POI is busy with something else
    CANCEL = "Cancel"                    # the customer (or the POI's own timer) cancelled it
    DEVICE_OUT = "DeviceOut"
    INSERTED_CARD = "InsertedCard"
    IN_PROGRESS = "InProgress"           # the transaction asked about is still under way
    LOGGED_OUT = "LoggedOut"             # no Login (or the POI restarted since)
    MESSAGE_FORMAT = "MessageFormat"     # the request was malformed
    NOT_ALLOWED = "NotAllowed"
    NOT_FOUND = "NotFound"               # the transaction asked about does not exist
    PAYMENT_RESTRICTION = "PaymentRestriction"
    REFUSAL = "Refusal"                  # refused by the acquirer or the issuer
    UNAVAILABLE_DEVICE = "UnavailableDevice"
    UNAVAILABLE_SERVICE = "UnavailableService"
    INVALID_CARD = "InvalidCard"
    UNREACHABLE_HOST = "UnreachableHost"  # the POI could not reach its acquirer
    WRONG_PIN = "WrongPIN"


class PaymentType(enum.Enum):
    NORMAL = "Normal"
    REFUND = "Refund"
    ONE_TIME_RESERVATION = "OneTimeReservation"
    FIRST_RESERVATION = "FirstReservation"
    UPDATE_RESERVATION = "UpdateReservation"
    COMPLETION = "Completion"
    CASH_ADVANCE = "CashAdvance"
    CASH_DEPOSIT = "CashDeposit"
    RECURRING = "Recurring"
    INSTALMENT = "Instalment"
    ISSUER_INSTALMENT = "IssuerInstalment"
    PAID_OUT = "PaidOut"


class PaymentInstrumentType(enum.Enum):
    CARD = "Card"
    CHECK = "Check"
    MOBILE = "Mobile"          # a mobile phone or wallet app
    STORED_VALUE = "StoredValue"
    CASH = "Cash"


class ReversalReason(enum.Enum):
    CUST_CANCEL = "CustCancel"
    MERCHANT_CANCEL = "MerchantCancel"
    MALFUNCTION = "Malfunction"
    UNABLE_TO_COMPLETE = "Unable2Compl"


class EventToNotify(enum.Enum):
    BEGIN_MAINTENANCE = "BeginMaintenance"
    END_MAINTENANCE = "EndMaintenance"
    SHUTDOWN = "Shutdown"
    INITIALISED = "Initialised"
    OUT_OF_ORDER = "OutOfOrder"
    COMPLETED = "Completed"
    ABORT = "Abort"
    SALE_WAKE_UP = "SaleWakeUp"
    SALE_ADMIN = "SaleAdmin"
    CUSTOMER_LANGUAGE = "CustomerLanguage"
    KEY_PRESSED = "KeyPressed"
    SECURITY_ALARM = "SecurityAlarm"
    STOP_ASSISTANCE = "StopAssistance"
    CARD_INSERTED = "CardInserted"
    CARD_REMOVED = "CardRemoved"
    REJECT = "Reject"
    NETWORK_CONNECTED = "NetworkConnected"
    NETWORK_DISCONNECTED = "NetworkDisconnected"
    SCAN_BARCODE_RESULT = "ScanBarcodeResult"


class Device(enum.Enum):
    CASHIER_DISPLAY = "CashierDisplay"
    CUSTOMER_DISPLAY = "CustomerDisplay"
    CASHIER_INPUT = "CashierInput"
    CUSTOMER_INPUT = "CustomerInput"


class InfoQualify(enum.Enum):
    STATUS = "Status"
    ERROR = "Error"
    DISPLAY = "Display"
    SOUND = "Sound"
    INPUT = "Input"
    POI_REPLICATION = "POIReplication"
    CUSTOMER_ASSISTANCE = "CustomerAssistance"
    RECEIPT = "Receipt"
    DOCUMENT = "Document"
    VOUCHER = "Voucher"


class OutputFormat(enum.Enum):
    MESSAGE_REF = "MessageRef"
    TEXT = "Text"
    XHTML = "XHTML"
    BARCODE = "BarCode"


class BarcodeType(enum.Enum):
    EAN8 = "EAN8"
    EAN13 = "EAN13"
    UPCA = "UPCA"
    CODE25 = "Code25"
    CODE128 = "Code128"
    PDF417 = "PDF417"
    QR_CODE = "QRCode"
