"""nexo Sale to POI (protocol 3.0, JSON): the language the kiosk speaks to its payment terminal.

The kiosk is the Sale System, the payment terminal the POI. Every message
is a `SaleToPOIRequest` or a `SaleToPOIResponse` with a `MessageHeader` and
one body named after its category and type (`PaymentRequest`,
`EventNotification`, ...). The field names, enumerations and structure
follow the nexo Sale to POI specification as Adyen's Terminal API (a nexo
implementation) and its public libraries show it.

* `errors`    NexoProtocolError: anything the protocol does not allow here
* `framing`   length-prefixed frames on a TCP (or TLS) stream, with a size limit
* `amounts`   nexo's decimal amounts in major units <-> `Money`, exactly
* `enums`     the enumerations (MessageClass, ErrorCondition, PaymentType, ...)
* `fields`    strict readers of JSON objects (a missing or mistyped field is a
              NexoProtocolError naming the field, never a KeyError)
* `envelope`  MessageHeader, whole messages to and from bytes, and the check
              that an answer belongs to its request
* `messages`  Login, Display, EventNotification, Abort, and the shared
              Response and TransactionIdentification
* `payment`   Payment (and its Refund), TransactionStatus and Reversal

Everything here is pure: building, reading and checking messages. The
transport and the kiosk's rules live in `drivers.nexo_terminal`, the
simulated terminal in `drivers.terminal_sim`.
"""
