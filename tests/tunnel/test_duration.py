"""Go duration strings: parsed and printed as Go's time package does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunnel.duration import SECOND, Duration, DurationError


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("30s", 30 * SECOND),
        ("1m30s", 90 * SECOND),
        ("1h", 3600 * SECOND),
        ("1.5s", 1_500_000_000),
        (".5s", 500_000_000),
        ("500ms", 500_000_000),
        ("2us", 2000),
        ("2\u00b5s", 2000),
        ("-2s", -2 * SECOND),
        ("0", 0),
        ("+0", 0),
        ("1h2m3s4ms", 3_723_004_000_000),
    ],
)
def test_parses_go_durations(text: str, nanoseconds: int) -> None:
    assert Duration.parse(text).nanoseconds == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("30", 'time: missing unit in duration "30"'),
        ("30 s", 'time: unknown unit " s" in duration "30 s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        (".s", 'time: invalid duration ".s"'),
        ("s", 'time: invalid duration "s"'),
        ("99999999999999999999s", 'time: invalid duration "99999999999999999999s"'),
    ],
)
def test_rejects_what_go_rejects(text: str, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        Duration.parse(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (30 * SECOND, "30s"),
        (90 * SECOND, "1m30s"),
        (3600 * SECOND, "1h0m0s"),
        (1_500_000_000, "1.5s"),
        (500_000_000, "500ms"),
        (1500, "1.5\u00b5s"),
        (7, "7ns"),
        (-90 * SECOND, "-1m30s"),
    ],
)
def test_prints_like_go(nanoseconds: int, text: str) -> None:
    assert str(Duration(nanoseconds)) == text


def test_whole_seconds_for_the_api() -> None:
    assert Duration.parse("1m30s").whole_seconds == 90
    with pytest.raises(ValueError, match="not a whole number of seconds"):
        _ = Duration.parse("1.5s").whole_seconds


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_printing_then_parsing_gives_the_same_duration(nanoseconds: int) -> None:
    assert Duration.parse(str(Duration(nanoseconds))) == Duration(nanoseconds)
