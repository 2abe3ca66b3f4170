"""What a bench run does: the one options type of ``doit bench`` and the service benchmark.

Each field made with :func:`~scripts.options.var` is a ``doit bench`` variable of the same name
(``doit bench duration=10 hold=0``): declared here once, read by :meth:`BenchOptions.from_vars`
and handed to the task by ``dodo.py`` through :data:`VARIABLES`. The service benchmark
(:mod:`scripts.bench.service`) takes the same type with other defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from scripts.core.errors import ParamError
from scripts.core.options import read_vars, var, variables_of

#: The servers a run can load (see scripts.bench.servers).
SERVICE: Final = "service"
CEILING: Final = "ceiling"
STOCK: Final = "stock"
#: The service with its JSON access log off: what logging costs.
SERVICE_NOLOG: Final = "service-nolog"
TARGETS: Final = (SERVICE, CEILING, STOCK, SERVICE_NOLOG)


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """One bench run: servers, load, phases, and how strict its gate is."""

    #: The servers measured side by side (the first is the one gated).
    targets: tuple[str, ...] = (SERVICE, CEILING)
    #: Connections in the sweep; every target at each.
    concurrency: tuple[int, ...] = field(default=(1, 16, 64, 256, 1024), metadata=var(1, 100_000))
    #: Seconds each measured run lasts. Five-second runs on two shared cores put the p99 ratio
    #: anywhere in 1.3-1.9; ten-second runs are what the gate's margins were set on.
    duration: float = field(default=10.0, metadata=var(1, 600))
    #: Seconds of load on each server before it is measured.
    warmup: float = field(default=3.0, metadata=var(0, 600))
    #: The concurrency the gate compares at (one of ``concurrency``).
    reference: int = field(default=64, metadata=var(1, 100_000))
    #: Rounds of the targets at the reference, one after another, rotated; the gate drops the
    #: rounds in which a server did not get its CPU and takes medians of the rest.
    rounds: int = field(default=5, metadata=var(1, 21))
    #: Busy connections held open on the service (0 skips it), and for how long.
    hold: int = field(default=10_000, metadata=var(0, 100_000))
    hold_duration: float = field(default=10.0, metadata=var(1, 600))
    #: Idle keep-alive connections held open (each asked one request first; 0 skips it).
    idle_hold: int = field(default=10_000, metadata=var(0, 100_000))
    idle_duration: float = field(default=10.0, metadata=var(1, 600))
    #: Seconds of sustained load whose memory slope is gated (0 skips it), in runs of
    #: ``soak_round`` seconds with fresh connections each.
    soak: float = field(default=60.0, metadata=var(0, 86_400))
    soak_round: float = field(default=5.0, metadata=var(1, 600))
    #: APP_WORKERS counts compared, each in a container with as many CPUs (``none`` skips it).
    workers: tuple[int, ...] = field(default=(1, 2), metadata=var(1, 64))
    #: Compare 1 and 2 replicas on swarm (``scaling=0`` skips it).
    scaling: bool = field(default=True, metadata=var(0, 1))
    replica_connections: int = field(default=64, metadata=var(2, 100_000))
    #: The gate's margin for calibrated throughput and p90: a change the wrong way beyond it
    #: fails. Sixteen default runs of one unchanged image on the reference machine came out
    #: up to 16 % worse than its baseline (README, "How long a run must be").
    margin: float = field(default=0.20, metadata=var(0, 10))
    #: The margin for calibrated p99, wider: on two shared cores the p99 of a run measures the
    #: neighbours more than the service (see README, "How long a run must be").
    p99_margin: float = field(default=1.0, metadata=var(0, 10))
    #: The margin for steady memory, which holds still from run to run.
    memory_margin: float = field(default=0.10, metadata=var(0, 10))
    #: Record this run as this machine's baseline instead of gating on the old one.
    accept: bool = field(default=False, metadata=var(0, 1))
    #: Compare with the baseline (``compare=0``: only the absolute checks gate, and the run is
    #: never recorded as a baseline). For runs not shaped like the baseline's, such as a long
    #: soak of one round, whose single-round ratios would be noise.
    compare: bool = field(default=True, metadata=var(0, 1))
    #: First loopback port of the servers (one each). Not ``port``: doit hands every variable
    #: to every task, and ``port`` is the deployed stack's.
    bench_port: int = field(default=18210, metadata=var(1024, 65000))
    #: wrk threads (the load generator's share of the cores).
    threads: int = field(default=2, metadata=var(1, 64))
    #: The swarm stack's name for the replica comparison (tests use their own).
    swarm_project: str = "zpbench"

    def __post_init__(self) -> None:
        if not self.concurrency:
            raise ParamError("concurrency", "none", "at least one connection count")
        if self.reference not in self.concurrency:
            raise ParamError(
                "reference", self.reference, f"one of the concurrency values {self.concurrency}"
            )
        if self.accept and not self.compare:
            raise ParamError("accept", 1, "0 with compare=0 (such a run is never a baseline)")
        unknown = [name for name in self.targets if name not in TARGETS]
        if unknown or not self.targets:
            raise ParamError("targets", ",".join(self.targets), f"some of {', '.join(TARGETS)}")

    @classmethod
    def from_vars(cls, variables: Mapping[str, str]) -> BenchOptions:
        """``doit bench``'s variables; :class:`ParamError` names a bad one."""
        return replace(cls(), **read_vars(cls, variables))

    @classmethod
    def one_point(cls, connections: int, **changes: Any) -> BenchOptions:
        """One point at ``connections`` and no other phase; ``changes`` turn phases on."""
        quiet: dict[str, Any] = {
            "hold": 0,
            "idle_hold": 0,
            "soak": 0,
            "workers": (),
            "scaling": False,
        }
        return cls(**quiet | {"concurrency": (connections,), "reference": connections} | changes)

    def planned_seconds(self) -> float:
        """Seconds of load the run will put on, for the progress bar."""
        runs = len(self.targets) * (len(self.concurrency) + self.rounds - 1)
        seconds = self.warmup * len(self.targets) + self.duration * (runs + 1)
        seconds += (self.hold_duration if self.hold else 0) + self.soak
        seconds += self.idle_duration if self.idle_hold else 0
        seconds += len(self.workers) * (self.warmup + self.duration)
        if self.scaling:
            seconds += 2 * (self.warmup + self.duration)
        return seconds


#: The doit variables ``doit bench`` takes: dodo.py passes exactly these.
VARIABLES: Final = variables_of(BenchOptions)
