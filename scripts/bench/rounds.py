"""Rounds: every target measured once, one after the other, in an order that rotates.

Two servers measured minutes apart meet different machines (neighbours come and go); measured
seconds apart, within one round, they meet the same one. So every comparison pairs targets
by round and takes the median over rounds of the per-round ratio (:meth:`BenchResult.ratio`);
rotating the order keeps any one server from always running first (or last, when the machine
is warmest).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator, Sequence

from scripts.bench.report import Point, Round


def rotations(names: Sequence[str], rounds: int) -> Iterator[list[str]]:
    """Each round's order: ``names`` rotated by one more place each round."""
    for number in range(rounds):
        shift = number % len(names)
        yield [*names[shift:], *names[:shift]]


def measure_rounds(
    names: Sequence[str], rounds: int, measure: Callable[[str], Point]
) -> list[Round]:
    """``rounds`` rounds of ``names``, each measured by ``measure(name)``."""
    return [
        Round(points={name: measure(name) for name in order}) for order in rotations(names, rounds)
    ]


def median_round(rounds: Sequence[Round], numerator: str, denominator: str) -> Round:
    """The round whose rps ratio of ``numerator`` to ``denominator`` is the median (the first
    round when either is missing): the one a table shows for the reference point."""
    ratios = [(r.ratio("rps", numerator, denominator), index) for index, r in enumerate(rounds)]
    present = sorted((ratio, index) for ratio, index in ratios if ratio is not None)
    if not present:
        return rounds[0]
    return rounds[statistics.median_low(present)[1]]
