"""Go's \\p names, and how each is spelled for google-re2."""

from __future__ import annotations

import pytest

from tunnel.goregexp.names import lookup


@pytest.mark.parametrize(
    ("name", "table", "negated"),
    [
        ("L", "L", False),
        ("Letter", "L", False),
        ("upper case-let ter", "Lu", False),  # TR18: case, spaces, "-" and "_" ignored
        ("greek", "Greek", False),
        ("^Greek", "Greek", True),
        ("old_italic", "Old_Italic", False),
        ("Assigned", "Cn", True),
        ("ascii", "ASCII", False),
        ("lc", "LC", False),
        ("Any", "Any", False),
    ],
)
def test_names_resolve_as_go_resolves_them(name: str, table: str, negated: bool) -> None:
    found = lookup(name, negated=False)
    assert found is not None
    assert (found.table, found.negated) == (table, negated)


@pytest.mark.parametrize("name", ["", "foo", "L&", "IsGreek", "Script=Greek"])
def test_names_go_does_not_know_are_refused(name: str) -> None:
    assert lookup(name, negated=False) is None


@pytest.mark.parametrize(
    ("name", "negated", "in_class", "spelling"),
    [
        ("Greek", False, False, "\\p{Greek}"),
        ("Letter", True, False, "\\P{L}"),
        ("ASCII", False, False, "[\\x00-\\x7F]"),
        ("ASCII", True, True, "\\x{80}-\\x{10FFFF}"),
        ("LC", True, False, "[^\\p{Lu}\\p{Ll}\\p{Lt}]"),
        ("LC", True, True, None),  # a negated union cannot sit inside [...]
        ("Cn", False, False, None),  # RE2 has no table of unassigned code points
        ("Sidetic", False, False, None),  # Unicode 17; google-re2 1.1.20251105 has 15.1
    ],
)
def test_spelling_for_google_re2(
    name: str, negated: bool, in_class: bool, spelling: str | None
) -> None:
    found = lookup(name, negated=negated)
    assert found is not None
    assert found.re2_item(in_class=in_class) == spelling
