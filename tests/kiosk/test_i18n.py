"""Every text a citizen sees is in both catalogues."""

import re
from pathlib import Path

import pytest

from kiosk import i18n
from kiosk.money import Money
from kiosk.session import Reason, View
from screens import SCREENS

ROOT = Path(__file__).resolve().parents[2]
LITERAL_IDS = re.compile(r"""(?:i18n\.text|\btr|\bt)\(\s*['"]([a-z_]+(?:\.[a-z_]+)+)['"]""")


def ids_used_in_code():
    found = set()
    for path in list(ROOT.glob("kiosk/**/*.py")) + list(ROOT.glob("screens/*.py")) + list(ROOT.glob("screens/*.kv")):
        found |= set(LITERAL_IDS.findall(path.read_text(encoding="utf-8")))
    return found


def test_both_catalogues_hold_the_same_ids():
    assert i18n.message_ids("ar") == i18n.message_ids("en")


def test_every_id_in_the_code_is_in_the_catalogues():
    used = ids_used_in_code()
    assert len(used) > 30
    assert used - i18n.message_ids("ar") == set()


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_its_message(reason):
    assert "reason." + reason.value in i18n.message_ids("ar")


MESSAGE_SCREENS = sorted(set(SCREENS.values()) - {"attract", "pin_entry", "identity", "catalogue", "confirm"})


@pytest.mark.parametrize("screen", MESSAGE_SCREENS)
def test_every_message_screen_shows_translated_text(screen):
    from screens.message import message_for
    step = next(s for s, name in SCREENS.items() if name == screen)
    for language in ("ar", "en"):
        message = message_for(screen, View(step, language, reason=Reason.NO_READER))
        assert message.title and not re.fullmatch(r"[a-z_.]+", message.title)


def test_arabic_catalogue_is_in_arabic():
    for msgid in i18n.message_ids("ar"):
        text = i18n.text(msgid, "ar")
        if msgid.startswith("language.name.") or msgid in ("pin.ok",):
            continue
        assert re.search(r"[\u0600-\u06FF]", text), msgid


def test_money_is_shown_with_its_currency_in_each_language():
    fee = Money.of(150000, "SYP")
    assert i18n.format_money(fee, "en") == "1,500 SYP"
    assert i18n.format_money(fee, "ar") == "1,500 ل.س"


def test_missing_id_shows_the_id_rather_than_failing():
    assert i18n.text("no.such.message", "en") == "no.such.message"
