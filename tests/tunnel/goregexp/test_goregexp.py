"""Go's regexp syntax: the same verdicts and messages as Go, the same matches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunnel import goregexp
from tunnel.errors import RegexError, RegexUnsupported

# Each verdict below is what Go's regexp.Compile returns for the pattern (cross-checked
# against a Go toolchain; no test needs Go).
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

# Where google-re2 alone would not give Go's verdict or words (ADR 0017): each row is one
# difference tunnel/goregexp/scan.py or wording.py makes up for.
GO_ONLY_VERDICTS = [
    # RE2 takes \C for "any byte"; Go refuses it, before any later error.
    ("a\\C", "error parsing regexp: invalid escape sequence: `\\C`"),
    ("\\C)", "error parsing regexp: invalid escape sequence: `\\C`"),
    (")\\C", "error parsing regexp: unexpected ): `)\\C`"),
    ("\\Q\\C\\E", ""),
    # RE2 allows non-ASCII capture names; RE2 calls a look-behind a bad Perl operator.
    ("(?P<\u00e9>a)", "error parsing regexp: invalid named capture: `(?P<\u00e9>`"),
    ("(?<=a)>", "error parsing regexp: invalid named capture: `(?<=a)>`"),
    ("(?<a", "error parsing regexp: invalid named capture: `(?<a`"),
    # Go checks a count before a stacked operator, and quotes it without a lazy "?".
    ("x*{1001}", "error parsing regexp: invalid repeat count: `{1001}`"),
    ("a{1001}?", "error parsing regexp: invalid repeat count: `{1001}`"),
    ("(a{10}){101}?", "error parsing regexp: invalid repeat count: `{101}?`"),
    # RE2 reads a count of ten digits as literal text.
    ("x{9876543210}", "error parsing regexp: invalid repeat count: `{9876543210}`"),
    ("x{9876543210", ""),
    # RE2 calls an unfinished \x{ at the end invalid UTF-8.
    ("\\x{41", "error parsing regexp: invalid escape sequence: `\\x{41`"),
    ("[\\x{", "error parsing regexp: invalid escape sequence: `\\x{`"),
    # Go 1.25's \p names (TR18 lookups, long names, Any/ASCII/Assigned/LC/Cn), Unicode 17.
    ("\\p{greek}", ""),
    ("\\pl", ""),
    ("\\p{upper case-let ter}", ""),
    ("[\\p{ASCII}\\p{LC}\\P{Assigned}\\p{Cn}]", ""),
    ("\\p{Sidetic}", ""),
    ("\\p{Zzzz}", "error parsing regexp: invalid character class range: `\\p{Zzzz}`"),
    ("[\\p{foo}]", "error parsing regexp: invalid character class range: `\\p{foo}`"),
    ("\\p{Letter", "error parsing regexp: invalid character class range: `\\p{Letter`"),
    # Errors quoting the pattern quote it as written, not as respelled for RE2.
    ("[\\p{Letter}", "error parsing regexp: missing closing ]: `[\\p{Letter}`"),
    ("(\\p{Letter}", "error parsing regexp: missing closing ): `(\\p{Letter}`"),
    # Go's limits: RE2 has no depth limit, and a smaller memory budget than Go's size limit.
    ("(?:" * 999 + ")*" * 999, ""),
    (
        "(?:" * 1000 + ")*" * 1000,
        "error parsing regexp: expression nests too deeply: `" + "(?:" * 1000 + ")*" * 1000 + "`",
    ),
    (
        "(" * 1001 + ")" * 1001 + "\\",
        "error parsing regexp: expression nests too deeply: `" + "(" * 1001 + ")" * 1001 + "\\`",
    ),
    ("\\pL{1000}", ""),
    (
        "(" + "(xx?)" * 1000 + "){1000}",
        "error parsing regexp: expression too large: `(" + "(xx?)" * 1000 + "){1000}`",
    ),
]


@pytest.mark.parametrize(("pattern", "go_error"), GO_VERDICTS + GO_ONLY_VERDICTS)
def test_accepts_and_rejects_what_go_does(pattern: str, go_error: str) -> None:
    assert _verdict(goregexp.check, pattern) == go_error


@pytest.mark.parametrize(
    "pattern",
    ["(?=x)", "(?!x)", "(?<=a)b", "(?<!a)b", "(a)\\1", "(?P<n>a)(?P=n)", "a*+", "(?>a)", "\\Z"],
)
def test_rejects_python_only_syntax(pattern: str) -> None:
    import re

    re.compile(pattern)  # Python accepts it ...
    with pytest.raises(RegexError):
        goregexp.check(pattern)  # ... Go does not


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
        ("\\p{Greek}", "\u03b1", True),  # scripts, from RE2's Unicode tables
        ("\\p{Greek}", "a", False),
        ("\\p{greek}+", "\u03b1\u03b2", True),  # Go's spelling, respelled for RE2
        ("\\p{Letter}", "\u00e9", True),
        ("\\p{LC}", "\u01c5", True),  # titlecase is a cased letter
        ("\\P{LC}", "a", False),
        ("[\\p{ASCII}]", "\u00e9", False),
        ("[\\P{ASCII}]", "\u00e9", True),
        ("(?i)\\p{ascii}", "\u017f", True),  # long s folds to s, as in Go
        ("(x+x+)+y", "x" * 64, False),  # linear time, as Go: no backtracking blow-up
    ],
)
def test_matches_like_go(pattern: str, text: str, matches: bool) -> None:
    assert goregexp.compile_go(pattern).search(text) is matches


@pytest.mark.parametrize(
    ("pattern", "table"),
    [("\\p{Sidetic}", "Sidetic"), ("\\p{Assigned}", "Cn"), ("[\\P{LC}]", "LC")],
)
def test_classes_google_re2_has_no_table_for_are_valid_but_cannot_be_matched_here(
    pattern: str, table: str
) -> None:
    goregexp.check(pattern)
    with pytest.raises(RegexUnsupported, match=f"no Unicode table for .*{table}"):
        goregexp.compile_go(pattern)


def test_a_pattern_too_large_for_google_re2_is_valid_but_cannot_be_matched_here() -> None:
    pattern = "(" + "a" * 3000 + "){1000}"  # under Go's size limit, over RE2's 64 MiB
    goregexp.check(pattern)
    with pytest.raises(RegexUnsupported, match="64 MiB"):
        goregexp.compile_go(pattern)


def test_nesting_deeper_than_go_allows_is_rejected() -> None:
    with pytest.raises(RegexError, match="expression nests too deeply"):
        goregexp.check("(" * 1001 + ")" * 1001)


def test_too_large_expression_is_rejected() -> None:
    with pytest.raises(RegexError, match="expression too large"):
        goregexp.check("(" + "a" * 4000 + "){1000}")


@given(st.text(alphabet="ab()[]{}*+?|\\^$.-:0123456789PpQEdwsbBzCx<>=!?i", max_size=12))
def test_validator_and_matcher_agree(pattern: str) -> None:
    verdict = _verdict(goregexp.check, pattern)
    assert _verdict(goregexp.compile_go, pattern) == verdict


def _verdict(fn: Callable[[str], object], pattern: str) -> str:
    """Go's error message for ``pattern``, or "" when it compiles."""
    try:
        fn(pattern)
    except RegexError as exc:
        return str(exc)
    except RegexUnsupported:
        return ""
    return ""
