"""Citizen records for simulated cards, from the central registry's JSON.

The file is `{"citizens": [{"national_number": ..., ...}, ...]}` (the
reference central service's seed); keys the card does not carry are ignored.
"""

from __future__ import annotations

import json
import os
from typing import Any

REQUIRED_KEYS = ("national_number", "card_number", "given_name_ar", "family_name_ar",
                 "date_of_birth", "card_expires")


class RegistryError(ValueError):
    """The registry file is missing, malformed, or lacks a record."""


def load_citizens(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Citizen records by national number."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise RegistryError("registry %s cannot be read: %s" % (path, type(exc).__name__)) from None
    citizens = document.get("citizens") if isinstance(document, dict) else None
    if not isinstance(citizens, list):
        raise RegistryError("registry %s has no \"citizens\" list" % path)
    records: dict[str, dict[str, Any]] = {}
    for index, record in enumerate(citizens):
        if not isinstance(record, dict) or any(key not in record for key in REQUIRED_KEYS):
            raise RegistryError("registry %s: record %d lacks a required key" % (path, index))
        records[str(record["national_number"])] = record
    return records
