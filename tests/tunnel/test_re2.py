"""Go's regexp syntax: the same verdicts and messages as Go, the same matches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunnel import re2
from tunnel.errors import RegexError, RegexUnsupported

# Each verdict below is what Go's regexp.Compile returned for the pattern (cross-checked
# against a Go toolchain while writing this module; no test needs Go).
GO_VERDICTS = [
    ("^/api/.*", ""),
    ("\\.(jpg|png)$", ""),
    ("(?=x)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
    ("(?!x)", "error parsing regexp: invalid or unsupported Perl syntax: `(?!`"),
    ("(?<=a)b", "error parsing regexp: invalid named capture: `(?<=a)b`"),
    ("(?<!a)b", "error parsing regexp: invalid named capture: `(?<!a)b`"),
    ("a\\1", "error parsing regexp: invalid escape sequence: `\\1`"),
    ("(a)\\1", "error parsing regexp: invalid escape sequence: `\\1`"),
    ("(?P=n)", "error parsing regexp: invalid or unsupported Perl syntax: `(?P`"),
    ("\\Z", "error parsing regexp: invalid escape sequence: `\\Z`"),
    ("\\z", ""),
    ("a**", "error parsing regexp: invalid nested repetition operator: `**`"),
    ("a*+", "error parsing regexp: invalid nested repetition operator: `*+`"),
    ("a++", "error parsing regexp: invalid nested repetition operator: `++`"),
    ("a?+", "error parsing regexp: invalid nested repetition operator: `?+`"),
    ("(?>a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?>`"),
    ("(?(1)a|b)", "error parsing regexp: invalid or unsupported Perl syntax: `(?(`"),
    ("(?#c)", "error parsing regexp: invalid or unsupported Perl syntax: `(?#`"),
    ("(?x)a", "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"),
    ("(?P<n>a)", ""),
    ("(?<n>a)", ""),
    ("(?'n'a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?'`"),
    ("(?P<n>a)(?P<n>b)", ""),
    ("\\pL+", ""),
    ("\\p{Greek}", ""),
    ("\\p{Letter}", ""),
    ("\\p{foo}", "error parsing regexp: invalid character class range: `\\p{foo}`"),
    ("[[:alpha:]]", ""),
    ("[[:foo:]]", "error parsing regexp: invalid character class range: `[:foo:]`"),
    ("\\Qa.b\\E", ""),
    ("(?U)a+", ""),
    ("x{1000}", ""),
    ("x{1001}", "error parsing regexp: invalid repeat count: `{1001}`"),
    ("(a{10}){100}", ""),
    ("(a{10}){101}", "error parsing regexp: invalid repeat count: `{101}`"),
    ("[z-a]", "error parsing regexp: invalid character class range: `z-a`"),
    ("\\8", "error parsing regexp: invalid escape sequence: `\\8`"),
    ("\\12", ""),
    ("[\\d-z]", ""),
    ("[a-\\d]", "error parsing regexp: invalid escape sequence: `\\d`"),
    ("a{,3}", ""),
    ("{2}", "error parsing regexp: missing argument to repetition operator: `{2}`"),
    ("^*", ""),
    ("(?i)*", "error parsing regexp: missing argument to repetition operator: `*`"),
    ("a(?i)*", ""),
    ("\\", "error parsing regexp: trailing backslash at end of expression: ``"),
    ("(", "error parsing regexp: missing closing ): `(`"),
    (")", "error parsing regexp: unexpected ): `)`"),
    ("[a", "error parsing regexp: missing closing ]: `[a`"),
    ("[]a]", ""),
    ("\\C", "error parsing regexp: invalid escape sequence: `\\C`"),
    ("\\x{}", "error parsing regexp: invalid escape sequence: `\\x{}`"),
    ("\\x{10FFFF}", ""),
    ("\\x{110000}", "error parsing regexp: invalid escape sequence: `\\x{110000`"),
    ("(?i-)", "error parsing regexp: invalid or unsupported Perl syntax: `(?i-)`"),
    ("(?)", ""),
    ("\\b\\B\\A", ""),
    ("[\\b]", "error parsing regexp: invalid escape sequence: `\\b`"),
    ("(?s).", ""),
    ("(?m)^a$", ""),
    ("x{2}{3}", "error parsing regexp: invalid nested repetition operator: `{2}{3}`"),
    ("a{01}", ""),
]


@pytest.mark.parametrize(("pattern", "go_error"), GO_VERDICTS)
def test_accepts_and_rejects_what_go_does(pattern: str, go_error: str) -> None:
    if go_error:
        with pytest.raises(RegexError) as caught:
            re2.check(pattern)
        assert str(caught.value) == go_error
    else:
        re2.check(pattern)


@pytest.mark.parametrize(
    "pattern",
    ["(?=x)", "(?!x)", "(?<=a)b", "(?<!a)b", "(a)\\1", "(?P<n>a)(?P=n)", "a*+", "(?>a)", "\\Z"],
)
def test_rejects_python_only_syntax(pattern: str) -> None:
    import re

    re.compile(pattern)  # Python accepts it ...
    with pytest.raises(RegexError):
        re2.check(pattern)  # ... Go does not


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^/api/", "/api/v1", True),
        ("/api/", "/v1/api/x", True),  # unanchored search
        ("^/api$", "/api\n", False),  # $ is the end of text, not before a final newline
        ("(?m)^/api$", "/x\n/api\n", True),
        ("\\d", "\u0663", False),  # \d is ASCII in Go
        ("\\w+", "\u00e9", False),
        ("\\s", "\v", False),  # Go's \s has no vertical tab
        ("[[:space:]]", "\v", True),
        ("\\bx", "\u00e9x", True),  # word boundary is ASCII-only
        ("\\B", "", True),
        ("\\pL", "\u00e9", True),
        ("\\PL", "\u00e9", False),
        ("\\Qa.b\\E", "axb", False),
        ("\\Qa.b\\E", "a.b", True),
        ("a{,3}", "a{,3}", True),  # not a repeat in Go: literal text
        ("a{,3}", "aa", False),
        ("(?i)k", "\u212a", True),  # Kelvin sign folds to k
        ("(?i)[^k]", "K", False),
        ("x*", "", True),
        ("(?s).", "\n", True),
        (".", "\n", False),
        ("\\z", "", True),
        ("[^a]", "\n", True),
        ("(?U)a+", "aaa", True),
        ("\\x{1F600}", "\U0001f600", True),
    ],
)
def test_matches_like_go(pattern: str, text: str, matches: bool) -> None:
    assert re2.compile_go(pattern).search(text) is matches


def test_unicode_scripts_are_valid_but_cannot_be_matched_here() -> None:
    re2.check("\\p{Greek}")
    with pytest.raises(RegexUnsupported, match="Greek"):
        re2.compile_go("\\p{Greek}")


def test_nesting_deeper_than_go_allows_is_rejected() -> None:
    with pytest.raises(RegexError, match="expression nests too deeply"):
        re2.check("(" * 1001 + ")" * 1001)


def test_too_large_expression_is_rejected() -> None:
    with pytest.raises(RegexError, match="expression too large"):
        re2.check("(" + "a" * 4000 + "){1000}")


@given(st.text(alphabet="ab()[]{}*+?|\\^$.-:0123456789PpQEdwsbBz<>=!?i", max_size=12))
def test_validator_and_matcher_agree(pattern: str) -> None:
    verdict = _verdict(re2.check, pattern)
    assert _verdict(re2.compile_go, pattern) == verdict


def _verdict(fn: Callable[[str], object], pattern: str) -> str:
    """Go's error message for ``pattern``, or "" when it compiles."""
    try:
        fn(pattern)
    except RegexError as exc:
        return str(exc)
    except RegexUnsupported:
        return ""
    return ""
