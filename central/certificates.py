"""What each kind of certificate says, read from the registry as its layout describes.

The layouts are data (central/seed/layouts.json), read by one function,
:func:`document_fields`: adding a kind of certificate adds an entry there and
a service to the catalogue, and no code. A layout gives the kind's title in
Arabic and English, whether it is bilingual (each label printed in both
languages, for use abroad; none is yet), the requirements that make it
apply to a citizen, and its fields in order.

Each field has a label (``label``, an id of the ``labels`` table, or
``label_by_sex``, one id per sex of the person the field is about) and a
value: ``value``, a path in the citizen's record, or several paths whose
values are joined with " — " (a relative: name, national number, date of
birth), or ``text``, a fixed text in both languages. A path is dotted steps
from the citizen: a column (``date_of_birth``), a link (``spouse``,
``children``, ``criminal_records``), a method of the record without
arguments (``full_name_ar``, or a fact such as ``single`` that is None when it
does not hold), or one of the few relations worked out from the links
(``family_head``, ``family_partner``, ``husband``, ``wife``,
``deceased_parent``; see :data:`RELATIONS`). ``of`` names the record the field is about (default: the
citizen), and ``each`` a list of records, one field per record (the
family's children, the convictions). ``closed`` names the table of
``closed_values`` that translates the value (sex, marital status) into the
request's language; a translation may differ by the sex of the person the
field is about. ``optional`` leaves the field out when its record or value
is missing; ``when_empty`` keeps it only when that path holds nothing (the
"no convictions" line).

Labels come in Arabic and English; values are as the registry holds them
(names in Arabic, dates as YYYY-MM-DD), except closed values and fixed texts,
given in the request's language. A certificate that does not apply to the
citizen is a :class:`NotApplicable` value with the reason its layout names
(or ``unknown_service``), never an exception. Layouts are checked when read:
a typo in a path or label fails at start-up, naming where, not at a
citizen's request.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect as sqlalchemy_inspect

from central.models import Citizen
from kiosk.documents import DocumentField

LAYOUTS_FILE = Path(__file__).with_name("seed") / "layouts.json"
LANGUAGES = ("ar", "en")
SEXES = ("M", "F")
JOINER = " — "


@dataclass(frozen=True)
class NotApplicable:
    reason: str   # a layout's requirement (not_married, no_family, ...) or unknown_service


class LayoutError(ValueError):
    """A layout that cannot be read or applied; names where, never a citizen's data."""


# --- relations worked out from the registry's links -----------------------------------

def _family_head(citizen: Citizen) -> Citizen | None:
    """Whose family the statement shows: the citizen's own, else their parents'."""
    if citizen.spouse is not None or citizen.children:
        return citizen
    return citizen.parents[0] if citizen.parents else None


def _family_partner(citizen: Citizen) -> Citizen | None:
    """The head of family's spouse, or else the citizen's other parent."""
    head = _family_head(citizen)
    if head is None:
        return None
    if head.spouse is None and head is not citizen:
        return next((parent for parent in citizen.parents if parent is not head), None)
    return head.spouse


def _husband(citizen: Citizen) -> Citizen | None:
    if citizen.spouse is None:
        return None
    return citizen if citizen.sex == "M" else citizen.spouse


def _wife(citizen: Citizen) -> Citizen | None:
    if citizen.spouse is None:
        return None
    return citizen.spouse if citizen.sex == "M" else citizen


def _deceased_parent(citizen: Citizen) -> Citizen | None:
    """The parent whose death the registry holds (the father first, when both have died)."""
    return next((parent for parent in citizen.parents if parent.date_of_death is not None), None)


RELATIONS: dict[str, Callable[[Citizen], Citizen | None]] = {
    "family_head": _family_head,
    "family_partner": _family_partner,
    "husband": _husband,
    "wife": _wife,
    "deceased_parent": _deceased_parent,
}


# --- the layouts as values ------------------------------------------------------------

@dataclass(frozen=True)
class FieldLayout:
    where: str                                # "kinds.<kind>.fields[<n>]", for error messages
    label: str | None                         # a label id, or
    label_by_sex: Mapping[str, str] | None    # sex -> label id
    value: tuple[str, ...]                    # paths from the record, joined with JOINER; or
    text: Mapping[str, str] | None            # language -> fixed text
    closed: str | None                        # table of closed values translating the value
    of: str                                   # path to the record the field is about ("" the citizen)
    each: str | None                          # path to a list of records: one field per record
    optional: bool
    when_empty: str | None


@dataclass(frozen=True)
class Requirement:
    path: str      # must lead to something (a record, a non-empty list, a value) ...
    reason: str    # ... or the kind does not apply, for this reason


@dataclass(frozen=True)
class CertificateLayout:
    kind: str
    title: Mapping[str, str]       # language -> title
    bilingual: bool
    requires: tuple[Requirement, ...]
    fields: tuple[FieldLayout, ...]


@dataclass(frozen=True)
class Layouts:
    labels: Mapping[str, Mapping[str, str]]                     # label id -> language -> label
    closed_values: Mapping[str, Mapping[str, Mapping[str, Any]]]  # table -> code -> language -> text or sex -> text
    kinds: Mapping[str, CertificateLayout]                      # in the order the file gives them


# --- reading and checking -------------------------------------------------------------

_STEP = re.compile(r"[a-z][a-z0-9_]*")
_KIND = re.compile(r"[a-z0-9][a-z0-9-]*")
_FIELD_KEYS = frozenset({"label", "label_by_sex", "value", "text", "closed", "of", "each", "optional",
                         "when_empty"})
_KIND_KEYS = frozenset({"title", "bilingual", "requires", "fields"})


@dataclass(frozen=True)
class _Reach:
    """What a path leads to: records of `record` (None: a plain value), one or a list."""

    record: type | None
    many: bool


def _reach(record: type, path: str, where: str) -> _Reach:
    """Follow `path` through the model classes from `record`, or say where it goes wrong."""
    reach = _Reach(record, many=False)
    for step in path.split(".") if path else ():
        if reach.record is None or reach.many:
            raise LayoutError("%s: path `%s` goes on past a %s" % (where, path, "list" if reach.many else "value"))
        if not _STEP.fullmatch(step):
            raise LayoutError("%s: `%s` is not a step of a path" % (where, step))
        if reach.record is Citizen and step in RELATIONS:
            reach = _Reach(Citizen, many=False)
            continue
        mapper = sqlalchemy_inspect(reach.record)
        if step in mapper.relationships:
            link = mapper.relationships[step]
            reach = _Reach(link.mapper.class_, many=bool(link.uselist))
        elif step in mapper.column_attrs or isinstance(inspect.getattr_static(reach.record, step, None),
                                                       types.FunctionType):
            reach = _Reach(None, many=False)
        else:
            raise LayoutError("%s: a %s record has no `%s`" % (where, reach.record.__name__, step))
    return reach


def _object(value: Any, where: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LayoutError("%s: expected an object" % where)
    unknown = sorted(set(value) - keys)
    if unknown:
        raise LayoutError("%s: unknown key `%s` (known: %s)" % (where, unknown[0], ", ".join(sorted(keys))))
    return value


def _texts(value: Any, where: str, keys: tuple[str, ...] = LANGUAGES) -> dict[str, str]:
    """An object with exactly `keys`, each a non-empty text."""
    if not isinstance(value, dict) or set(value) != set(keys) or \
            not all(isinstance(text, str) and text.strip() for text in value.values()):
        raise LayoutError("%s: expected a text for each of %s" % (where, ", ".join(keys)))
    return dict(value)


def _closed_values(data: Any) -> dict[str, dict[str, dict[str, Any]]]:
    if not isinstance(data, dict):
        raise LayoutError("closed_values: expected an object of tables")
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for table, codes in data.items():
        if not isinstance(codes, dict) or not codes:
            raise LayoutError("closed_values.%s: expected an object of codes" % table)
        tables[table] = {}
        for code, names in codes.items():
            where = "closed_values.%s.%s" % (table, code)
            if not isinstance(names, dict) or set(names) != set(LANGUAGES):
                raise LayoutError("%s: expected a text for each of %s" % (where, ", ".join(LANGUAGES)))
            tables[table][code] = {}
            for language, name in names.items():
                at = "%s.%s" % (where, language)
                if isinstance(name, dict):
                    tables[table][code][language] = _texts(name, at, SEXES)   # differs by the person's sex
                elif isinstance(name, str) and name.strip():
                    tables[table][code][language] = name
                else:
                    raise LayoutError("%s: expected a text, or one for each of %s" % (at, ", ".join(SEXES)))
    return tables


def _field(data: Any, where: str, labels: Mapping[str, Any], closed_values: Mapping[str, Any]) -> FieldLayout:
    data = _object(data, where, _FIELD_KEYS)
    if ("label" in data) == ("label_by_sex" in data):
        raise LayoutError("%s: give either `label` or `label_by_sex`" % where)
    if ("value" in data) == ("text" in data):
        raise LayoutError("%s: give either `value` or `text`" % where)
    if "of" in data and "each" in data:
        raise LayoutError("%s: give `of` or `each`, not both" % where)
    label_by_sex = _texts(data["label_by_sex"], where + ".label_by_sex", SEXES) if "label_by_sex" in data else None
    for label_id in [data["label"]] if label_by_sex is None else label_by_sex.values():
        if not isinstance(label_id, str) or label_id not in labels:
            raise LayoutError("%s: no label `%s` in `labels`" % (where, label_id))
    value = data.get("value", [])
    paths = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
    if not all(isinstance(path, str) and path for path in paths) or ("value" in data and not paths):
        raise LayoutError("%s: `value` is a path or a list of paths" % where)
    text = _texts(data["text"], where + ".text") if "text" in data else None
    closed = data.get("closed")
    if closed is not None and (closed not in closed_values or len(paths) != 1):
        raise LayoutError("%s: `closed` names a table of `closed_values` and goes with one path" % where)
    optional = data.get("optional", False)
    if not isinstance(optional, bool):
        raise LayoutError("%s: `optional` is true or false" % where)

    each = data.get("each")
    of = data.get("of", "")
    if not isinstance(of, str) or not (each is None or isinstance(each, str) and each):
        raise LayoutError("%s: `of` and `each` are paths" % where)
    about = _reach(Citizen, each if each is not None else of, where)
    if about.record is None or about.many != (each is not None):
        raise LayoutError("%s: `%s` must lead to %s" % (where, "each" if each is not None else "of",
                                                         "a list of records" if each is not None else "a record"))
    for path in paths:
        if _reach(about.record, path, where) != _Reach(None, many=False):
            raise LayoutError("%s: value `%s` must lead to a plain value" % (where, path))
    by_sex = label_by_sex is not None or (closed is not None and any(
        isinstance(name, dict) for names in closed_values[closed].values() for name in names.values()))
    if by_sex and about.record is not Citizen:
        raise LayoutError("%s: a text by sex needs a person, not a %s" % (where, about.record.__name__))
    when_empty = data.get("when_empty")
    if when_empty is not None:
        if not isinstance(when_empty, str) or not when_empty:
            raise LayoutError("%s: `when_empty` is a path" % where)
        _reach(Citizen, when_empty, where)
    return FieldLayout(where=where, label=data.get("label"), label_by_sex=label_by_sex, value=paths, text=text,
                       closed=closed, of=of, each=each, optional=optional, when_empty=when_empty)


def _kind(kind: str, data: Any, labels: Mapping[str, Any], closed_values: Mapping[str, Any]) -> CertificateLayout:
    where = "kinds.%s" % kind
    if not _KIND.fullmatch(kind):
        raise LayoutError("%s: a kind is lower-case letters, digits and hyphens" % where)
    data = _object(data, where, _KIND_KEYS)
    if not isinstance(data.get("bilingual"), bool):
        raise LayoutError("%s.bilingual: true or false" % where)
    requires = []
    for index, requirement in enumerate(data.get("requires", [])):
        at = "%s.requires[%d]" % (where, index)
        requirement = _object(requirement, at, frozenset({"path", "reason"}))
        path, reason = requirement.get("path"), requirement.get("reason")
        if not isinstance(path, str) or not path or not isinstance(reason, str) or not _STEP.fullmatch(reason):
            raise LayoutError("%s: needs a `path` and a `reason` code" % at)
        _reach(Citizen, path, at)
        requires.append(Requirement(path, reason))
    fields = data.get("fields")
    if not isinstance(fields, list) or not fields:
        raise LayoutError("%s.fields: expected a list of fields" % where)
    return CertificateLayout(
        kind=kind, title=_texts(data.get("title"), where + ".title"), bilingual=data["bilingual"],
        requires=tuple(requires),
        fields=tuple(_field(field, "%s.fields[%d]" % (where, index), labels, closed_values)
                     for index, field in enumerate(fields)))


def load_layouts(data: Any) -> Layouts:
    """The layouts of `data` (as layouts.json holds them), checked; LayoutError names the first fault."""
    data = _object(data, "layouts", frozenset({"labels", "closed_values", "kinds"}))
    raw_labels = data.get("labels")
    if not isinstance(raw_labels, dict):
        raise LayoutError("labels: expected an object")
    labels = {label_id: _texts(texts, "labels.%s" % label_id) for label_id, texts in raw_labels.items()}
    closed_values = _closed_values(data.get("closed_values", {}))
    kinds = data.get("kinds")
    if not isinstance(kinds, dict) or not kinds:
        raise LayoutError("kinds: expected an object of kinds")
    return Layouts(labels=labels, closed_values=closed_values,
                   kinds={kind: _kind(kind, layout, labels, closed_values) for kind, layout in kinds.items()})


@functools.cache
def standard_layouts() -> Layouts:
    """The layouts central issues from (central/seed/layouts.json)."""
    return load_layouts(json.loads(LAYOUTS_FILE.read_text(encoding="utf-8")))


KINDS = tuple(standard_layouts().kinds)


# --- applying a layout to a citizen ---------------------------------------------------

def _follow(record: Any, path: str) -> Any:
    """What `path` leads to from `record` ("" is the record itself); None where a link is missing."""
    value = record
    for step in path.split(".") if path else ():
        if value is None:
            return None
        if isinstance(value, Citizen) and step in RELATIONS:
            value = RELATIONS[step](value)
            continue
        value = getattr(value, step)
        if isinstance(value, types.MethodType):
            value = value()
    return value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, tuple, str)) and len(value) == 0)


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _value(field: FieldLayout, record: Any, language: str, layouts: Layouts) -> str | None:
    if field.text is not None:
        return field.text[language]
    parts = [_plain(_follow(record, path)) for path in field.value]
    if any(part is None for part in parts):
        return None
    if field.closed is None:
        return JOINER.join(parts)   # type: ignore[arg-type]
    names = layouts.closed_values[field.closed].get(parts[0])   # type: ignore[arg-type]
    if names is None:
        raise LayoutError("%s: a value the table `%s` does not hold" % (field.where, field.closed))
    name = names[language]
    return name[record.sex] if isinstance(name, Mapping) else name


def _fields(field: FieldLayout, citizen: Citizen, language: str, layouts: Layouts) -> list[DocumentField]:
    if field.when_empty is not None and not _is_empty(_follow(citizen, field.when_empty)):
        return []
    records = list(_follow(citizen, field.each) or ()) if field.each is not None else [_follow(citizen, field.of)]
    found = []
    for record in records:
        value = None if record is None else _value(field, record, language, layouts)
        if value is None:
            if field.optional:
                continue
            raise LayoutError("%s: no value for a field that is not optional" % field.where)
        label_id = field.label if field.label_by_sex is None else field.label_by_sex[record.sex]
        found.append(DocumentField(label=dict(layouts.labels[label_id]), value=value))
    return found


def document_fields(service_code: str, citizen: Citizen, language: str, *,
                    layouts: Layouts | None = None) -> tuple[DocumentField, ...] | NotApplicable:
    """The fields of `service_code` for `citizen`; `language` ("ar" or "en") picks closed values.

    `layouts` defaults to central's own (:func:`standard_layouts`).
    """
    layouts = layouts or standard_layouts()
    layout = layouts.kinds.get(service_code)
    if layout is None:
        return NotApplicable("unknown_service")   # in the catalogue, but no certificate of that kind here
    for requirement in layout.requires:
        if _is_empty(_follow(citizen, requirement.path)):
            return NotApplicable(requirement.reason)
    return tuple(found for field in layout.fields for found in _fields(field, citizen, language, layouts))
