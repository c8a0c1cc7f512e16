"""The civil registry: reading a registry file, checking it, storing it.

The file format is described in central/REGISTRY.md. A bad file is refused
whole with one :class:`RegistryFileError` that names the record and the key
(``citizens[3].card_number: ...``) and never the value, which is personal data.
Citizens are upserted by national number; a citizen's family links, criminal
records, qualifications, real estate and vehicles are replaced by what the
file says.

Every text is printed on documents, so a text with a control character (C0,
DEL, C1) or a character that moves or hides the text around it (the bidi
embeddings, overrides and isolates U+202A..U+202E and U+2066..U+2069, the line
and paragraph separators) is refused, as `kiosk.wire.is_plain_text` says. A
file that is not one (a directory, over MAX_FILE_BYTES, not UTF-8, nested
deeper than Python's parser goes, not strict JSON) is refused with one line too.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.db import Database
from central.models import Citizen, CriminalRecord, Property, Qualification, Vehicle
from kiosk import wire

log = logging.getLogger(__name__)

MARITAL_STATUSES = ("single", "married", "divorced", "widowed")
LICENCE_GRADES = ("motorcycle", "private", "public", "heavy")

_NATIONAL_NUMBER = re.compile(r"[0-9]{11}")
_CARD_NUMBER = re.compile(r"SY[0-9]{10}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LATIN_NAME = re.compile(r"[A-Za-z][A-Za-z' .-]*")
_ARABIC_LETTER = re.compile(r"[\u0621-\u064A]")
_LICENCE_NUMBER = re.compile(r"[0-9]{6,12}")
_PARCEL = re.compile(r"[0-9]{1,6}(/[0-9]{1,4})?")
_SHARES = re.compile(r"([0-9]{1,5})/([0-9]{1,5})")
# A key's name as a registry file writes them (letters, digits, underscores): shown in a message when it is one,
# never otherwise (a stray value used as a key, a national number, is personal data).
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")

# A seed citizen takes about 1 KB of JSON; 32 MB is some 30,000 citizens, a few hundred MB once decoded,
# imported in one transaction. A larger registry is imported in several files, each family in one file
# (a spouse or a child must be in the same file or already stored).
MAX_FILE_BYTES = 32 * 1024 * 1024


class RegistryFileError(ValueError):
    """A registry file that cannot be imported. The message names where, never a value."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__("%s: %s" % (where, problem) if where else problem)
        self.where = where
        self.problem = problem


@dataclass(frozen=True, repr=False)
class CriminalRecordEntry:
    date: date
    court_ar: str
    offence_ar: str


@dataclass(frozen=True, repr=False)
class QualificationEntry:
    year: int
    certificate_ar: str
    institution_ar: str


@dataclass(frozen=True, repr=False)
class PropertyEntry:
    area_ar: str
    parcel: str
    description_ar: str
    shares: str


@dataclass(frozen=True, repr=False)
class VehicleEntry:
    plate_ar: str
    make_ar: str
    year: int


@dataclass(frozen=True, repr=False)
class CitizenRecord:
    """One citizen as a registry file gives them. Personal data: never log it."""

    national_number: str
    card_number: str
    given_name_ar: str
    family_name_ar: str
    given_name_latin: str | None
    family_name_latin: str | None
    father_name_ar: str
    mother_name_ar: str
    date_of_birth: date
    place_of_birth_ar: str
    sex: str
    civil_registry_ar: str
    card_issued: date
    card_expires: date
    marital_status: str
    spouse: str | None
    marriage_date: date | None
    children: tuple[str, ...]
    address_ar: str
    criminal_records: tuple[CriminalRecordEntry, ...]
    date_of_death: date | None
    place_of_death_ar: str | None
    divorce_date: date | None
    former_name_ar: str | None
    name_changed_on: date | None
    displaced_from_ar: str | None
    driving_licence_number: str | None
    driving_licence_grade: str | None
    driving_licence_expires: date | None
    qualifications: tuple[QualificationEntry, ...]
    properties: tuple[PropertyEntry, ...]
    vehicles: tuple[VehicleEntry, ...]

    def __repr__(self) -> str:
        return "CitizenRecord(<personal data withheld>)"


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int


# --- checking single values: each returns the value or raises ValueError(problem) ---

def _text(value: Any, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    if len(value) > max_length:
        raise ValueError("must be at most %d characters" % max_length)
    if not wire.is_plain_text(value):      # checked before strip(): a trailing control character is refused too
        raise ValueError("must not contain control characters or direction overrides (U+202A..U+202E, "
                         "U+2066..U+2069)")
    return value.strip()


def _arabic(value: Any) -> str:
    text = _text(value, 400)
    if not _ARABIC_LETTER.search(text):
        raise ValueError("must be written in Arabic")
    return text


def _latin(value: Any) -> str | None:
    if value is None:
        return None
    text = _text(value, 200)
    if not _LATIN_NAME.fullmatch(text):
        raise ValueError("must be Latin letters, spaces, hyphens or apostrophes")
    return text


def _national_number(value: Any) -> str:
    if not isinstance(value, str) or not _NATIONAL_NUMBER.fullmatch(value):
        raise ValueError("must be a string of 11 digits")
    return value


def _optional_national_number(value: Any) -> str | None:
    return None if value is None else _national_number(value)


def _card_number(value: Any) -> str:
    if not isinstance(value, str) or not _CARD_NUMBER.fullmatch(value):
        raise ValueError('must be "SY" followed by 10 digits')
    return value


def _date(value: Any) -> date:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real date (YYYY-MM-DD)") from None


def _optional_date(value: Any) -> date | None:
    return None if value is None else _date(value)


def _optional_arabic(value: Any) -> str | None:
    return None if value is None else _arabic(value)


def _year(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1900 <= value <= date.today().year:
        raise ValueError("must be a year, not in the future")
    return value


def _pattern(pattern: re.Pattern[str], description: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError("must be %s" % description)
        return value
    return check


def _shares(value: Any) -> str:
    text = _pattern(_SHARES, 'shares written "HELD/TOTAL"')(value)
    held, total = (int(part) for part in text.split("/"))
    if not 0 < held <= total:
        raise ValueError("must hold between 1 and all of the shares")
    return text


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("must be one of %s" % ", ".join('"%s"' % c for c in choices))
        return value
    return check


def _children(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of national numbers")
    numbers = tuple(value)
    for number in numbers:
        _national_number(number)
    if len(set(numbers)) != len(numbers):
        raise ValueError("names the same child twice")
    return numbers


# key -> (required, check). Keys not required may be left out.
_CITIZEN_KEYS: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "national_number": (True, _national_number),
    "card_number": (True, _card_number),
    "given_name_ar": (True, _arabic),
    "family_name_ar": (True, _arabic),
    "given_name_latin": (False, _latin),
    "family_name_latin": (False, _latin),
    "father_name_ar": (True, _arabic),
    "mother_name_ar": (True, _arabic),
    "date_of_birth": (True, _date),
    "place_of_birth_ar": (True, _arabic),
    "sex": (True, _one_of("M", "F")),
    "civil_registry_ar": (True, _arabic),
    "card_issued": (True, _date),
    "card_expires": (True, _date),
    "marital_status": (True, _one_of(*MARITAL_STATUSES)),
    "spouse": (False, _optional_national_number),
    "marriage_date": (False, _optional_date),
    "children": (False, _children),
    "address_ar": (True, _arabic),
    "criminal_records": (False, lambda value: value),  # checked entry by entry below
    "date_of_death": (False, _optional_date),
    "place_of_death_ar": (False, _optional_arabic),
    "divorce_date": (False, _optional_date),
    "former_name_ar": (False, _optional_arabic),
    "name_changed_on": (False, _optional_date),
    "displaced_from_ar": (False, _optional_arabic),
    "driving_licence_number": (False, _optional(_pattern(_LICENCE_NUMBER, "6 to 12 digits"))),
    "driving_licence_grade": (False, _optional(_one_of(*LICENCE_GRADES))),
    "driving_licence_expires": (False, _optional_date),
    "qualifications": (False, lambda value: value),    # checked entry by entry below
    "properties": (False, lambda value: value),        # checked entry by entry below
    "vehicles": (False, lambda value: value),          # checked entry by entry below
}
_DEFAULTS = {"given_name_latin": None, "family_name_latin": None, "spouse": None, "marriage_date": None,
             "children": (), "criminal_records": [], "date_of_death": None, "place_of_death_ar": None,
             "divorce_date": None, "former_name_ar": None, "name_changed_on": None, "displaced_from_ar": None,
             "driving_licence_number": None, "driving_licence_grade": None, "driving_licence_expires": None,
             "qualifications": [], "properties": [], "vehicles": []}
_RECORD_KEYS: dict[str, Callable[[Any], Any]] = {"date": _date, "court_ar": _arabic, "offence_ar": _arabic}
_QUALIFICATION_KEYS: dict[str, Callable[[Any], Any]] = {
    "year": _year, "certificate_ar": _arabic, "institution_ar": _arabic}
_PROPERTY_KEYS: dict[str, Callable[[Any], Any]] = {
    "area_ar": _arabic, "parcel": _pattern(_PARCEL, 'a plot number ("512" or "512/3")'),
    "description_ar": _arabic, "shares": _shares}
_VEHICLE_KEYS: dict[str, Callable[[Any], Any]] = {"plate_ar": _arabic, "make_ar": _arabic, "year": _year}
# A list of the file -> (its entries' keys, the entry class).
_LISTS: dict[str, tuple[dict[str, Callable[[Any], Any]], type]] = {
    "criminal_records": (_RECORD_KEYS, CriminalRecordEntry),
    "qualifications": (_QUALIFICATION_KEYS, QualificationEntry),
    "properties": (_PROPERTY_KEYS, PropertyEntry),
    "vehicles": (_VEHICLE_KEYS, VehicleEntry),
}
# Keys given together or not at all.
_TOGETHER = (("date_of_death", "place_of_death_ar"), ("former_name_ar", "name_changed_on"),
             ("driving_licence_number", "driving_licence_grade", "driving_licence_expires"))


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1) if len(key) <= 64 else []
    hint = ": did you mean `%s`?" % close[0] if close else ""
    if not _KEY_NAME.fullmatch(key):
        return "an unknown key, not shown (it is not a key's name)%s" % hint
    return "unknown key `%s`%s" % (key, hint)


def _checked_object(where: str, value: Any, keys: dict[str, Callable[[Any], Any]],
                    required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RegistryFileError(where, "must be an object")
    for key in value:
        if key not in keys:
            raise RegistryFileError(where, _unknown_key(str(key), list(keys)))
    out: dict[str, Any] = {}
    for key, check in keys.items():
        if key not in value:
            if key in required:
                raise RegistryFileError("%s.%s" % (where, key), "missing")
            continue
        try:
            out[key] = check(value[key])
        except ValueError as exc:
            raise RegistryFileError("%s.%s" % (where, key), str(exc)) from None
    return out


def _parse_citizen(where: str, value: Any) -> CitizenRecord:
    checks = {key: check for key, (_, check) in _CITIZEN_KEYS.items()}
    required = {key for key, (needed, _) in _CITIZEN_KEYS.items() if needed}
    fields = {**_DEFAULTS, **_checked_object(where, value, checks, required)}

    for name, (keys, entry_class) in _LISTS.items():
        entries = fields[name]
        if not isinstance(entries, list):
            raise RegistryFileError("%s.%s" % (where, name), "must be a list")
        fields[name] = tuple(
            entry_class(**_checked_object("%s.%s[%d]" % (where, name, i), entry, keys, set(keys)))
            for i, entry in enumerate(entries))
    fields["children"] = tuple(fields["children"])
    record = CitizenRecord(**fields)

    def problem(key: str, text: str) -> RegistryFileError:
        return RegistryFileError("%s.%s" % (where, key), text)

    if record.date_of_birth > date.today():
        raise problem("date_of_birth", "is in the future")
    if record.card_issued < record.date_of_birth:
        raise problem("card_issued", "is before the date of birth")
    if record.card_expires <= record.card_issued:
        raise problem("card_expires", "must be after card_issued")
    if (record.given_name_latin is None) != (record.family_name_latin is None):
        raise problem("family_name_latin" if record.family_name_latin is None else "given_name_latin",
                      "give both Latin names or neither")
    if record.spouse is not None:
        if record.spouse == record.national_number:
            raise problem("spouse", "is the citizen themself")
        if record.marital_status != "married":
            raise problem("spouse", 'is set but marital_status is not "married"')
    elif record.marital_status == "married":
        raise problem("spouse", 'is missing but marital_status is "married"')
    if record.marriage_date is not None and record.spouse is None:
        raise problem("marriage_date", "is set without a spouse")
    for keys in _TOGETHER:
        given = [key for key in keys if getattr(record, key) is not None]
        if given and len(given) != len(keys):
            raise problem(next(key for key in keys if key not in given), "give %s together, or none of them"
                          % ", ".join(keys))
    if record.date_of_death is not None and not record.date_of_birth <= record.date_of_death <= date.today():
        raise problem("date_of_death", "must be between the date of birth and today")
    if record.divorce_date is not None and record.marital_status != "divorced":
        raise problem("divorce_date", 'is set but marital_status is not "divorced"')
    if record.name_changed_on is not None and record.name_changed_on < record.date_of_birth:
        raise problem("name_changed_on", "is before the date of birth")
    if record.national_number in record.children:
        raise problem("children", "names the citizen themself")
    if record.spouse is not None and record.spouse in record.children:
        raise problem("children", "names the spouse")
    return record


def parse_registry(data: Any) -> list[CitizenRecord]:
    """Check a registry document (already decoded from JSON) on its own."""
    if not isinstance(data, dict):
        raise RegistryFileError("(top level)", 'must be an object with a "citizens" list')
    for key in data:
        if key != "citizens":
            raise RegistryFileError("(top level)", _unknown_key(str(key), ["citizens"]))
    citizens = data.get("citizens")
    if not isinstance(citizens, list):
        raise RegistryFileError("citizens", "must be a list")
    records = [_parse_citizen("citizens[%d]" % i, value) for i, value in enumerate(citizens)]

    first_by_number: dict[str, int] = {}
    first_by_card: dict[str, int] = {}
    for i, record in enumerate(records):
        if record.national_number in first_by_number:
            raise RegistryFileError("citizens[%d].national_number" % i,
                                    "repeats citizens[%d]" % first_by_number[record.national_number])
        if record.card_number in first_by_card:
            raise RegistryFileError("citizens[%d].card_number" % i,
                                    "repeats citizens[%d]" % first_by_card[record.card_number])
        first_by_number[record.national_number] = i
        first_by_card[record.card_number] = i
    return records


def load_registry_file(path: Path) -> list[CitizenRecord]:
    """Read and check a registry file; RegistryFileError names what is wrong."""
    text = _read(path)
    try:
        data = json.loads(text, parse_constant=_not_a_json_number)
    except json.JSONDecodeError as exc:
        raise RegistryFileError("", "not JSON (line %d column %d)" % (exc.lineno, exc.colno)) from None
    except _NotStrictJSON:
        raise RegistryFileError("", "not JSON (NaN and Infinity are not JSON numbers)") from None
    except RecursionError:     # a registry file nests five deep: citizens, a citizen, a list, an entry
        raise RegistryFileError("", "not a registry file (arrays or objects nested too deeply)") from None
    except ValueError:         # the one error json lets through: int()'s limit on digits
        raise RegistryFileError("", "not a registry file (a number with too many digits)") from None
    return parse_registry(data)


class _NotStrictJSON(ValueError):
    """NaN, Infinity or -Infinity: Python's json reads them, JSON has none."""


def _not_a_json_number(_name: str) -> Any:
    raise _NotStrictJSON


def _read(path: Path) -> str:
    """The text of the registry file at `path`: a regular file of at most MAX_FILE_BYTES, in UTF-8."""
    too_large = RegistryFileError("", "too large (over %d MB): import the registry in several files, each family "
                                      "in one file" % (MAX_FILE_BYTES // (1024 * 1024)))
    try:
        info = path.stat()
    except (OSError, ValueError) as exc:          # ValueError: a NUL in the file's name
        raise RegistryFileError("", "cannot be read (%s)" % type(exc).__name__) from None
    if stat.S_ISDIR(info.st_mode):
        raise RegistryFileError("", "is a directory, not a registry file")
    if not stat.S_ISREG(info.st_mode):
        raise RegistryFileError("", "is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise too_large
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RegistryFileError("", "cannot be read (%s)" % type(exc).__name__) from None
    if len(data) > MAX_FILE_BYTES:                # it grew since
        raise too_large
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryFileError("", "not UTF-8 text (byte %d)" % exc.start) from None


def _check_against_registry(session: Session, records: list[CitizenRecord]) -> None:
    """The links and card numbers of `records` make sense with what is already stored."""
    in_file = {r.national_number: r for r in records}
    mentioned = set(in_file)
    for r in records:
        mentioned.update(r.children)
        if r.spouse:
            mentioned.add(r.spouse)
    stored = {c.national_number: c for c in
              session.scalars(select(Citizen).where(Citizen.national_number.in_(mentioned)))}

    for i, r in enumerate(records):
        where = "citizens[%d]" % i
        if r.spouse is not None:
            if r.spouse in in_file:
                spouses_spouse = in_file[r.spouse].spouse
            elif r.spouse in stored:
                spouses_spouse = stored[r.spouse].spouse_number
            else:
                raise RegistryFileError(where + ".spouse", "no citizen with that national number in the file "
                                                           "or the registry")
            if spouses_spouse not in (None, r.national_number):
                raise RegistryFileError(where + ".spouse", "that citizen's record names another spouse")
        for child in r.children:
            if child not in in_file and child not in stored:
                raise RegistryFileError(where + ".children", "a child is neither in the file nor in the registry")
        holder = session.scalar(select(Citizen.national_number).where(Citizen.card_number == r.card_number))
        if holder is not None and holder != r.national_number and holder not in in_file:
            raise RegistryFileError(where + ".card_number", "belongs to another citizen in the registry")


_SCALARS = ("card_number", "given_name_ar", "family_name_ar", "given_name_latin", "family_name_latin",
            "father_name_ar", "mother_name_ar", "date_of_birth", "place_of_birth_ar", "sex", "civil_registry_ar",
            "card_issued", "card_expires", "marital_status", "marriage_date", "address_ar", "date_of_death",
            "place_of_death_ar", "divorce_date", "former_name_ar", "name_changed_on", "displaced_from_ar",
            "driving_licence_number", "driving_licence_grade", "driving_licence_expires")


def import_citizens(database: Database, records: list[CitizenRecord]) -> ImportSummary:
    """Upsert `records` by national number, all or nothing."""
    with database.writing() as session:
        _check_against_registry(session, records)
        citizens: dict[str, Citizen] = {}
        created = 0
        for r in records:
            citizen = session.get(Citizen, r.national_number)
            if citizen is None:
                citizen = Citizen(national_number=r.national_number)
                session.add(citizen)
                created += 1
            for name in _SCALARS:
                setattr(citizen, name, getattr(r, name))
            citizens[r.national_number] = citizen
        session.flush()  # every citizen exists before anyone links to them

        def find(number: str) -> Citizen:
            return citizens.get(number) or session.get_one(Citizen, number)

        for r in records:
            citizen = citizens[r.national_number]
            citizen.spouse = find(r.spouse) if r.spouse else None
            citizen.children = [find(n) for n in r.children]
            citizen.criminal_records = [CriminalRecord(date=e.date, court_ar=e.court_ar, offence_ar=e.offence_ar)
                                        for e in r.criminal_records]
            citizen.qualifications = [Qualification(year=e.year, certificate_ar=e.certificate_ar,
                                                    institution_ar=e.institution_ar)
                                      for e in r.qualifications]
            citizen.properties = [Property(area_ar=e.area_ar, parcel=e.parcel, description_ar=e.description_ar,
                                           shares=e.shares) for e in r.properties]
            citizen.vehicles = [Vehicle(plate_ar=e.plate_ar, make_ar=e.make_ar, year=e.year) for e in r.vehicles]
    summary = ImportSummary(created=created, updated=len(records) - created)
    log.info("registry.imported created=%d updated=%d", summary.created, summary.updated)
    return summary
