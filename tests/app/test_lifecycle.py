"""Readiness: starting, then ready, then stopping for good."""

from __future__ import annotations

from app.lifecycle import Lifecycle, Phase


def test_ready_only_between_start_up_and_shutdown() -> None:
    lifecycle = Lifecycle()
    seen = [lifecycle.ready]

    lifecycle.started()
    seen.append(lifecycle.ready)
    lifecycle.stopping()
    seen.append(lifecycle.ready)

    assert seen == [False, True, False]
    assert lifecycle.phase is Phase.STOPPING


def test_a_start_up_finishing_after_shutdown_began_does_not_revive_it() -> None:
    lifecycle = Lifecycle()

    lifecycle.stopping()
    lifecycle.started()

    assert lifecycle.ready is False
