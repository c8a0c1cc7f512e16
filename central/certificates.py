"""What each kind of certificate says, read from the registry.

Labels come in Arabic and English; values are as the registry holds them
(names in Arabic, dates as YYYY-MM-DD), except the few closed values (sex,
marital status, "no convictions") which are given in the request's language.
A certificate that does not apply to the citizen is a :class:`NotApplicable`
value with a reason code, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from central.models import Citizen
from kiosk.documents import DocumentField


@dataclass(frozen=True)
class NotApplicable:
    reason: str   # not_married | no_family | unknown_service


LABELS: dict[str, dict[str, str]] = {
    "national_number": {"ar": "الرقم الوطني", "en": "National number"},
    "full_name": {"ar": "الاسم الكامل", "en": "Full name"},
    "given_name": {"ar": "الاسم", "en": "Given name"},
    "family_name": {"ar": "النسبة", "en": "Family name"},
    "father": {"ar": "اسم الأب", "en": "Father's name"},
    "mother": {"ar": "اسم الأم ونسبتها", "en": "Mother's full name"},
    "date_of_birth": {"ar": "تاريخ الولادة", "en": "Date of birth"},
    "place_of_birth": {"ar": "مكان الولادة", "en": "Place of birth"},
    "sex": {"ar": "الجنس", "en": "Sex"},
    "marital_status": {"ar": "الوضع العائلي", "en": "Marital status"},
    "civil_registry": {"ar": "القيد المدني", "en": "Civil registry entry"},
    "address": {"ar": "العنوان", "en": "Address"},
    "head_of_family": {"ar": "رب الأسرة", "en": "Head of family"},
    "husband": {"ar": "الزوج", "en": "Husband"},
    "wife": {"ar": "الزوجة", "en": "Wife"},
    "son": {"ar": "الابن", "en": "Son"},
    "daughter": {"ar": "الابنة", "en": "Daughter"},
    "marriage_date": {"ar": "تاريخ الزواج", "en": "Date of marriage"},
    "judicial_record": {"ar": "السجل العدلي", "en": "Judicial record"},
    "conviction": {"ar": "حكم", "en": "Conviction"},
}

_SEX = {"M": {"ar": "ذكر", "en": "Male"}, "F": {"ar": "أنثى", "en": "Female"}}
_MARITAL = {
    "single": {"M": "عازب", "F": "عزباء", "en": "Single"},
    "married": {"M": "متزوج", "F": "متزوجة", "en": "Married"},
    "divorced": {"M": "مطلق", "F": "مطلقة", "en": "Divorced"},
    "widowed": {"M": "أرمل", "F": "أرملة", "en": "Widowed"},
}
_NO_CONVICTIONS = {"ar": "لا حكم عليه", "en": "No convictions"}


def _field(key: str, value: str) -> DocumentField:
    return DocumentField(label=LABELS[key], value=value)


def _marital(citizen: Citizen, language: str) -> str:
    names = _MARITAL[citizen.marital_status]
    return names["en"] if language == "en" else names[citizen.sex]


def _member(citizen: Citizen) -> str:
    """A relative on a family statement: name, national number, date of birth."""
    return "%s — %s — %s" % (citizen.full_name_ar(), citizen.national_number, citizen.date_of_birth.isoformat())


def _identity(citizen: Citizen) -> list[DocumentField]:
    return [
        _field("national_number", citizen.national_number),
        _field("full_name", citizen.full_name_ar()),
        _field("father", citizen.father_name_ar),
        _field("mother", citizen.mother_name_ar),
        _field("date_of_birth", citizen.date_of_birth.isoformat()),
        _field("place_of_birth", citizen.place_of_birth_ar),
    ]


def _civil_status_extract(citizen: Citizen, language: str) -> list[DocumentField]:
    return [
        _field("national_number", citizen.national_number),
        _field("given_name", citizen.given_name_ar),
        _field("family_name", citizen.family_name_ar),
        _field("father", citizen.father_name_ar),
        _field("mother", citizen.mother_name_ar),
        _field("place_of_birth", citizen.place_of_birth_ar),
        _field("date_of_birth", citizen.date_of_birth.isoformat()),
        _field("sex", _SEX[citizen.sex][language]),
        _field("marital_status", _marital(citizen, language)),
        _field("civil_registry", citizen.civil_registry_ar),
    ]


def _family_head(citizen: Citizen) -> Citizen | None:
    """Whose family the statement shows: the citizen's own, else their parents'."""
    if citizen.spouse is not None or citizen.children:
        return citizen
    return citizen.parents[0] if citizen.parents else None


def _family_statement(citizen: Citizen, language: str) -> list[DocumentField] | NotApplicable:
    head = _family_head(citizen)
    if head is None:
        return NotApplicable("no_family")
    fields = [
        _field("head_of_family", _member(head)),
        _field("marital_status", _marital(head, language)),
        _field("civil_registry", head.civil_registry_ar),
    ]
    partner = head.spouse
    if partner is None and head is not citizen:
        partner = next((p for p in citizen.parents if p is not head), None)
    if partner is not None:
        fields.append(_field("wife" if partner.sex == "F" else "husband", _member(partner)))
    fields.extend(_field("daughter" if child.sex == "F" else "son", _member(child)) for child in head.children)
    return fields


def _non_conviction(citizen: Citizen, language: str) -> list[DocumentField]:
    fields = _identity(citizen)
    if not citizen.criminal_records:
        fields.append(_field("judicial_record", _NO_CONVICTIONS[language]))
    fields.extend(_field("conviction", "%s — %s — %s" % (r.date.isoformat(), r.court_ar, r.offence_ar))
                  for r in citizen.criminal_records)
    return fields


def _residence_certificate(citizen: Citizen, language: str) -> list[DocumentField]:
    return [
        _field("national_number", citizen.national_number),
        _field("full_name", citizen.full_name_ar()),
        _field("father", citizen.father_name_ar),
        _field("date_of_birth", citizen.date_of_birth.isoformat()),
        _field("civil_registry", citizen.civil_registry_ar),
        _field("address", citizen.address_ar),
    ]


def _birth_certificate(citizen: Citizen, language: str) -> list[DocumentField]:
    return _identity(citizen) + [
        _field("sex", _SEX[citizen.sex][language]),
        _field("civil_registry", citizen.civil_registry_ar),
    ]


def _marriage_certificate(citizen: Citizen, language: str) -> list[DocumentField] | NotApplicable:
    spouse = citizen.spouse
    if spouse is None:
        return NotApplicable("not_married")
    husband, wife = (citizen, spouse) if citizen.sex == "M" else (spouse, citizen)
    fields = [_field("husband", _member(husband)), _field("wife", _member(wife))]
    if citizen.marriage_date is not None:
        fields.append(_field("marriage_date", citizen.marriage_date.isoformat()))
    fields.append(_field("civil_registry", husband.civil_registry_ar))
    return fields


_BUILDERS: dict[str, Callable[[Citizen, str], list[DocumentField] | NotApplicable]] = {
    "civil-status-extract": _civil_status_extract,
    "family-statement": _family_statement,
    "non-conviction": _non_conviction,
    "residence-certificate": _residence_certificate,
    "birth-certificate": _birth_certificate,
    "marriage-certificate": _marriage_certificate,
}

KINDS = tuple(_BUILDERS)


def document_fields(service_code: str, citizen: Citizen, language: str) -> tuple[DocumentField, ...] | NotApplicable:
    """The fields of `service_code` for `citizen`; `language` ("ar" or "en") picks closed values."""
    builder = _BUILDERS.get(service_code)
    if builder is None:
        return NotApplicable("unknown_service")   # in the catalogue, but no certificate of that kind here
    fields = builder(citizen, language)
    return fields if isinstance(fields, NotApplicable) else tuple(fields)
