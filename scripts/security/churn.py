"""The churn flood: thousands of ordinary clients that connect, ask, read and hang up.

A service that keeps a connection after its client left (Hypercorn without ADR 0013's
override) holds its socket in CLOSE-WAIT, its descriptor and its memory; enough clients
exhaust one or the other. The flood here is bounded in count and time and goes only to the
stack under test; what the service holds before and after it is read inside its container
(:mod:`scripts.security.probe`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from docker.models.containers import Container

from scripts.core.checks import Check, listing
from scripts.security.attacks import TIMEOUT, ask
from scripts.security.probe import Holdings, probe

MIB = 1 << 20
#: Seconds after the flood by which the service must have let every client go.
SETTLE = 2.0
#: Clients that warm the service up before its holdings are read as the baseline.
WARMUP = 200
#: How much more the service may hold after the flood than before it.
FD_SLACK = 8
RSS_SLACK = 5 * MIB


@dataclass(frozen=True, kw_only=True)
class Churn:
    """What :func:`churn` did: clients that came and went, and how they were answered."""

    clients: int
    answered: int
    seconds: float
    #: Clients not answered 200, by what happened ("503", "reset", "timeout" ...).
    failures: dict[str, int] = field(default_factory=dict)


async def _churn(
    host: str, port: int, payload: bytes, *, clients: int, workers: int, time_limit: float
) -> tuple[int, dict[str, int]]:
    remaining = clients
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + time_limit

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            outcome = await ask(host, port, payload, TIMEOUT)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return clients - remaining, outcomes


def churn(
    host: str,
    port: int,
    host_header: str,
    *,
    clients: int = 5000,
    workers: int = 8,
    time_limit: float = 60.0,
) -> Churn:
    """``clients`` ordinary clients, ``workers`` at a time: connect, ``GET /``, read, hang up.

    The request asks for keep-alive (as browsers and cloudflared do), so it is the client that
    closes. Stops after ``time_limit`` seconds whatever is left.
    """
    payload = f"GET / HTTP/1.1\r\nHost: {host_header}\r\n\r\n".encode("latin-1")
    started = time.monotonic()
    done, outcomes = asyncio.run(
        _churn(host, port, payload, clients=clients, workers=workers, time_limit=time_limit)
    )
    answered = outcomes.pop("200", 0)
    return Churn(
        clients=done,
        answered=answered,
        seconds=time.monotonic() - started,
        failures=outcomes,
    )


def checks(
    containers: list[Container], host: str, port: int, host_header: str, clients: int
) -> list[Check]:
    """Clients that connect, ask and hang up: all answered, and none of them kept (ADR 0013).

    ``containers`` are the service's; what they hold is read before and after the flood.
    """
    churn(host, port, host_header, clients=WARMUP)
    time.sleep(SETTLE)
    before = _holdings(containers)
    flood = churn(host, port, host_header, clients=clients)
    time.sleep(SETTLE)
    return judge(flood, before, _holdings(containers))


def judge(flood: Churn, before: Holdings, after: Holdings) -> list[Check]:
    """The churn case's checks: every client answered; sockets, descriptors and memory let go."""
    failures = listing(f"{what}: {count}" for what, count in sorted(flood.failures.items()))
    grown = after.rss - before.rss
    return [
        Check(
            id="ATK-CHURN",
            title=f"{flood.clients} clients that connect, ask and hang up are all answered",
            ok=flood.answered == flood.clients > 0,
            evidence=f"{flood.answered} of {flood.clients} answered 200 in {flood.seconds:.1f} s"
            + (f"; not answered: {failures}" if flood.failures else ""),
        ),
        Check(
            id="ATK-CHURN-RELEASED",
            title=f"{SETTLE:g} s after the churn, no socket is left in CLOSE-WAIT and "
            "descriptors are back to where they were",
            ok=after.close_wait == 0 and after.fds <= before.fds + FD_SLACK,
            evidence=f"CLOSE-WAIT {after.close_wait}; descriptors {before.fds} before, "
            f"{after.fds} after (slack {FD_SLACK})",
        ),
        Check(
            id="ATK-CHURN-MEMORY",
            title=f"the churn leaves RSS within {RSS_SLACK >> 20} MiB of where it was",
            ok=grown < RSS_SLACK,
            evidence=f"RSS {before.rss / MIB:.1f} MiB before, {after.rss / MIB:.1f} MiB after "
            f"({grown / MIB:+.1f} MiB)",
        ),
    ]


def _holdings(containers: list[Container]) -> Holdings:
    readings = [probe(container) for container in containers]
    return Holdings(
        processes=sum(r.processes for r in readings),
        fds=sum(r.fds for r in readings),
        rss=sum(r.rss for r in readings),
        close_wait=sum(r.close_wait for r in readings),
    )
