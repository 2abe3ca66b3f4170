"""The bench's one options type: doit's variables, declared once, and their bounds."""

from __future__ import annotations

import pytest

from scripts.bench.options import VARIABLES, BenchOptions
from scripts.bench.render import command
from scripts.core.errors import ParamError


def test_default_options_are_the_full_run() -> None:
    options = BenchOptions.from_vars({})
    assert options == BenchOptions()
    assert options.targets == ("service", "ceiling")
    assert options.concurrency == (1, 16, 64, 256, 1024)
    assert (options.hold, options.idle_hold, options.workers) == (10_000, 10_000, (1, 2))
    assert options.planned_seconds() < 600  # a full bench takes minutes, not hours


def test_options_from_the_command_line() -> None:
    options = BenchOptions.from_vars(
        {
            "concurrency": "64,1, 16",
            "duration": "2",
            "accept": "1",
            "margin": "0.3",
            "memory_margin": "0.05",
            "hold": "0",
            "scaling": "0",
            "workers": "2,1",
            "idle_hold": "500",
        }
    )
    assert options.concurrency == (1, 16, 64)
    assert (options.duration, options.accept) == (2.0, True)
    assert (options.margin, options.memory_margin) == (0.3, 0.05)
    assert (options.hold, options.scaling, options.workers, options.idle_hold) == (
        0,
        False,
        (1, 2),
        500,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("concurrency", "1,lots"),
        ("concurrency", ""),
        ("duration", "0"),
        ("margin", "-0.1"),
        ("memory_margin", "lots"),
        ("accept", "yes please"),
        ("hold", "1e9"),
        ("workers", "0"),
        ("reference", "32"),  # not in the sweep
    ],
)
def test_a_bad_option_names_itself(name: str, value: str) -> None:
    with pytest.raises(ParamError, match=f"^{name} must be"):
        BenchOptions.from_vars({name: value})


def test_every_variable_is_declared_once_and_read() -> None:
    # dodo.py hands doit exactly these names; each must change the options it is given to.
    assert "swarm_project" not in VARIABLES
    assert "targets" not in VARIABLES
    for name in VARIABLES:
        with pytest.raises(ParamError, match=f"^{name} must be"):
            BenchOptions.from_vars({name: "-5"})


def test_an_unknown_target_is_refused() -> None:
    with pytest.raises(ParamError, match=r"^targets must be some of service"):
        BenchOptions(targets=("service", "nginx"))


def test_a_phase_given_as_none_is_skipped_and_the_command_says_so() -> None:
    options = BenchOptions.from_vars({"workers": "none"})
    assert options.workers == ()
    assert command(options) == "doit bench workers=none"
    with pytest.raises(ParamError, match=r"^concurrency must be"):
        BenchOptions.from_vars({"concurrency": "none"})
