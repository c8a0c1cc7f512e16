"""The one helper that turns logical text into what a simple renderer draws.

Kivy's SDL2 text and Pillow's basic layout draw glyphs left to right, one by
one. Arabic needs two steps before that: shaping (each letter takes its
initial, medial, final or isolated form, and lam-alef ligatures form) and
bidirectional reordering (Arabic runs right to left while digits and Latin
runs inside it stay left to right, so a fee of 1500 never reads 0051).

Wrapping happens on the logical text *before* reordering, one line at a time,
so that the first line of a paragraph stays on top.

Digits: Arabic text may show Arabic-Indic digits (٠١٢٣٤٥٦٧٨٩, with ٬ and ٫
for the thousands and decimal separators) instead of Western ones
(``[display] digits``); English always shows Western digits. The logical
text keeps Western digits everywhere (the session's values, the catalogues,
logs); they take their Arabic-Indic shapes here, where the line is laid
out. Arabic-Indic digits are "Arabic numbers" to the bidi algorithm, which
lays a hyphen or a space between two of them out right to left (2026-11
would read 11-2026), so a line is reordered as if its digits were Western:
a date, a serial, a fee or a time reads exactly as it would in Western
digits, only drawn with other shapes.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

import arabic_reshaper
from bidi import get_display
from bidi.mirror import MIRRORED

_LRI, _PDI = "\u2066", "\u2069"
# Invisible direction controls: added here for the algorithm, never drawn.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_WORD = re.compile(r"\S+")
_CORE = re.compile(r"[-+\w][\w\-+/.,:\u066b\u066c]*\w|\w")     # a word without its outer punctuation

WESTERN = "western"
ARABIC_INDIC = "arabic-indic"
DIGIT_STYLES = (WESTERN, ARABIC_INDIC)
_DIGITS = re.compile(r"\d")
_TO_ARABIC_INDIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_SEPARATOR = re.compile(r"(?<=[0-9\u0660-\u0669])([,.])(?=[0-9\u0660-\u0669])")
_ARABIC_SEPARATORS = {",": "\u066c", ".": "\u066b"}      # ARABIC THOUSANDS SEPARATOR, ARABIC DECIMAL SEPARATOR
# The same text with Western digits and separators, character for character: what the bidi levels are taken from.
_AS_WESTERN = str.maketrans("\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
                            "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9\u066c\u066b",
                            "0123456789" "0123456789" ",.")
_screen_digits = WESTERN

_RESHAPER = arabic_reshaper.ArabicReshaper(
    configuration={"delete_harakat": False, "support_ligatures": True}
)

RTL_LANGUAGES = frozenset({"ar"})


def is_rtl(language: str) -> bool:
    return language in RTL_LANGUAGES


def has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


def localise_digits(text: str, digits: str) -> str:
    """`text` with the digits of `digits`: arabic-indic turns 0-9 into ٠-٩, and a
    comma or point between two digits into ٬ or ٫ (1,500.25 -> ١٬٥٠٠٫٢٥);
    western leaves it as it is. Any other character is kept, so the length and
    the words do not change. A code that mixes Latin letters and digits (a
    serial such as 2026-BE9YMJA3, a payment id) keeps its Western digits, as it
    is typed into a verification page or read out to an official."""
    if digits not in DIGIT_STYLES:
        raise ValueError("digits must be one of %s, not %r" % (", ".join(DIGIT_STYLES), digits))
    if digits == WESTERN or not _DIGITS.search(text):
        return text
    return _WORD.sub(_localise_word, text)


def _localise_word(match: re.Match) -> str:
    word = match.group(0)
    if _LATIN_LETTER.search(word):
        return word
    return _SEPARATOR.sub(lambda m: _ARABIC_SEPARATORS[m.group(1)], word).translate(_TO_ARABIC_INDIC)


def use_screen_digits(digits: str) -> None:
    """The digits Arabic text shows on this kiosk's screen (``[display] digits``),
    set once at start by the app; printed documents name theirs on each call."""
    global _screen_digits
    if digits not in DIGIT_STYLES:
        raise ValueError("digits must be one of %s, not %r" % (", ".join(DIGIT_STYLES), digits))
    _screen_digits = digits


def screen_digits() -> str:
    return _screen_digits


def _digits_for(language: str, digits: str | None) -> str:
    """English keeps Western digits; Arabic shows `digits`, or the screen's when None."""
    if not is_rtl(language):
        return WESTERN
    return _screen_digits if digits is None else digits


def shape(text: str) -> str:
    """Arabic letters joined into their contextual forms; order unchanged."""
    return _RESHAPER.reshape(text) if has_rtl(text) else text


def display_line(text: str, language: str, *, digits: str | None = None) -> str:
    """One line, shaped and in visual order, for a left-to-right renderer.

    The paragraph direction follows the language of the screen, so that a
    Latin name inside an Arabic sentence sits where an Arabic reader expects.
    In Arabic, digits take the shapes of `digits` (None: the screen's, see
    :func:`use_screen_digits`); they are laid out as Western digits would be.
    """
    if not text:
        return text
    text = localise_digits(text, _digits_for(language, digits))
    if not has_rtl(text) and not is_rtl(language):
        return text
    shaped = shape(_isolate_numbers(text))
    base = 1 if is_rtl(language) else 0
    levels = _resolved_levels(shaped.translate(_AS_WESTERN), base)
    return _reorder(shaped, levels, base).translate(_BIDI_CONTROLS)


def _isolate_numbers(text: str) -> str:
    """Keep each word that carries digits (a date, a serial, a fee) whole and
    left to right: after an Arabic letter, the bidi rules would otherwise read
    2025-11-23 as three Arabic numbers and lay them out right to left."""
    if not has_rtl(text):
        return text

    def isolate(word: re.Match) -> str:
        token = word.group(0)
        if has_rtl(token) or not any(ch.isdigit() for ch in token):
            return token
        core = _CORE.search(token)
        if core is None:
            return token
        return token[:core.start()] + _LRI + core.group(0) + _PDI + token[core.end():]

    return _WORD.sub(isolate, text)


_LEVEL = re.compile(r"Level\(\s*(\d+),?\s*\)")


def _resolved_levels(text: str, base: int) -> list[int]:
    """Each character's embedding level (UAX #9 up to rule I2).

    python-bidi's Rust core resolves levels, bracket pairs included, but its
    get_display does not mirror brackets, so the levels are taken from its
    debug answer (one level per UTF-8 byte) and the line is reordered here.
    """
    info = get_display(text, base_dir="R" if base else "L", debug=True)
    byte_levels = [int(n) for n in _LEVEL.findall(info.split("levels:", 1)[1].split("paragraphs:", 1)[0])]
    levels, offset = [], 0
    for ch in text:
        levels.append(byte_levels[offset])
        offset += len(ch.encode("utf-8"))
    return levels


def _reorder(text: str, levels: list[int], base: int) -> str:
    """Rules L1 (trailing white space), L2 (reverse runs) and L4 (mirror)."""
    levels = list(levels)
    end = len(text)
    while end > 0 and unicodedata.bidirectional(text[end - 1]) in ("WS", "S", "B", "BN"):
        end -= 1
        levels[end] = base
    chars = [MIRRORED.get(ch, ch) if level % 2 else ch for ch, level in zip(text, levels)]
    order = list(range(len(chars)))
    top = max(levels, default=0)
    lowest_odd = min((lv for lv in levels if lv % 2), default=top + 1)
    for level in range(top, lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if levels[order[i]] >= level:
                j = i
                while j < len(order) and levels[order[j]] >= level:
                    j += 1
                order[i:j] = reversed(order[i:j])
                i = j
            else:
                i += 1
    return "".join(chars[k] for k in order)


def wrap_logical(text: str, max_width: float, measure: Callable[[str], float]) -> list[str]:
    """Greedy word wrap of logical text; `measure` gives a shaped line's width.

    Explicit newlines are kept. A single word wider than the line stays whole
    on its own line rather than being cut inside a letter group.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = word if not current else current + " " + word
            if current and measure(shape(candidate)) > max_width:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return lines


def display_lines(
    text: str, language: str, max_width: float, measure: Callable[[str], float], *, digits: str | None = None
) -> list[str]:
    """Wrapped lines, top to bottom, each shaped and in visual order (`digits` as for display_line)."""
    style = _digits_for(language, digits)
    return [display_line(line, language, digits=style)
            for line in wrap_logical(localise_digits(text, style), max_width, measure)]
