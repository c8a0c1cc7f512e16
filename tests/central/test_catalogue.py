"""The seed catalogue: about forty services in categories, as data, stored and read back whole;
its version, and central's staff changing a fee."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import text

from central import cli, migrate
from central.catalogue_store import catalogue_version, find_service, load_catalogue, save_catalogue, set_fee
from central.db import Database
from central.seeding import SEED_DIR, prepare_database
from kiosk.catalogue import Catalogue
from kiosk.money import Money

GOVERNORATES = {"damascus", "rif-dimashq", "latakia", "tartus", "hama", "aleppo", "homs", "quneitra"}

# The services the journeys and the tests were written against, with their fees: never changed.
FIRST_SIX = {"civil-status-extract": 150000, "family-statement": 200000, "non-conviction": 250000,
             "residence-certificate": 100000, "birth-certificate": 150000, "marriage-certificate": 200000}


def seed_data() -> dict:
    return json.loads((SEED_DIR / "catalogue.json").read_text(encoding="utf-8"))


def seed() -> Catalogue:
    return Catalogue.from_json(seed_data())


def test_the_seed_catalogue_json_round_trips() -> None:
    data = seed_data()
    assert Catalogue.from_json(data).to_json() == data
    assert Catalogue.from_json(json.loads(json.dumps(seed().to_json()))) == seed()


def test_the_first_six_services_keep_their_codes_and_fees() -> None:
    catalogue = seed()
    for code, fee in FIRST_SIX.items():
        assert catalogue.get(code).fee == Money.of(fee, "SYP"), code


def test_the_journeys_services_are_among_the_most_asked() -> None:
    most_asked = seed().most_asked()
    assert [s.rank for s in most_asked] == list(range(1, len(most_asked) + 1)) and len(most_asked) <= 6
    assert {"civil-status-extract", "family-statement", "non-conviction", "birth-certificate"} <= \
        {s.code for s in most_asked}


def test_every_service_has_names_a_fee_and_known_governorates() -> None:
    catalogue = seed()
    assert len({s.code for s in catalogue.services}) == len(catalogue.services)
    for service in catalogue.services:
        assert service.names["ar"] and service.names["en"], service.code
        assert service.fee.currency == "SYP" and 50000 <= service.fee.amount_minor <= 1000000, service.code
        assert set(service.governorates) <= GOVERNORATES, service.code
    for category in catalogue.categories:
        assert category.names["ar"] and category.names["en"], category.code
    offered_everywhere = [s for s in catalogue.services if not s.governorates]
    assert len(offered_everywhere) > len(catalogue.services) * 3 // 4   # most services are offered everywhere


def test_a_service_offered_only_in_some_governorates_is_filtered_out_elsewhere() -> None:
    catalogue = seed()
    displaced = catalogue.get("displaced-statement")
    assert set(displaced.governorates) == {"quneitra", "damascus", "rif-dimashq"}
    assert catalogue.offered_in("quneitra").get("displaced-statement") is not None
    assert catalogue.offered_in("latakia").get("displaced-statement") is None
    # Quneitra's real-estate register is not connected: no property service, so no property category.
    quneitra = catalogue.offered_in("quneitra")
    assert quneitra.in_category("property") == () and quneitra.category("property") is None
    assert catalogue.offered_in("tartus").category("property") is not None
    # Documents for use abroad only where a foreign ministry office can certify them.
    assert catalogue.offered_in("hama").get("civil-status-extract-abroad") is None
    assert catalogue.offered_in("aleppo").get("civil-status-extract-abroad") is not None
    # Everywhere: every category, and the most asked services.
    for governorate in GOVERNORATES:
        offered = catalogue.offered_in(governorate)
        assert {s.code for s in offered.most_asked()} == {s.code for s in catalogue.most_asked()}
        assert all(offered.in_category(c.code) for c in offered.categories)
    assert catalogue.offered_in("") == catalogue


def test_the_catalogue_is_stored_and_read_back_whole(fresh_db_url: str) -> None:
    database = Database(fresh_db_url)
    try:
        prepare_database(database)
        with database.reading() as session:
            assert load_catalogue(session) == dataclasses.replace(seed(), version=catalogue_version(seed()))
            assert find_service(session, "displaced-statement") == seed().get("displaced-statement")
            assert find_service(session, "passport") is None
    finally:
        database.dispose()


def test_saving_again_replaces_services_and_categories_of_the_same_code(fresh_db_url: str) -> None:
    database = Database(fresh_db_url)
    try:
        prepare_database(database)
        data = seed_data()
        data["categories"][0]["names"]["en"] = "Civil status records"
        data["services"][0]["governorates"] = ["damascus"]
        data["services"][0]["rank"] = None
        with database.writing() as session:
            save_catalogue(session, Catalogue.from_json(data))
        with database.reading() as session:
            catalogue = load_catalogue(session)
        assert catalogue.to_json() == data
        assert catalogue.categories[0].name("en") == "Civil status records"
        assert catalogue.services[0].governorates == ("damascus",) and catalogue.services[0].rank is None
    finally:
        database.dispose()


# --- the version, and a fee changed by central's staff ----------------------------------

def stored_catalogue(db_url: str) -> Catalogue:
    database = Database(db_url)
    try:
        prepare_database(database)
        with database.reading() as session:
            return load_catalogue(session)
    finally:
        database.dispose()


@pytest.mark.parametrize("change", [
    lambda d: d["services"][3]["fee"].update(amount_minor=d["services"][3]["fee"]["amount_minor"] + 1),
    lambda d: d["services"][3]["fee"].update(currency="USD"),
    lambda d: d["services"][3]["names"].update(en="Another name"),
    lambda d: d["services"][3].update(governorates=["damascus"]),
    lambda d: d["services"][3].update(rank=7),
    lambda d: d["services"][3].update(category=d["categories"][-1]["code"]),
    lambda d: d["services"].pop(),
    lambda d: d["categories"][0]["names"].update(ar="فئة"),
    lambda d: d["categories"].reverse(),
], ids=["fee", "currency", "name", "availability", "rank", "category of a service", "a service less",
        "a category's name", "the categories' order"])
def test_any_change_of_the_catalogue_changes_its_version(change) -> None:
    data = seed_data()
    change(data)
    version = catalogue_version(Catalogue.from_json(data))
    assert version != catalogue_version(seed())
    assert len(version) == 16 and int(version, 16) >= 0


def test_the_same_catalogue_has_the_same_version_whatever_it_was_before() -> None:
    assert catalogue_version(seed()) == catalogue_version(Catalogue.from_json(seed_data()))
    assert catalogue_version(dataclasses.replace(seed(), version="old")) == catalogue_version(seed())


def test_set_fee_changes_the_fee_and_the_version(fresh_db_url: str, capsys: pytest.CaptureFixture) -> None:
    db_url = fresh_db_url
    before = stored_catalogue(db_url)
    assert cli.main(["catalogue", "set-fee", "non-conviction", "275050", "--db", db_url]) == 0
    after = stored_catalogue(db_url)
    assert after.get("non-conviction").fee == Money.of(275050, "SYP")
    assert after.version != before.version
    assert capsys.readouterr().out == ("non-conviction: fee 2,500 SYP -> 2,750.50 SYP; catalogue version %s\n"
                                       % after.version)
    # Every other service is as it was.
    assert [s for s in after.services if s.code != "non-conviction"] == [
        s for s in before.services if s.code != "non-conviction"]
    # Back to the old fee: back to the old version.
    assert cli.main(["catalogue", "set-fee", "non-conviction", "250000", "--db", db_url]) == 0
    assert stored_catalogue(db_url).version == before.version


@pytest.mark.parametrize("args, problem", [
    (["passport", "150000"], "no service passport"),
    (["non-conviction", "0"], "positive whole number"),
    (["non-conviction", "-5"], "positive whole number"),
])
def test_set_fee_refuses_an_unknown_service_or_a_fee_that_is_not_one(fresh_db_url: str, capsys, args,
                                                                     problem) -> None:
    db_url = fresh_db_url
    before = stored_catalogue(db_url)
    assert cli.main(["catalogue", "set-fee", *args, "--db", db_url]) == 2
    assert problem in capsys.readouterr().err
    assert stored_catalogue(db_url) == before


def test_set_fee_in_the_store_names_the_fee_before_and_after(fresh_db_url: str) -> None:
    database = Database(fresh_db_url)
    try:
        prepare_database(database)
        with database.writing() as session:
            assert set_fee(session, "birth-certificate", 160000) == (Money.of(150000, "SYP"),
                                                                      Money.of(160000, "SYP"))
            assert set_fee(session, "passport", 160000) is None
        with database.reading() as session:
            assert find_service(session, "birth-certificate").fee == Money.of(160000, "SYP")
    finally:
        database.dispose()


# --- offline policies ----------------------------------------------------------------------

def test_the_common_extracts_may_be_claimed_offline_and_non_conviction_needs_central() -> None:
    from kiosk.catalogue import OfflineMode
    catalogue = seed()
    extract = catalogue.get("civil-status-extract")
    assert extract.offline.mode is OfflineMode.CLAIM and extract.offline.allows_claim(extract.fee)
    assert extract.offline.daily_cap_minor >= extract.offline.max_fee_minor
    for code in ("non-conviction", "non-conviction-employment", "good-conduct", "property-statement"):
        service = catalogue.get(code)
        assert service.offline.mode is OfflineMode.ONLINE_ONLY and not service.offline.allows_claim(service.fee)
    claimable = {s.code for s in catalogue.services if s.offline.allows_claim(s.fee)}
    assert {"civil-status-extract", "birth-certificate", "family-statement", "residence-certificate"} <= claimable
    assert len(claimable) < len(catalogue.services) // 2


def test_a_database_from_before_offline_policies_gets_the_seeds(fresh_db_url: str) -> None:
    db_url = fresh_db_url
    # As central made it then, before migrations too: the baseline's tables and the catalogue, no policies.
    migrate.upgrade(db_url, migrate.BASELINE)
    database = Database(db_url)
    try:
        with database.writing() as session:
            save_catalogue(session, seed())
            session.execute(text("DROP TABLE catalogue_offline_policies"))
            session.execute(text("DROP TABLE alembic_version"))
    finally:
        database.dispose()
    assert stored_catalogue(db_url).get("family-statement").offline == seed().get("family-statement").offline
    assert stored_catalogue(db_url) == dataclasses.replace(seed(), version=catalogue_version(seed()))


def test_an_offline_policy_change_changes_the_version() -> None:
    data = seed_data()
    data["services"][0]["offline"]["daily_cap_minor"] += 100
    assert catalogue_version(Catalogue.from_json(data)) != catalogue_version(seed())


def test_central_staff_set_a_services_offline_policy(fresh_db_url: str, capsys: pytest.CaptureFixture) -> None:
    from kiosk.catalogue import OfflineMode, OfflinePolicy
    db_url = fresh_db_url
    before = stored_catalogue(db_url)
    assert cli.main(["catalogue", "set-offline", "non-conviction", "claim", "--max-fee", "300000",
                     "--daily-cap", "900000", "--db", db_url]) == 0
    after = stored_catalogue(db_url)
    assert after.get("non-conviction").offline == OfflinePolicy(OfflineMode.CLAIM, 300000, 900000)
    assert after.version != before.version and "non-conviction: offline" in capsys.readouterr().out
    assert cli.main(["catalogue", "set-offline", "civil-status-extract", "online_only", "--db", db_url]) == 0
    assert stored_catalogue(db_url).get("civil-status-extract").offline == OfflinePolicy()
    assert cli.main(["catalogue", "set-offline", "non-conviction", "claim", "--max-fee", "300000",
                     "--daily-cap", "100", "--db", db_url]) == 2
    assert cli.main(["catalogue", "set-offline", "passport", "online_only", "--db", db_url]) == 2
