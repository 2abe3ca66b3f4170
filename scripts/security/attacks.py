"""Attack simulation: malformed and hostile HTTP/1.x against the running service, over raw sockets.

Each :class:`~scripts.security.cases.Case` is one request as bytes on the wire (so that
nothing between us and the service can tidy it up) and the answers acceptable for it. A case
passes when

* the first answer's status is one of the expected ones. A connection closed with no answer
  passes only where the case says closing is a correct answer (``closed_ok``): a server that
  hangs up on everything must not pass for one that refuses with the right status;
* no more answers came back than requests were meant to be seen (a second answer to a
  smuggling shape means a hidden request got through);
* no answer carries a stack trace, a ``Server`` header or a product/version string, nor a
  header or text the case forbids (an injected header, a reflected hostile host).

Two cases are not single requests: *slowloris* holds many connections open sending a header
line now and then, while a normal client must still be served within a second; *burst* opens
many connections at once, each of which must be answered. (The churn flood, thousands of
clients that come and go, is :mod:`scripts.security.churn`.)

Targets are the loopback address of the stack under test (or containers the caller created);
every connection has a timeout and every loop a bound.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from scripts.core.checks import Check, listing
from scripts.security.cases import Case, get

#: Seconds a case waits for its answer.
TIMEOUT = 5.0
#: After a complete answer, seconds to wait for a further one (a smuggled request's answer).
LINGER = 0.5
#: Bytes of answer kept per case.
READ_LIMIT = 256 << 10
#: A normal request must be served within this many seconds while slow clients hold on.
SERVE_WITHIN = 1.0

STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})")
#: What must never reach a client: a traceback, a file path of a frame, a product and version.
_LEAKS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("traceback", re.compile(rb"Traceback \(most recent call last\)")),
    ("stack frame", re.compile(rb'File "[^"]+", line [0-9]+')),
    (
        "product/version",
        re.compile(
            rb"(?i)\b(?:hypercorn|quart|werkzeug|h11|uvicorn|gunicorn|c?python|uvloop|asyncio)"
            rb"[/ -]v?[0-9]+(?:\.[0-9]+)"
        ),
    ),
    ("server header", re.compile(rb"(?im)^server:")),
    ("x-powered-by header", re.compile(rb"(?im)^x-powered-by:")),
)


@dataclass(frozen=True, kw_only=True)
class WireAnswer:
    """What came back on one connection."""

    #: The status of every answer seen, in order.
    statuses: tuple[int, ...] = ()
    #: The answers' bytes (heads and bodies), up to READ_LIMIT.
    data: bytes = b""
    #: The service closed the connection (EOF or reset).
    closed: bool = False
    #: Nothing conclusive within the timeout: no answer and no close.
    timed_out: bool = False
    #: A connect or send error, if any (the service may close before the request is all sent).
    error: str = ""

    @property
    def status(self) -> int | None:
        """The first answer's status, if any."""
        return self.statuses[0] if self.statuses else None

    def describe(self) -> str:
        """``400, closed`` / ``no answer, closed`` / ``404 then 404``."""
        parts = [" then ".join(map(str, self.statuses)) if self.statuses else "no answer"]
        if self.closed:
            parts.append("closed")
        if self.timed_out:
            parts.append(f"nothing within {TIMEOUT:g} s")
        if self.error:
            parts.append(self.error)
        return ", ".join(parts)


def leaks(data: bytes) -> list[str]:
    """What in ``data`` tells an attacker about the software: trace, version, Server header."""
    return [name for name, pattern in _LEAKS if pattern.search(data)]


def answer_statuses(data: bytes) -> tuple[tuple[int, ...], bool]:
    """The status of each complete answer in ``data``, and whether the last one is complete."""
    statuses: list[int] = []
    position = 0
    while position < len(data):
        match = STATUS_LINE.match(data, position)
        end = data.find(b"\r\n\r\n", position)
        if match is None or end < 0:
            return tuple(statuses), False
        head = data[position:end].lower()
        length = re.search(rb"\r\ncontent-length:\s*([0-9]+)", head)
        if length is not None:
            body_end = end + 4 + int(length.group(1))
        elif b"\r\ntransfer-encoding: chunked" in head:
            last = data.find(b"\r\n0\r\n\r\n", end)
            body_end = last + 7 if last >= 0 else len(data) + 1
        else:
            body_end = end + 4  # no framing: the body runs to the close, which we see as EOF
        statuses.append(int(match.group(1)))
        if body_end > len(data):
            return tuple(statuses), False
        position = body_end
    return tuple(statuses), True


def evaluate(case: Case, answer: WireAnswer) -> Check:
    """Did the service answer ``case`` as it should? The case's check."""
    problems = []
    if answer.statuses:
        if answer.statuses[0] not in case.expect:
            problems.append(f"status {answer.statuses[0]} not in {sorted(case.expect)}")
    elif not (case.closed_ok and answer.closed):
        problems.append("no answer" + ("" if answer.closed else " and the connection stayed open"))
    if len(answer.statuses) > case.max_answers:
        problems.append(f"{len(answer.statuses)} answers: a hidden request was served")
    heads = _heads(answer.data)
    problems += [f"answer carries {name}" for name in case.forbid_headers if name in heads]
    problems += [f"answer reflects {text!r}" for text in case.forbid_text if text in answer.data]
    problems += [f"answer leaks a {leak}" for leak in leaks(answer.data)]
    expected = " or ".join(map(str, sorted(case.expect))) + (" or close" if case.closed_ok else "")
    evidence = f"{answer.describe()} (expected {expected})"
    if problems:
        evidence += "; " + "; ".join(problems)
    return Check(id=f"ATK-{case.id}", title=case.title, ok=not problems, evidence=evidence)


def _heads(data: bytes) -> set[str]:
    names = set()
    for block in re.finditer(rb"HTTP/1\.[01] [0-9]{3}[^\r\n]*\r\n(.*?)\r\n\r\n", data, re.S):
        for line in block.group(1).split(b"\r\n"):
            name, colon, _ = line.partition(b":")
            if colon:
                names.add(name.strip().lower().decode("latin-1"))
    return names


# ---- talking to the service ------------------------------------------------------------------


def send_raw(
    host: str, port: int, payload: bytes, *, timeout: float = TIMEOUT, linger: float = LINGER
) -> WireAnswer:
    """Send ``payload`` on a fresh connection and read what comes back, within ``timeout``."""
    deadline = time.monotonic() + timeout
    error = ""
    data = b""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return WireAnswer(error=f"connect failed: {exc.strerror or exc}")
    with sock:
        try:
            sock.sendall(payload)
        except OSError as exc:  # the service may answer and close before the body is all sent
            error = f"send stopped: {exc.strerror or type(exc).__name__}"
        while len(data) < READ_LIMIT:
            _statuses, complete = answer_statuses(data)
            wait = deadline - time.monotonic()
            if data and complete:
                wait = min(wait, linger)
            if wait <= 0:
                break
            sock.settimeout(wait)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:  # a reset: the service closed with our request unread
                return _answer(data, closed=True, error=error)
            if not chunk:
                return _answer(data, closed=True, error=error)
            data += chunk
    statuses, complete = answer_statuses(data)
    return _answer(data, closed=False, timed_out=not statuses, error=error)


def _answer(data: bytes, *, closed: bool, timed_out: bool = False, error: str = "") -> WireAnswer:
    statuses, _ = answer_statuses(data)
    return WireAnswer(statuses=statuses, data=data, closed=closed, timed_out=timed_out, error=error)


def timed_get(
    host: str, port: int, host_header: str, timeout: float = SERVE_WITHIN
) -> float | None:
    """Seconds a normal ``GET /`` took to get its 200; None when it took longer than ``timeout``."""
    started = time.monotonic()
    answer = send_raw(host, port, get("/", host_header), timeout=timeout, linger=0)
    took = time.monotonic() - started
    return took if answer.status == 200 and took <= timeout else None


@dataclass(kw_only=True)
class _Slow:
    """Slow connections: each sends the start of a request, then a header line now and then."""

    sockets: list[socket.socket] = field(default_factory=list)
    closed_by_server: int = 0

    def open(self, host: str, port: int, count: int, host_header: str) -> int:
        refused = 0
        for index in range(count):
            try:
                sock = socket.create_connection((host, port), timeout=2)
                sock.sendall(f"GET /?slow={index} HTTP/1.1\r\nHost: {host_header}\r\n".encode())
                sock.setblocking(False)
                self.sockets.append(sock)
            except OSError:
                refused += 1
        return refused

    def drip(self) -> None:
        alive = []
        for sock in self.sockets:
            try:
                sock.send(b"X-Slow: 1\r\n")
                alive.append(sock)
            except OSError:
                self.closed_by_server += 1
                sock.close()
        self.sockets = alive

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def slowloris(
    host: str,
    port: int,
    host_header: str,
    *,
    connections: int = 500,
    duration: float = 6.0,
    interval: float = 1.0,
) -> Check:
    """Hold ``connections`` slow requests for ``duration`` s; normal clients must be served."""
    slow = _Slow()
    served: list[float | None] = []
    try:
        refused = slow.open(host, port, connections, host_header)
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            slow.drip()
            served.append(timed_get(host, port, host_header))
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
        held = len(slow.sockets)
    finally:
        slow.close()
    answered = [took for took in served if took is not None]
    slowest = f"slowest {max(answered) * 1000:.0f} ms" if answered else "none served"
    return Check(
        id="ATK-SLOWLORIS",
        title=f"{connections} slow clients do not stop a normal one being served within "
        f"{SERVE_WITHIN:g} s",
        ok=bool(served) and len(answered) == len(served),
        evidence=f"{connections} opened ({refused} refused), {held} still held after "
        f"{duration:g} s ({slow.closed_by_server} closed by the service); normal requests: "
        f"{len(answered)}/{len(served)} served within {SERVE_WITHIN:g} s, {slowest}",
    )


async def ask(host: str, port: int, payload: bytes, timeout: float) -> str:
    """One client: connect, send ``payload``, read the whole answer, close. Its status code,
    or ``timeout``, ``reset`` or ``not HTTP``."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length:\s*([0-9]+)", head)
                if length is not None:
                    await reader.readexactly(int(length.group(1)))
            finally:
                writer.close()
    except TimeoutError:
        return "timeout"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return "reset"
    match = STATUS_LINE.match(head)
    return match.group(1).decode() if match else "not HTTP"


async def _burst(host: str, port: int, payload: bytes, count: int, timeout: float) -> list[str]:
    return list(await asyncio.gather(*(ask(host, port, payload, timeout) for _ in range(count))))


def burst(
    host: str, port: int, host_header: str, *, connections: int = 1000, timeout: float = 15.0
) -> Check:
    """Open ``connections`` at once, each asking ``GET /``: every one must get its 200."""
    started = time.monotonic()
    statuses = asyncio.run(_burst(host, port, get("/", host_header), connections, timeout))
    took = time.monotonic() - started
    counts = Counter(statuses)
    after = timed_get(host, port, host_header)
    ok = counts.get("200", 0) == connections and after is not None
    return Check(
        id="ATK-BURST",
        title=f"a burst of {connections} connections is answered, and service continues",
        ok=ok,
        evidence=f"{listing(f'{k}: {v}' for k, v in sorted(counts.items()))} in {took:.1f} s; "
        + (f"next request served in {after * 1000:.0f} ms" if after else "next request not served"),
    )


def run_cases(host: str, port: int, case_list: list[Case]) -> Iterator[Check]:
    """Send each case on its own connection and judge the answer."""
    for case in case_list:
        yield evaluate(case, send_raw(host, port, case.payload))
