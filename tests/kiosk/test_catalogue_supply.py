"""The catalogue the kiosk shows: central's, checked against its signature, and the signed copy kept
on the disk for when central cannot be reached: a good copy is used, an altered, foreign or too old
one never is."""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.catalogue_store import served_catalogue
from central.signing import public_key_pem, sign_catalogue
from kiosk.catalogue import Catalogue, Service
from kiosk.catalogue_supply import CatalogueSupply, Refusal, load_public_key, verify, CatalogueRefused
from kiosk.central_client import CentralUnreachable
from kiosk.errors import ConfigError
from kiosk.money import Money
from kiosk.ports.central import Central, EligibilityAnswer
from offline.catalogue_cache import FileCatalogueCache

HOUR = 3600.0
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc).timestamp()
KEY = Ed25519PrivateKey.generate()


def catalogue(fee_minor: int = 150000) -> Catalogue:
    return Catalogue(services=(Service("civil-status-extract", {"ar": "إخراج قيد فردي", "en": "Civil status extract"},
                                       Money.of(fee_minor, "SYP")),), version="v%d" % fee_minor)


def signed(fee_minor: int = 150000, *, at: float = NOW, key: Ed25519PrivateKey = KEY) -> dict:
    """The document as central serves it, signed at `at`."""
    issued = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return sign_catalogue(key, served_catalogue(catalogue(fee_minor), issued_at=issued))


class SigningCentral(Central):
    """Central serving `document` (signed), or unreachable."""

    def __init__(self, document: dict | None) -> None:
        self.document = document

    def fetch_catalogue(self) -> Catalogue:
        raise AssertionError("a kiosk with central's key asks for the signed document")

    def fetch_signed_catalogue(self) -> dict:
        if self.document is None:
            raise CentralUnreachable("link down")
        return self.document

    def challenge(self) -> None:
        raise NotImplementedError

    def check_eligibility(self, **_kwargs) -> EligibilityAnswer:
        raise NotImplementedError

    def deliver(self, kind, payload):
        raise NotImplementedError


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    central = SigningCentral(signed())
    cache = FileCatalogueCache(tmp_path / "state" / "catalogue.json")

    def supply() -> CatalogueSupply:
        """A kiosk's supply: a new one is a restarted kiosk on the same disk."""
        return CatalogueSupply(central, keys=[KEY.public_key()], cache=cache, max_age_s=72 * HOUR, clock=clock)
    return clock, central, cache, supply


def test_central_catalogue_is_used_and_kept_on_the_disk_private(world):
    clock, central, cache, supply = world
    got = supply().load()
    assert got.catalogue == catalogue() and not got.cached
    kept = json.loads(cache.path.read_text(encoding="utf-8"))
    assert kept["document"] == central.document and kept["fetched_at"] == NOW
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert "national_number" not in cache.path.read_text(encoding="utf-8")


def test_a_kiosk_started_while_central_is_unreachable_uses_the_good_copy(world):
    clock, central, _cache, supply = world
    supply().load()
    central.document = None
    clock.now += 71 * HOUR
    got = supply().load()                                  # restarted, central silent
    assert got.catalogue == catalogue() and got.cached and not got.expired


def test_a_copy_altered_on_the_disk_is_refused(world, caplog):
    _clock, central, cache, supply = world
    supply().load()
    central.document = None
    kept = json.loads(cache.path.read_text(encoding="utf-8"))
    kept["document"]["services"][0]["fee"]["amount_minor"] = 100     # cheaper, says the disk
    cache.path.write_text(json.dumps(kept), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="kiosk.catalogue_supply"):
        got = supply().load()
    assert got.catalogue is None and got.expired
    assert "catalogue.copy_refused reason=bad_signature" in caplog.text


def test_a_copy_older_than_the_limit_is_refused(world, caplog):
    clock, central, _cache, supply = world
    running = supply()
    running.load()
    central.document = None
    clock.now += 72 * HOUR + 1
    with caplog.at_level(logging.ERROR, logger="kiosk.catalogue_supply"):
        assert running.load().expired                        # neither the one in memory...
        got = supply().load()                                # ... nor the one on the disk
    assert got.catalogue is None and got.expired
    assert "reason=too_old" in caplog.text


def test_a_copy_signed_by_another_key_is_refused(world, caplog):
    _clock, central, cache, supply = world
    central.document = signed(key=Ed25519PrivateKey.generate())
    with caplog.at_level(logging.ERROR, logger="kiosk.catalogue_supply"):
        got = supply().load()                                # central's answer itself is not used
    assert got.catalogue is None and "reason=unknown_key" in caplog.text
    assert not cache.path.exists()


def test_a_fresh_fetch_replaces_the_copy_and_the_same_one_is_not_written_again_within_the_hour(world):
    clock, central, cache, supply = world
    running = supply()
    running.load()
    clock.now += 60
    central.document = signed(at=clock.now)                 # the same catalogue, signed again
    running.load()
    assert json.loads(cache.path.read_text(encoding="utf-8"))["fetched_at"] == NOW
    central.document = signed(200000, at=clock.now)          # a fee changed at central
    assert running.load().catalogue == catalogue(200000)
    assert json.loads(cache.path.read_text(encoding="utf-8"))["document"]["version"] == "v200000"
    central.document = None
    assert supply().load().catalogue == catalogue(200000)


def test_the_signature_covers_the_issue_time(world):
    document = signed()
    older = dict(document, issued_at="2026-11-01T09:00:00Z")        # made to look younger... or older
    with pytest.raises(CatalogueRefused) as refused:
        verify(older, [KEY.public_key()])
    assert refused.value.reason is Refusal.BAD_SIGNATURE
    with pytest.raises(CatalogueRefused) as unsigned:
        verify({k: v for k, v in document.items() if k != "signature"}, [KEY.public_key()])
    assert unsigned.value.reason is Refusal.MALFORMED


def test_a_kiosk_without_central_key_keeps_nothing(tmp_path):
    class PlainCentral(SigningCentral):
        def fetch_catalogue(self) -> Catalogue:
            return catalogue()
    cache = FileCatalogueCache(tmp_path / "catalogue.json")
    got = CatalogueSupply(PlainCentral(None), cache=cache).load()
    assert got.catalogue == catalogue() and not cache.path.exists()


def test_the_catalogue_key_must_be_an_ed25519_public_key(tmp_path):
    good = tmp_path / "central.pem"
    good.write_text(public_key_pem(KEY.public_key()))
    assert verify(signed(), [load_public_key(good)]).catalogue == catalogue()
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="central.catalogue_key"):
        load_public_key(bad)


@pytest.mark.parametrize("policy", [
    {"mode": "sometimes"}, {"mode": "claim"}, {"mode": "claim", "max_fee_minor": 300000, "daily_cap_minor": 100},
    {"mode": "claim", "max_fee_minor": 1.5, "daily_cap_minor": 3000000}, "claim",
], ids=["unknown mode", "claim without limits", "cap below a payment", "a float", "not an object"])
def test_an_offline_policy_the_kiosk_does_not_know_makes_the_catalogue_unreadable(policy):
    from kiosk.central_client import catalogue_from_json
    document = catalogue().to_json()
    document["services"][0]["offline"] = policy
    with pytest.raises(ValueError):
        catalogue_from_json(document)


def test_offline_policies_come_through_and_a_missing_one_is_online_only():
    from kiosk.catalogue import OfflineMode, OfflinePolicy
    from kiosk.central_client import catalogue_from_json
    document = catalogue().to_json()
    assert catalogue_from_json(document).services[0].offline == OfflinePolicy()
    document["services"][0]["offline"] = {"mode": "claim", "max_fee_minor": 150000, "daily_cap_minor": 600000}
    service = catalogue_from_json(document).services[0]
    assert service.offline == OfflinePolicy(OfflineMode.CLAIM, 150000, 600000)
    assert service.offline.allows_claim(Money.of(150000, "SYP"))
    assert not service.offline.allows_claim(Money.of(150001, "SYP"))
