"""The one helper that turns logical text into what a simple renderer draws.

Kivy's SDL2 text and Pillow's basic layout draw glyphs left to right, one by
one. Arabic needs two steps before that: shaping (each letter takes its
initial, medial, final or isolated form, and lam-alef ligatures form) and
bidirectional reordering (Arabic runs right to left while digits and Latin
runs inside it stay left to right, so a fee of 1500 never reads 0051).

Wrapping happens on the logical text *before* reordering, one line at a time,
so that the first line of a paragraph stays on top.
"""

from __future__ import annotations

import unicodedata
from typing import Callable

import arabic_reshaper
from bidi import get_display

_RESHAPER = arabic_reshaper.ArabicReshaper(
    configuration={"delete_harakat": False, "support_ligatures": True}
)

RTL_LANGUAGES = frozenset({"ar"})


def is_rtl(language: str) -> bool:
    return language in RTL_LANGUAGES


def has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


def shape(text: str) -> str:
    """Arabic letters joined into their contextual forms; order unchanged."""
    return _RESHAPER.reshape(text) if has_rtl(text) else text


def display_line(text: str, language: str) -> str:
    """One line, shaped and in visual order, for a left-to-right renderer.

    The paragraph direction follows the language of the screen, so that a
    Latin name inside an Arabic sentence sits where an Arabic reader expects.
    """
    if not text:
        return text
    if not has_rtl(text) and not is_rtl(language):
        return text
    return get_display(shape(text), base_dir="R" if is_rtl(language) else "L")


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
    text: str, language: str, max_width: float, measure: Callable[[str], float]
) -> list[str]:
    """Wrapped lines, top to bottom, each shaped and in visual order."""
    return [display_line(line, language) for line in wrap_logical(text, max_width, measure)]
