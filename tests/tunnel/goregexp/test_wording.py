"""google-re2's rejections told in Go's words."""

from __future__ import annotations

import pytest

from tunnel.goregexp.wording import is_cut_short, is_too_large, to_go


@pytest.mark.parametrize(
    ("pattern", "re2_message", "go_message"),
    [
        ("a**", "bad repetition operator: **", "invalid nested repetition operator: `**`"),
        (
            "{2}",
            "no argument for repetition operator: {2}",
            "missing argument to repetition operator: `{2}`",
        ),
        ("(?x)", "invalid perl operator: (?x", "invalid or unsupported Perl syntax: `(?x`"),
        ("a\\", "trailing \\", "trailing backslash at end of expression: ``"),
        ("x{1001}", "invalid repetition size: {1001}", "invalid repeat count: `{1001}`"),
        # Go quotes the pattern as the user wrote it, not RE2's respelling of it.
        ("(\\p{Letter}", "missing ): (\\p{L}", "missing closing ): `(\\p{Letter}`"),
        ("a)", "unexpected ): a)", "unexpected ): `a)`"),
    ],
)
def test_re2_messages_in_go_words(pattern: str, re2_message: str, go_message: str) -> None:
    error = to_go(re2_message, pattern, open_class=None)
    assert str(error) == f"error parsing regexp: {go_message}"


def test_missing_bracket_quotes_the_class_as_written() -> None:
    error = to_go("missing ]: [\\p{L}", "ab[\\p{Letter}", open_class=2)
    assert str(error) == "error parsing regexp: missing closing ]: `[\\p{Letter}`"


def test_a_message_the_table_does_not_know_keeps_re2_words() -> None:
    error = to_go("some new error: (?~", "(?~", open_class=None)
    assert str(error) == "error parsing regexp: some new error: `(?~`"


def test_what_is_not_a_syntax_error() -> None:
    assert is_too_large("pattern too large - compile failed")
    assert is_cut_short("missing ): (a")
    assert not is_cut_short("unexpected ): a)")
