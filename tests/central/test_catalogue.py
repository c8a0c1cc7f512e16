"""The seed catalogue: about forty services in categories, as data, stored and read back whole."""

from __future__ import annotations

import json

from central.catalogue_store import find_service, load_catalogue, save_catalogue
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


def test_the_catalogue_is_stored_and_read_back_whole() -> None:
    database = Database("sqlite://")
    try:
        prepare_database(database)
        with database.reading() as session:
            assert load_catalogue(session) == seed()
            assert find_service(session, "displaced-statement") == seed().get("displaced-statement")
            assert find_service(session, "passport") is None
    finally:
        database.dispose()


def test_saving_again_replaces_services_and_categories_of_the_same_code() -> None:
    database = Database("sqlite://")
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
        assert catalogue == Catalogue.from_json(data)
        assert catalogue.categories[0].name("en") == "Civil status records"
        assert catalogue.services[0].governorates == ("damascus",) and catalogue.services[0].rank is None
    finally:
        database.dispose()
