"""printable: the one helper every human-readable line goes through."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leadscore.text import printable


def test_control_characters_and_line_breaks_are_escaped():
    assert printable("L-1\x1b[2J\rscored 999\n") == "L-1\\x1b[2J\\rscored 999\\n"
    assert printable("a\tb\x00c\x7fd\x9be") == "a\\tb\\x00c\\x7fd\\x9be"
    assert printable("x\u2028y\u202ez") == "x\\u2028y\\u202ez"


def test_ordinary_text_is_unchanged():
    assert printable("Geschäftsführer, VP Sales — 東京 \\ backslash") == "Geschäftsführer, VP Sales — 東京 \\ backslash"


@given(st.text())
def test_the_result_is_one_line_without_control_characters_and_escaping_twice_changes_nothing(text):
    shown = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in shown)
    assert printable(shown) == shown
