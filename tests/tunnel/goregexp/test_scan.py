"""The scanner: what it hands google-re2, and the errors only Go sees."""

from __future__ import annotations

import pytest

from tunnel.goregexp.scan import scan


@pytest.mark.parametrize(
    ("pattern", "re2_pattern"),
    [
        ("^/api/(v[0-9]+)/.*$", "^/api/(v[0-9]+)/.*$"),  # the usual case: untouched
        ("\\pL\\p{Greek}\\P{^Lu}", "\\pL\\p{Greek}\\P{^Lu}"),  # RE2 spells these as Go
        ("\\p{Letter}+", "\\p{L}+"),
        ("[\\p{greek}0-9]", "[\\p{Greek}0-9]"),
        ("\\p{LC}", "[\\p{Lu}\\p{Ll}\\p{Lt}]"),
        ("\\Q\\p{Letter}\\E", "\\Q\\p{Letter}\\E"),  # quoted: literal text
    ],
)
def test_the_pattern_google_re2_sees(pattern: str, re2_pattern: str) -> None:
    assert scan(pattern).re2_pattern == re2_pattern


@pytest.mark.parametrize(
    ("pattern", "error", "re2_prefix"),
    [
        ("a+\\C", "invalid escape sequence: `\\C`", "a+"),
        ("\\p{Letter}(?P<\u00e9>x)", "invalid named capture: `(?P<\u00e9>`", "\\p{L}"),
        ("[a\\p{foo}]", "invalid character class range: `\\p{foo}`", "[a"),
        ("x\ud800y", "invalid UTF-8: `\ud800y`", ""),
    ],
)
def test_errors_only_go_sees_and_what_comes_before_them(
    pattern: str, error: str, re2_prefix: str
) -> None:
    finding = scan(pattern).finding
    assert finding is not None
    assert str(finding.error) == f"error parsing regexp: {error}"
    assert finding.re2_prefix == re2_prefix


@pytest.mark.parametrize(
    ("pattern", "too_deep"),
    [
        ("(" * 999 + ")" * 999, False),
        ("(" * 1000 + ")" * 1000, True),  # 1000 captures around an empty match: height 1001
        ("(?:" * 5000 + "a" + ")" * 5000, False),  # non-capturing groups add no node
        ("(a*" * 500 + ")" * 500, True),  # each level is a capture and a star
        ("(" + "|" * 12345 + ")", False),
    ],
)
def test_go_parse_tree_height(pattern: str, too_deep: bool) -> None:
    finding = scan(pattern).finding
    assert (finding is not None and finding.error.code == "expression nests too deeply") is too_deep


def test_a_class_left_open_is_located_for_go_message() -> None:
    assert scan("ab[^x").open_class == 2
