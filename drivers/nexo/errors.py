"""The one error of the nexo codec."""


class NexoProtocolError(Exception):
    """Bytes or a message the protocol does not allow here: not UTF-8 or not JSON, a frame
    too large or cut short, a missing or mistyped field, a value outside its enumeration,
    an answer to another request. The message names the field, never a card's data."""
