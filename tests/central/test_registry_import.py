"""`kiosk-central registry import`: upsert by national number; bad files name the record and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central import migrate, signing
from central.cli import main
from central.db import Database
from central.models import Citizen

NEW_CITIZEN = {
    "national_number": "09010000017", "card_number": "SY2000000017",
    "given_name_ar": "نور", "family_name_ar": "الأحمد", "given_name_latin": "Nour", "family_name_latin": "Al-Ahmad",
    "father_name_ar": "علي", "mother_name_ar": "هالة السيد", "date_of_birth": "1999-02-14",
    "place_of_birth_ar": "طرطوس", "sex": "F", "civil_registry_ar": "طرطوس - المدينة - 211",
    "card_issued": "2023-03-01", "card_expires": "2033-02-28", "marital_status": "married",
    "spouse": "09010000028", "marriage_date": "2022-05-01", "children": [],
    "address_ar": "طرطوس، شارع الثورة، بناء 5", "criminal_records": [],
}
NEW_SPOUSE = {
    **NEW_CITIZEN, "national_number": "09010000028", "card_number": "SY2000000028", "given_name_ar": "سامر",
    "given_name_latin": "Samer", "sex": "M", "date_of_birth": "1996-07-30", "spouse": "09010000017",
    "criminal_records": [{"date": "2018-03-04", "court_ar": "محكمة صلح الجزاء في طرطوس", "offence_ar": "مخالفة بناء"}],
}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """For a file refused before central opens its database; a test that stores takes `fresh_db_url`."""
    return "sqlite:///%s" % (tmp_path / "central.sqlite3")


def write(tmp_path: Path, citizens: list[dict], name: str = "people.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"citizens": citizens}, ensure_ascii=False), encoding="utf-8")
    return path


def test_import_adds_citizens_with_their_links(tmp_path, fresh_db_url, capsys) -> None:
    assert main(["registry", "import", str(write(tmp_path, [NEW_CITIZEN, NEW_SPOUSE])), "--db", fresh_db_url]) == 0
    assert "2 citizens imported (2 new, 0 updated)" in capsys.readouterr().out
    database = Database(fresh_db_url)
    try:
        with database.reading() as session:
            nour = session.get(Citizen, "09010000017")
            assert nour.spouse.given_name_ar == "سامر" and nour.spouse.spouse is nour
            assert [r.court_ar for r in nour.spouse.criminal_records] == ["محكمة صلح الجزاء في طرطوس"]
            assert session.get(Citizen, "01020345671") is not None   # the seed is there too
    finally:
        database.dispose()


def test_import_again_updates_in_place(tmp_path, fresh_db_url, capsys) -> None:
    main(["registry", "import", str(write(tmp_path, [NEW_CITIZEN, NEW_SPOUSE])), "--db", fresh_db_url])
    moved = {**NEW_CITIZEN, "address_ar": "اللاذقية، شارع بغداد، بناء 1"}
    assert main(["registry", "import", str(write(tmp_path, [moved], "moved.json")), "--db", fresh_db_url]) == 0
    assert "(0 new, 1 updated)" in capsys.readouterr().out
    database = Database(fresh_db_url)
    try:
        with database.reading() as session:
            assert session.get(Citizen, "09010000017").address_ar == "اللاذقية، شارع بغداد، بناء 1"
    finally:
        database.dispose()


FACTS = {
    "driving_licence_number": "3301442", "driving_licence_grade": "private", "driving_licence_expires": "2031-01-31",
    "former_name_ar": "نورا", "name_changed_on": "2015-02-01", "displaced_from_ar": "الجولان - مسعدة",
    "qualifications": [{"year": 2017, "certificate_ar": "الشهادة الثانوية العامة", "institution_ar": "ثانوية طرطوس"}],
    "properties": [{"area_ar": "طرطوس - المدينة", "parcel": "45/2", "description_ar": "شقة سكنية",
                    "shares": "1200/2400"}],
    "vehicles": [{"plate_ar": "طرطوس 220145", "make_ar": "سيارة سياحية", "year": 2019}],
}


def test_import_stores_the_optional_facts_and_replaces_them_on_update(tmp_path, fresh_db_url) -> None:
    assert main(["registry", "import", str(write(tmp_path, [{**NEW_CITIZEN, **FACTS}, NEW_SPOUSE])),
                 "--db", fresh_db_url]) == 0
    database = Database(fresh_db_url)
    try:
        with database.reading() as session:
            nour = session.get(Citizen, "09010000017")
            assert (nour.driving_licence_grade, nour.former_name_ar) == ("private", "نورا")
            assert [q.year for q in nour.qualifications] == [2017]
            assert [(p.parcel, p.shares) for p in nour.properties] == [("45/2", "1200/2400")]
            assert [v.plate_ar for v in nour.vehicles] == ["طرطوس 220145"]
            assert nour.owns_no_property() is None and nour.clean_record() == "clean"
        assert main(["registry", "import", str(write(tmp_path, [NEW_CITIZEN], "bare.json")), "--db", fresh_db_url]) == 0
        with database.reading() as session:
            nour = session.get(Citizen, "09010000017")
            assert nour.properties == [] and nour.vehicles == [] and nour.driving_licence_number is None
            assert nour.owns_no_property() == "none" and nour.owns_no_vehicle() == "none"
    finally:
        database.dispose()


@pytest.mark.parametrize("change, where, problem", [
    ({"driving_licence_grade": None}, "citizens[0].driving_licence_grade", "together"),
    ({"driving_licence_grade": "tank"}, "citizens[0].driving_licence_grade", '"private"'),
    ({"driving_licence_number": "12-34"}, "citizens[0].driving_licence_number", "digits"),
    ({"name_changed_on": None}, "citizens[0].name_changed_on", "together"),
    ({"name_changed_on": "1990-01-01"}, "citizens[0].name_changed_on", "before the date of birth"),
    ({"divorce_date": "2020-01-01"}, "citizens[0].divorce_date", 'not "divorced"'),
    ({"date_of_death": "2020-01-01"}, "citizens[0].place_of_death_ar", "together"),
    ({"date_of_death": "1990-01-01", "place_of_death_ar": "طرطوس"}, "citizens[0].date_of_death",
     "between the date of birth and today"),
    ({"properties": [{"area_ar": "طرطوس", "parcel": "45", "description_ar": "شقة", "shares": "3000/2400"}]},
     "citizens[0].properties[0].shares", "between 1 and all"),
    ({"properties": [{"area_ar": "طرطوس", "parcel": "45", "description_ar": "شقة"}]},
     "citizens[0].properties[0].shares", "missing"),
    ({"vehicles": [{"plate_ar": "طرطوس 1", "make_ar": "سيارة", "year": 2999}]},
     "citizens[0].vehicles[0].year", "not in the future"),
    ({"qualifications": {"year": 2017}}, "citizens[0].qualifications", "must be a list"),
    ({"qualification": []}, "citizens[0]", "did you mean `qualifications`?"),
])
def test_bad_optional_fact_is_named_by_index_and_key(tmp_path, db_url, capsys, change, where, problem) -> None:
    path = write(tmp_path, [{**NEW_CITIZEN, **FACTS, **change}, NEW_SPOUSE])
    assert main(["registry", "import", str(path), "--db", db_url]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("%s: %s: " % (path, where)) and problem in error, error


@pytest.mark.parametrize("index, change, where, problem", [
    (1, {"card_number": "SY12"}, "citizens[1].card_number", '"SY" followed by 10 digits'),
    (0, {"national_number": "0901000001X"}, "citizens[0].national_number", "11 digits"),
    (0, {"date_of_birth": "1999-02-30"}, "citizens[0].date_of_birth", "not a real date"),
    (0, {"card_expires": "2020-01-01"}, "citizens[0].card_expires", "after card_issued"),
    (1, {"sex": "X"}, "citizens[1].sex", '"M", "F"'),
    (0, {"given_name_ar": "Nour"}, "citizens[0].given_name_ar", "Arabic"),
    (0, {"spouse": "09999999999"}, "citizens[0].spouse", "no citizen with that national number"),
    (1, {"spouse": "01020345671"}, "citizens[0].spouse", "names another spouse"),
    (0, {"marital_status": "single"}, "citizens[0].spouse", "not \"married\""),
    (0, {"children": ["09010000017"]}, "citizens[0].children", "the citizen themself"),
    (1, {"card_number": "SY2000000017"}, "citizens[1].card_number", "repeats citizens[0]"),
    (1, {"childern": []}, "citizens[1]", "did you mean `children`?"),
    (0, {"criminal_records": [{"date": "2018-03-04", "court_ar": "محكمة"}]},
     "citizens[0].criminal_records[0].offence_ar", "missing"),
])
def test_bad_record_is_named_by_index_and_key(tmp_path, db_url, capsys, index, change, where, problem) -> None:
    citizens = [dict(NEW_CITIZEN), dict(NEW_SPOUSE)]
    citizens[index].update(change)
    path = write(tmp_path, citizens)
    assert main(["registry", "import", str(path), "--db", db_url]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("%s: %s: " % (path, where)) and problem in error
    for value in change.values():   # the message names the key, never the value
        if isinstance(value, str) and len(value) > 2:
            assert value not in error


def test_missing_key_is_named(tmp_path, db_url, capsys) -> None:
    citizen = {k: v for k, v in NEW_CITIZEN.items() if k != "mother_name_ar"}
    assert main(["registry", "import", str(write(tmp_path, [citizen, NEW_SPOUSE])), "--db", db_url]) == 2
    assert "citizens[0].mother_name_ar: missing" in capsys.readouterr().err


def test_file_that_is_not_json_names_the_line(tmp_path, db_url, capsys) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"citizens": [\n  {"national_number": }\n]}', encoding="utf-8")
    assert main(["registry", "import", str(path), "--db", db_url]) == 2
    assert "not JSON (line 2" in capsys.readouterr().err


def test_refused_file_stores_nothing(tmp_path, fresh_db_url) -> None:
    bad = {**NEW_SPOUSE, "spouse": "09999999999", "marital_status": "married"}
    assert main(["registry", "import", str(write(tmp_path, [NEW_CITIZEN, bad])), "--db", fresh_db_url]) == 2
    database = Database(fresh_db_url)
    try:
        migrate.upgrade_engine(database.engine)
        with database.reading() as session:
            assert session.get(Citizen, "09010000017") is None
    finally:
        database.dispose()


@pytest.mark.sqlite_only(reason="the signing key is kept beside the SQLite file")
def test_keys_prints_the_public_key_of_the_database(tmp_path, fresh_db_url, capsys) -> None:
    assert main(["keys", "--db", fresh_db_url]) == 0
    first = capsys.readouterr().out
    assert first.startswith("-----BEGIN PUBLIC KEY-----")
    assert (tmp_path / "central.signing-key.pem").exists()
    main(["keys", "--db", fresh_db_url])
    assert capsys.readouterr().out == first


def test_keys_of_a_postgresql_database_is_the_signing_key_given(tmp_path, postgres_server, capsys) -> None:
    with postgres_server.database() as db_url:
        assert main(["keys", "--db", db_url]) == 2
        assert "--signing-key" in capsys.readouterr().err
        key = signing.create_key(tmp_path / "document-key.pem")
        assert main(["keys", "--db", db_url, "--signing-key", str(tmp_path / "document-key.pem")]) == 0
    assert capsys.readouterr().out == signing.public_key_pem(key.public_key())


# --- text that would reach printed documents, and files that are not registry files -----------------------------

HIDDEN = {"NUL": "\x00", "BEL": "\x07", "ESC": "\x1b", "newline": "\n", "DEL": "\x7f",
          "C1 NEL": "\x85", "C1 CSI": "\x9b",
          "LRE": "\u202a", "RLE": "\u202b", "PDF": "\u202c", "LRO": "\u202d", "RLO": "\u202e",
          "LRI": "\u2066", "RLI": "\u2067", "FSI": "\u2068", "PDI": "\u2069"}
TEXT_FIELDS = ("given_name_ar", "family_name_ar", "father_name_ar", "mother_name_ar", "place_of_birth_ar",
               "civil_registry_ar", "address_ar", "given_name_latin", "family_name_latin")
NOT_PLAIN = "must not contain control characters or direction overrides (U+202A..U+202E, U+2066..U+2069)"


def refused_line(tmp_path: Path, db_url: str, capsys, path: Path) -> str:
    assert main(["registry", "import", str(path), "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err.rstrip("\n")


@pytest.mark.parametrize("name", list(HIDDEN))
def test_a_name_with_a_control_or_direction_character_is_refused(tmp_path, db_url, capsys, name) -> None:
    for at in ("start", "middle", "end"):
        value = {"start": HIDDEN[name] + "نور", "middle": "نو" + HIDDEN[name] + "ر",
                 "end": "نور" + HIDDEN[name]}[at]
        path = write(tmp_path, [{**NEW_CITIZEN, "given_name_ar": value}, NEW_SPOUSE])
        error = refused_line(tmp_path, db_url, capsys, path)
        assert error == "%s: citizens[0].given_name_ar: %s" % (path, NOT_PLAIN)
        assert "نور" not in error and "نو" not in error           # the name itself is personal data


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_every_text_field_refuses_a_direction_override(tmp_path, db_url, capsys, field) -> None:
    spouse = {**NEW_SPOUSE, field: NEW_SPOUSE[field] + "\u202e"}
    path = write(tmp_path, [NEW_CITIZEN, spouse])
    assert refused_line(tmp_path, db_url, capsys, path) == "%s: citizens[1].%s: %s" % (path, field, NOT_PLAIN)


@pytest.mark.parametrize("change, where", [
    ({"former_name_ar": "نورا\u2066", "name_changed_on": "2015-02-01"}, "citizens[0].former_name_ar"),
    ({"displaced_from_ar": "الجولان\x1b[2J"}, "citizens[0].displaced_from_ar"),
    ({"date_of_death": "2024-01-01", "place_of_death_ar": "طرطوس\x00"}, "citizens[0].place_of_death_ar"),
    ({"criminal_records": [{"date": "2018-03-04", "court_ar": "محكمة\u202b", "offence_ar": "مخالفة"}]},
     "citizens[0].criminal_records[0].court_ar"),
    ({"qualifications": [{"year": 2017, "certificate_ar": "الشهادة", "institution_ar": "ثانوية\x85"}]},
     "citizens[0].qualifications[0].institution_ar"),
    ({"properties": [{"area_ar": "طرطوس", "parcel": "45", "description_ar": "شقة\u2067", "shares": "1/2"}]},
     "citizens[0].properties[0].description_ar"),
    ({"vehicles": [{"plate_ar": "طرطوس\u202d 1", "make_ar": "سيارة", "year": 2019}]},
     "citizens[0].vehicles[0].plate_ar"),
])
def test_the_optional_texts_refuse_them_too(tmp_path, db_url, capsys, change, where) -> None:
    path = write(tmp_path, [{**NEW_CITIZEN, **change}, NEW_SPOUSE])
    assert refused_line(tmp_path, db_url, capsys, path) == "%s: %s: %s" % (path, where, NOT_PLAIN)


def test_an_unknown_key_that_is_not_a_key_name_is_not_shown(tmp_path, db_url, capsys) -> None:
    for key in ("09010000099", "\x1b[2J", "نور", "x" * 500):
        path = write(tmp_path, [{**NEW_CITIZEN, key: 1}, NEW_SPOUSE])
        error = refused_line(tmp_path, db_url, capsys, path)
        assert error == "%s: citizens[0]: an unknown key, not shown (it is not a key's name)" % path


def test_a_file_nested_100000_deep(tmp_path, db_url, capsys) -> None:
    for text in ("[" * 100_000 + "]" * 100_000, '{"citizens": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001):
        path = tmp_path / "deep.json"
        path.write_text(text, encoding="utf-8")
        assert refused_line(tmp_path, db_url, capsys, path) \
            == "%s: not a registry file (arrays or objects nested too deeply)" % path


def test_a_file_too_large_to_be_read_whole(tmp_path, db_url, capsys, monkeypatch) -> None:
    from central import registry
    monkeypatch.setattr(registry, "MAX_FILE_BYTES", 1024 * 1024)
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"citizens": []}) + " " * (1024 * 1024), encoding="utf-8")
    assert refused_line(tmp_path, db_url, capsys, path) \
        == "%s: too large (over 1 MB): import the registry in several files, each family in one file" % path


def test_the_size_limit_holds_a_large_town(tmp_path) -> None:
    from central import registry
    per_citizen = len(json.dumps({**NEW_CITIZEN, **FACTS}, ensure_ascii=False).encode("utf-8"))
    assert registry.MAX_FILE_BYTES // per_citizen > 20_000


@pytest.mark.parametrize("content, problem", [
    (b'{"citizens": [\xff]}', "not UTF-8 text (byte 14)"),
    (b'{"citizens": NaN}', "not JSON (NaN and Infinity are not JSON numbers)"),
    (b'{"citizens": [{"year": -Infinity}]}', "not JSON (NaN and Infinity are not JSON numbers)"),
    (b'{"citizens": ' + b"1" * 5000 + b"}", "not a registry file (a number with too many digits)"),
])
def test_a_file_that_is_not_strict_json(tmp_path, db_url, capsys, content, problem) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert refused_line(tmp_path, db_url, capsys, path) == "%s: %s" % (path, problem)


def test_a_directory_or_a_device_given_as_the_file(tmp_path, db_url, capsys) -> None:
    assert refused_line(tmp_path, db_url, capsys, tmp_path) == "%s: is a directory, not a registry file" % tmp_path
    assert refused_line(tmp_path, db_url, capsys, Path("/dev/null")) == "/dev/null: is not a regular file"
