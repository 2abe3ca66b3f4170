"""The one polling loop: true as soon as the condition is, false at the deadline, bounded."""

from __future__ import annotations

from scripts.core.poll import poll_until


class Clock:
    """A clock the test moves: sleeping advances it, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_returns_true_as_soon_as_the_condition_holds() -> None:
    clock = Clock()
    answers = iter([False, False, True])

    assert poll_until(
        lambda: next(answers), timeout=10, interval=1, clock=clock.time, sleep=clock.sleep
    )
    assert clock.sleeps == [1, 1]


def test_returns_false_at_the_deadline_after_a_last_look() -> None:
    clock = Clock()
    looks: list[float] = []

    def never() -> bool:
        looks.append(clock.now)
        return False

    assert not poll_until(never, timeout=2.5, interval=1, clock=clock.time, sleep=clock.sleep)
    assert looks == [0, 1, 2, 2.5]  # the last sleep is cut to the deadline, then one more look
    assert clock.now == 2.5


def test_a_condition_true_at_once_never_sleeps() -> None:
    clock = Clock()
    assert poll_until(lambda: True, timeout=0, clock=clock.time, sleep=clock.sleep)
    assert clock.sleeps == []
