"""Arabic reads right to left with letters joined; digits and Latin stay in order."""

import unicodedata

from kiosk.bidi_text import display_line, display_lines, shape


def names(text):
    return [unicodedata.name(ch) for ch in text]


def test_arabic_letters_take_their_joined_forms():
    shaped = shape("سلمى")
    assert names(shaped) == ["ARABIC LETTER SEEN INITIAL FORM", "ARABIC LETTER LAM MEDIAL FORM",
                             "ARABIC LETTER MEEM MEDIAL FORM", "ARABIC LETTER ALEF MAKSURA FINAL FORM"]


def test_arabic_line_is_drawn_right_to_left():
    # The first word read is the rightmost drawn: its letters come last, reversed.
    line = display_line("أهلاً بك", "ar")
    assert line.endswith(shape("أهلاً")[::-1])
    assert line.startswith(shape("بك")[::-1])


def test_fee_digits_are_never_reversed():
    line = display_line("الرسم: 1,500 ل.س", "ar")
    assert "1,500" in line and "005,1" not in line


def test_dates_and_latin_names_keep_their_order_inside_arabic():
    line = display_line("انتهت صلاحية البطاقة في 01/03/2024 — Salma Al-Halabi", "ar")
    assert "01/03/2024" in line and "Salma Al-Halabi" in line


def test_brackets_are_mirrored_in_right_to_left_runs():
    line = display_line("اكتب الرمز (من 4 إلى 8 أرقام) ثم", "ar")
    # Drawn left to right, the bracket that closes the phrase (now on the left) opens towards it.
    assert line.index("(") < line.index(")")
    assert "(" + shape("أرقام")[::-1] in line


def test_latin_text_in_an_english_screen_is_untouched():
    assert display_line("Fee: 1,500 SYP (cash)", "en") == "Fee: 1,500 SYP (cash)"


def test_arabic_inside_english_is_shaped_and_reversed_in_place():
    line = display_line("Fee: 1,500 ل.س", "en")
    assert line.startswith("Fee: 1,500 ") and line.endswith(shape("ل.س")[::-1])


def test_wrapped_lines_stay_in_reading_order():
    text = "واحد اثنان ثلاثة أربعة خمسة ستة"
    lines = display_lines(text, "ar", max_width=12, measure=len)
    # The first line holds the first words: read back from visual order, they come first.
    first_logical = lines[0][::-1]
    assert shape("واحد") in first_logical and shape("ستة") not in first_logical
    assert shape("ستة") in lines[-1][::-1]
    assert all(len(line) <= 12 or " " not in line for line in lines)


def test_explicit_newlines_are_kept():
    assert len(display_lines("سطر أول\nسطر ثان", "ar", max_width=1000, measure=len)) == 2


def test_hyphenated_date_after_arabic_keeps_its_order():
    line = display_line("انتهت صلاحية هذه البطاقة في 2025-11-23.", "ar")
    assert "2025-11-23" in line and "23-11-2025" not in line
    assert "\u2066" not in line and "\u2069" not in line     # the marks that keep it whole are not drawn
