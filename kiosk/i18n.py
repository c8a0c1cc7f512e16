"""Every text a citizen sees, from the gettext catalogues in kiosk/locale.

Message ids are symbolic (``pin.title``), so no language is written in code:
both the Arabic and the English catalogue must hold every id. The catalogues
are read from their .po sources at first use, compiled in memory, and served
through the standard :mod:`gettext` machinery.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
from datetime import date
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from kiosk.money import Money

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "kiosk"
LANGUAGES = ("ar", "en")


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / (DOMAIN + ".po")


@functools.lru_cache(maxsize=None)
def translations(language: str) -> gettext.GNUTranslations:
    if language not in LANGUAGES:
        raise ValueError("no catalogue for language %r" % (language,))
    with po_path(language).open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def message_ids(language: str) -> frozenset[str]:
    with po_path(language).open("rb") as source:
        return frozenset(str(m.id) for m in read_po(source, locale=language) if m.id)


def text(msgid: str, language: str, **values: object) -> str:
    """The citizen-facing text for `msgid`, with ``{name}`` fields filled in.

    A missing id shows the id itself (a visible, harmless fault) and is
    logged once; the test suite keeps both catalogues complete.
    """
    found = translations(language).gettext(msgid)
    if found == msgid:
        _log_missing(msgid, language)
    return found.format(**values) if values else found


@functools.lru_cache(maxsize=None)
def _log_missing(msgid: str, language: str) -> None:
    log.warning("i18n.missing_message id=%s language=%s", msgid, language)


def format_money(money: Money, language: str) -> str:
    """A fee as a citizen reads it: '1,500 ل.س' or '1,500 SYP' (Western digits)."""
    return "%s %s" % (money.major_text(), text("currency." + money.currency, language))


def format_date(day: date, language: str) -> str:
    """Day/month/year, the order both Arabic and English readers here expect."""
    return day.strftime("%d/%m/%Y")
