"""Model output as stored and posted: any token a model emits, control characters included."""

from bot.llm import printable


def test_control_characters_are_dropped_but_tabs_newlines_and_text_kept():
    assert printable("a\x00b\tc\r\nd\x1b[0m\x07\x7f\x85 é € 日本") == "ab\tc\nd[0m é € 日本"
    assert printable("") == ""
