"""Arabic reads right to left with letters joined; digits and Latin stay in order."""

import unicodedata

import pytest

from kiosk import bidi_text
from kiosk.bidi_text import display_line, display_lines, localise_digits, shape


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


# --- digits: Western or Arabic-Indic, in the same order either way -------------------------

AI = "arabic-indic"
AS_WESTERN = str.maketrans("٠١٢٣٤٥٦٧٨٩٬٫", "0123456789,.")


@pytest.fixture
def screen_digits():
    """Restore the screen's digits after a test that changes them."""
    before = bidi_text.screen_digits()
    yield bidi_text.use_screen_digits
    bidi_text.use_screen_digits(before)


def test_arabic_indic_digits_replace_western_ones_and_their_separators():
    assert localise_digits("0123456789", AI) == "٠١٢٣٤٥٦٧٨٩"
    assert localise_digits("1,500.25 ل.س", AI) == "١٬٥٠٠٫٢٥ ل.س"
    assert localise_digits("29/11/2026 18:10", AI) == "٢٩/١١/٢٠٢٦ ١٨:١٠"
    # A comma or point that is not between two digits stays what it is.
    assert localise_digits("ل.س, 3.", AI) == "ل.س, ٣."


def test_western_digits_are_left_as_they_are():
    assert localise_digits("1,500 ل.س", "western") == "1,500 ل.س"


def test_an_unknown_digit_style_is_refused():
    with pytest.raises(ValueError):
        localise_digits("1", "roman")


@pytest.mark.parametrize("text, number", [
    ("الرقم التسلسلي: 2026-ABCD1234", "2026-ABCD1234"),      # a code keeps the digits it is typed with
    ("تاريخ الإصدار 29/11/2026 الساعة 18:10", "٢٩/١١/٢٠٢٦"),
    ("الرسم: 1,500 ل.س", "١٬٥٠٠"),
    ("انتهت صلاحية هذه البطاقة في 2025-11-23.", "٢٠٢٥-١١-٢٣"),
    ("الرقم الوطني 01020304050", "٠١٠٢٠٣٠٤٠٥٠"),
])
def test_arabic_indic_numbers_keep_their_order_inside_arabic(text, number):
    line = display_line(text, "ar", digits=AI)
    assert number in line and not any(ch in "0123456789" for ch in line.replace(number if "ABCD" in number else "", ""))
    # Laid out exactly as the same line with Western digits: only the shapes differ.
    assert line.translate(AS_WESTERN) == display_line(text, "ar", digits="western")


def test_a_time_after_a_date_reads_date_first_from_the_right():
    line = display_line("29/11/2026 18:10", "ar", digits=AI)
    assert line == "١٨:١٠ ٢٩/١١/٢٠٢٦"


def test_hyphen_between_arabic_indic_numbers_does_not_swap_them():
    # The bidi algorithm alone would draw ٢٠٢٦-١١ as ١١-٢٠٢٦ (a hyphen between Arabic numbers runs right to left).
    line = display_line("الشهر ٢٠٢٦-١١", "ar")
    assert "٢٠٢٦-١١" in line and "١١-٢٠٢٦" not in line


def test_english_keeps_western_digits_whatever_the_setting(screen_digits):
    screen_digits(AI)
    assert display_line("Fee: 1,500 SYP", "en") == "Fee: 1,500 SYP"
    assert display_line("Serial 2026-ABCD1234", "en", digits=AI) == "Serial 2026-ABCD1234"


def test_the_screen_setting_applies_to_arabic_lines(screen_digits):
    screen_digits(AI)
    assert "١٬٥٠٠" in display_line("الرسم: 1,500 ل.س", "ar")
    assert "1,500" in display_line("الرسم: 1,500 ل.س", "ar", digits="western")     # a document names its own
    lines = display_lines("الخطوة 3 من 5", "ar", max_width=1000, measure=len)
    assert lines == [display_line("الخطوة ٣ من ٥", "ar")]
    screen_digits("western")
    assert "1,500" in display_line("الرسم: 1,500 ل.س", "ar")
