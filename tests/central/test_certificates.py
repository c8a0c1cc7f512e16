"""Certificate layouts are data: one function reads every kind, and a new kind needs no code."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from central.certificates import (
    KINDS, LAYOUTS_FILE, LayoutError, NotApplicable, document_fields, load_layouts, standard_layouts,
)
from central.db import Database
from central.models import Citizen
from central.seeding import SEED_DIR, prepare_database


@pytest.fixture(scope="module")
def registry(central_db_url: str) -> Iterator[dict[str, Citizen]]:
    """The seed citizens in a central database, by Latin given name (else Arabic)."""
    database = Database(central_db_url)
    prepare_database(database)
    with database.reading() as session:
        yield {c.given_name_latin or c.given_name_ar: c for c in session.scalars(select(Citizen))}
    database.dispose()


def layout_data() -> dict:
    return json.loads(LAYOUTS_FILE.read_text(encoding="utf-8"))


def labels_en(fields) -> list[str]:
    return [f.label["en"] for f in fields]


def test_every_service_of_the_seed_catalogue_has_a_layout_with_its_title() -> None:
    services = json.loads((SEED_DIR / "catalogue.json").read_text(encoding="utf-8"))["services"]
    assert KINDS == tuple(s["code"] for s in services)
    for service in services:
        assert dict(standard_layouts().kinds[service["code"]].title) == service["names"]


def test_a_kind_added_to_the_data_is_read_by_the_same_function(registry) -> None:
    data = copy.deepcopy(layout_data())
    data["labels"]["card_number"] = {"ar": "رقم البطاقة", "en": "Card number"}
    data["labels"]["parent"] = {"ar": "الوالد", "en": "Parent"}
    data["labels"]["mother_of"] = {"ar": "الوالدة", "en": "Mother"}
    data["closed_values"]["card_state"] = {"SY1000000003": {"ar": "بطاقة أولى", "en": "First card"}}
    data["kinds"]["parents-statement"] = {
        "title": {"ar": "بيان الوالدين", "en": "Parents statement"},
        "bilingual": True,
        "requires": [{"path": "parents", "reason": "no_parents"}],
        "fields": [
            {"label": "full_name", "value": "full_name_ar"},
            {"label": "card_number", "value": "card_number", "closed": "card_state"},
            {"label": "sex", "value": "sex", "closed": "sex"},
            {"label_by_sex": {"M": "parent", "F": "mother_of"}, "each": "parents",
             "value": ["full_name_ar", "date_of_birth"]},
            {"label": "marriage_date", "of": "family_head", "value": "marriage_date", "optional": True},
        ],
    }
    layouts = load_layouts(data)

    fields = document_fields("parents-statement", registry["Omar"], "en", layouts=layouts)

    assert [(f.label["en"], f.value) for f in fields] == [
        ("Full name", "عمر الحداد"),
        ("Card number", "First card"),
        ("Sex", "Male"),
        ("Parent", "خالد الحداد — 1975-03-14"),
        ("Mother", "رانيا الصالح — 1980-09-02"),
        ("Date of marriage", "2001-06-20"),
    ]
    assert fields[3].label == {"ar": "الوالد", "en": "Parent"}
    assert document_fields("parents-statement", registry["فادي"], "ar", layouts=layouts) == \
        NotApplicable("no_parents")
    assert layouts.kinds["parents-statement"].bilingual
    # The standard layouts are untouched by the copy.
    assert document_fields("parents-statement", registry["Omar"], "en") == NotApplicable("unknown_service")


def test_fields_come_in_the_layouts_order(registry) -> None:
    khaled = registry["Khaled"]
    assert labels_en(document_fields("civil-status-extract", khaled, "en")) == [
        "National number", "Given name", "Family name", "Father's name", "Mother's full name", "Place of birth",
        "Date of birth", "Sex", "Marital status", "Civil registry entry"]
    assert labels_en(document_fields("family-statement", khaled, "en")) == [
        "Head of family", "Marital status", "Civil registry entry", "Wife", "Son", "Daughter"]
    assert labels_en(document_fields("marriage-certificate", registry["Rania"], "en")) == [
        "Husband", "Wife", "Date of marriage", "Civil registry entry"]


def test_closed_values_are_translated_and_agree_with_the_persons_sex(registry) -> None:
    def value(kind: str, name: str, language: str, label: str) -> str:
        return next(f.value for f in document_fields(kind, registry[name], language) if f.label["en"] == label)

    assert value("civil-status-extract", "Rania", "ar", "Marital status") == "متزوجة"
    assert value("civil-status-extract", "Khaled", "ar", "Marital status") == "متزوج"
    assert value("civil-status-extract", "Rania", "en", "Marital status") == "Married"
    assert value("birth-certificate", "Lina", "ar", "Sex") == "أنثى"
    assert value("non-conviction", "Omar", "ar", "Judicial record") == "لا حكم عليه"
    # The family statement of a single daughter speaks of her father's marital status.
    assert value("family-statement", "Lina", "ar", "Marital status") == "متزوج"


def test_non_conviction_lists_each_conviction_and_no_clean_record_line(registry) -> None:
    fields = document_fields("non-conviction", registry["Tarek"], "en")
    assert "Judicial record" not in labels_en(fields)
    convictions = [f.value for f in fields if f.label["en"] == "Conviction"]
    assert len(convictions) == 1 and convictions[0].startswith("2019-11-04 — ")


@pytest.mark.parametrize("kind, name, reason", [
    ("marriage-certificate", "Omar", "not_married"),
    ("marriage-certificate", "Mariam", "not_married"),
    ("family-statement", "فادي", "no_family"),
    ("passport", "Omar", "unknown_service"),
])
def test_a_kind_that_does_not_apply_is_a_reason_not_an_exception(registry, kind, name, reason) -> None:
    assert document_fields(kind, registry[name], "ar") == NotApplicable(reason)


def broken(change) -> dict:
    data = copy.deepcopy(layout_data())
    change(data)
    return data


@pytest.mark.parametrize("change, message", [
    (lambda d: d["kinds"]["residence-certificate"]["fields"][5].update(value="adress_ar"),
     "kinds.residence-certificate.fields[5]: a Citizen record has no `adress_ar`"),
    (lambda d: d["kinds"]["birth-certificate"]["fields"][0].update(label="national_numbr"),
     "kinds.birth-certificate.fields[0]: no label `national_numbr`"),
    (lambda d: d["kinds"]["birth-certificate"]["fields"][0].update(value="spouse"),
     "kinds.birth-certificate.fields[0]: value `spouse` must lead to a plain value"),
    (lambda d: d["kinds"]["birth-certificate"]["fields"][0].update(each="spouse"),
     "kinds.birth-certificate.fields[0]: `each` must lead to a list of records"),
    (lambda d: d["kinds"]["birth-certificate"]["fields"][6].update(closed="gender"),
     "kinds.birth-certificate.fields[6]: `closed` names a table"),
    (lambda d: d["kinds"]["birth-certificate"]["fields"][0].update(colour="red"),
     "kinds.birth-certificate.fields[0]: unknown key `colour`"),
    (lambda d: d["kinds"]["birth-certificate"]["title"].pop("en"),
     "kinds.birth-certificate.title: expected a text for each of ar, en"),
    (lambda d: d["closed_values"]["marital_status"]["single"]["ar"].pop("F"),
     "closed_values.marital_status.single.ar: expected a text for each of M, F"),
    (lambda d: d["kinds"]["non-conviction"]["fields"][7].update(
        each="criminal_records", label_by_sex={"M": "son", "F": "daughter"}, label=None),
     "kinds.non-conviction.fields[7]: give either `label` or `label_by_sex`"),
])
def test_a_faulty_layout_is_refused_when_read_naming_where(change, message) -> None:
    with pytest.raises(LayoutError) as raised:
        load_layouts(broken(change))
    assert str(raised.value).startswith(message)


def test_a_missing_value_of_a_field_that_is_not_optional_fails_without_personal_data(registry) -> None:
    def drop_requirement(data: dict) -> None:
        del data["kinds"]["marriage-certificate"]["requires"]

    layouts = load_layouts(broken(drop_requirement))
    with pytest.raises(LayoutError) as raised:
        document_fields("marriage-certificate", registry["Omar"], "ar", layouts=layouts)
    assert str(raised.value) == "kinds.marriage-certificate.fields[0]: no value for a field that is not optional"


# --- the whole seed catalogue ---------------------------------------------------------

# A seed citizen who may ask for each kind (by Latin given name, else Arabic).
SUITABLE = {
    "civil-status-extract": "Khaled", "birth-certificate": "Lina", "single-status": "Omar",
    "nationality-certificate": "Huda", "name-change-statement": "فادي", "death-certificate": "Khaled",
    "id-card-statement": "Tarek", "passport-extract": "فادي", "civil-status-extract-abroad": "Yara",
    "birth-certificate-abroad": "Lina", "family-statement": "Khaled", "marriage-certificate": "Rania",
    "divorce-certificate": "Mariam", "widowhood-statement": "سلمى", "marital-status-statement": "Ahmad",
    "children-statement": "Samir", "family-book-replacement": "Huda", "family-statement-abroad": "Tarek",
    "marriage-certificate-abroad": "Ahmad", "non-conviction": "Tarek", "non-conviction-employment": "Omar",
    "non-conviction-abroad": "Mariam", "good-conduct": "Rania", "inheritance-statement": "Khaled",
    "residence-certificate": "Mariam", "family-residence-certificate": "Lina", "displaced-statement": "Youssef",
    "qualifications-statement": "Rania", "school-registration-extract": "Khaled",
    "university-registration-extract": "Lina", "exam-registration-extract": "Omar", "property-statement": "Samir",
    "non-ownership-certificate": "Omar", "driving-licence-statement": "Ahmad", "driving-licence-lost": "Tarek",
    "vehicle-ownership": "Samir", "vehicle-non-ownership": "Mariam", "life-certificate": "سلمى",
    "family-allowance-statement": "Khaled", "orphan-statement": "Khaled",
}


def seed_catalogue() -> dict:
    return json.loads((SEED_DIR / "catalogue.json").read_text(encoding="utf-8"))


def test_every_service_has_a_layout_and_a_category_and_every_category_a_service() -> None:
    catalogue = seed_catalogue()
    categories = [c["code"] for c in catalogue["categories"]]
    assert 6 <= len(categories) <= 8 and len(set(categories)) == len(categories)
    assert 35 <= len(catalogue["services"]) <= 45
    for service in catalogue["services"]:
        assert service["code"] in standard_layouts().kinds, service["code"]
        assert service["category"] in categories, service["code"]
    for code in categories:
        assert any(s["category"] == code for s in catalogue["services"]), code
    assert set(standard_layouts().kinds) == {s["code"] for s in catalogue["services"]}


def test_every_kind_has_a_suitable_seed_citizen() -> None:
    assert set(SUITABLE) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(SUITABLE))
def test_every_kind_gives_its_fields_to_a_citizen_who_may_ask(registry, kind) -> None:
    for language in ("ar", "en"):
        fields = document_fields(kind, registry[SUITABLE[kind]], language)
        assert isinstance(fields, tuple) and fields, (kind, language)
        for field in fields:
            assert set(field.label) == {"ar", "en"} and field.value.strip()


def test_every_kind_either_applies_or_names_one_of_its_requirements(registry) -> None:
    """No seed citizen makes any layout fail: each gets the fields or a reason the layout gives."""
    for kind, layout in standard_layouts().kinds.items():
        reasons = {requirement.reason for requirement in layout.requires}
        for citizen in registry.values():
            for language in ("ar", "en"):
                fields = document_fields(kind, citizen, language)
                assert isinstance(fields, tuple) or fields.reason in reasons, kind


@pytest.mark.parametrize("kind, name, reason", [
    ("single-status", "Khaled", "not_single"),
    ("divorce-certificate", "Omar", "not_divorced"),
    ("widowhood-statement", "Mariam", "not_widowed"),
    ("good-conduct", "Tarek", "has_convictions"),
    ("non-ownership-certificate", "Khaled", "owns_property"),
    ("vehicle-non-ownership", "Ahmad", "owns_vehicle"),
    ("property-statement", "Omar", "no_property"),
    ("driving-licence-statement", "Lina", "no_driving_licence"),
    ("death-certificate", "Omar", "no_deceased_parent"),
    ("name-change-statement", "Omar", "no_name_change"),
    ("displaced-statement", "Khaled", "not_displaced"),
    ("civil-status-extract-abroad", "فادي", "no_latin_name"),
    ("family-book-replacement", "Omar", "no_own_family"),
    ("children-statement", "Yara", "no_children"),
    ("qualifications-statement", "Samir", "no_qualification"),
    ("life-certificate", "محمود", "deceased"),
])
def test_a_citizen_who_may_not_ask_gets_the_reason(registry, kind, name, reason) -> None:
    assert document_fields(kind, registry[name], "en") == NotApplicable(reason)


def test_the_death_and_the_heirs_of_a_parent_are_read_from_the_registry(registry) -> None:
    def values(kind: str) -> list[tuple[str, str]]:
        return [(f.label["en"], f.value) for f in document_fields(kind, registry["Khaled"], "en")]

    death = dict(values("death-certificate"))
    assert death["Deceased"] == "محمود الحداد — 01020345626"
    assert (death["Date of death"], death["Place of death"]) == ("2015-12-03", "دمشق")
    assert death["Applicant"].startswith("خالد الحداد")
    heirs = values("inheritance-statement")[3:]
    assert heirs == [("Widow", "سلمى درويش — 01020345615 — 1948-08-16"),
                     ("Son", "خالد الحداد — 01020345671 — 1975-03-14")]
    assert ("Late father", "محمود الحداد — 2015-12-03") in values("orphan-statement")


def test_new_closed_values_are_translated_and_agree_with_the_persons_sex(registry) -> None:
    def value(kind: str, name: str, language: str, label: str) -> str:
        return next(f.value for f in document_fields(kind, registry[name], language) if f.label["en"] == label)

    assert value("nationality-certificate", "Khaled", "ar", "Nationality") == "عربي سوري"
    assert value("nationality-certificate", "Rania", "ar", "Nationality") == "عربية سورية"
    assert value("nationality-certificate", "Rania", "en", "Nationality") == "Syrian Arab"
    assert value("driving-licence-statement", "Samir", "en", "Driving licence class") == "Public transport"
    assert value("driving-licence-statement", "Ahmad", "ar", "Driving licence class") == "دراجة نارية"


def test_lists_give_one_field_per_entry(registry) -> None:
    def values(kind: str, name: str, label: str) -> list[str]:
        return [f.value for f in document_fields(kind, registry[name], "ar") if f.label["en"] == label]

    assert values("property-statement", "Samir", "Real estate") == [
        "حلب - الجميلية — 877 — محل تجاري — 1200/2400",
        "حلب - عندان — 2391 — أرض زراعية مشجرة زيتوناً — 2400/2400"]
    assert len(values("qualifications-statement", "Lina", "Qualification")) == 2
    assert values("vehicle-ownership", "Ahmad", "Vehicle") == ["حماة 118420 — دراجة نارية سوزوكي — 2015"]
    assert values("school-registration-extract", "Rania", "Daughter") == ["لينا الحداد — 01020345704 — 2005-12-23"]
