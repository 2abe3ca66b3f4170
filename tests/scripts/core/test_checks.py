"""The report's unit: a check, and evidence that lists without flooding."""

from __future__ import annotations

from scripts.core.checks import Check, failed, listing


def test_a_check_round_trips_through_json() -> None:
    check = Check(id="IMG-USER", title="non-root", ok=False, evidence="USER root")
    assert Check.from_json(check.to_json()) == check
    assert failed([check, Check(id="x", title="x", ok=True, evidence="")]) == [check]


def test_listing_names_what_was_found_and_counts_the_rest() -> None:
    assert listing([]) == "none"
    assert listing(["a", "b"]) == "a, b"
    assert listing([str(i) for i in range(10)], limit=3) == "0, 1, 2 (+7 more)"
