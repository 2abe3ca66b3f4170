"""Attack simulation: malformed and hostile HTTP/1.x against the running service, over raw sockets.

Each :class:`Case` is one request as bytes on the wire (so that nothing between us and the
service can tidy it up) and the answers that are acceptable for it. A case passes when

* the first answer's status is one of the expected ones. A connection closed with no answer
  passes only where the case says closing is a correct answer (``closed_ok``): a server that
  hangs up on everything must not pass for one that refuses with the right status;
* no more answers came back than requests were meant to be seen (a second answer to a
  smuggling shape means a hidden request got through);
* no answer carries a stack trace, a ``Server`` header or a product/version string, nor a
  header or text the case forbids (an injected header, a reflected hostile host).

Three cases are not single requests: *slowloris* holds many connections open sending a header
line now and then, while a normal client must still be served within a second; *burst* opens
many connections at once, each of which must be answered; *churn* is thousands of ordinary
clients that connect, ask, read the whole answer and hang up, which the service must let go
of (the caller checks what it still holds afterwards).

Targets are the loopback address of the stack under test (or containers the caller created);
every connection has a timeout and every loop a bound.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from scripts.core.checks import Check, listing

#: Seconds a case waits for its answer.
TIMEOUT = 5.0
#: After a complete answer, seconds to wait for a further one (a smuggled request's answer).
LINGER = 0.5
#: Bytes of answer kept per case.
READ_LIMIT = 256 << 10
#: A normal request must be served within this many seconds while slow clients hold on.
SERVE_WITHIN = 1.0

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})")
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


@dataclass(frozen=True, kw_only=True)
class Case:
    """One hostile request and the answers acceptable for it."""

    id: str
    title: str
    payload: bytes
    #: Acceptable statuses for the first answer.
    expect: frozenset[int]
    #: A closed connection with no answer is also correct (only where the framing can leave the
    #: server nothing else to do); everywhere else the status is required.
    closed_ok: bool = False
    #: More answers than this mean a request hidden in the payload was served.
    max_answers: int = 1
    #: Header names (lower case) that must not appear in any answer.
    forbid_headers: tuple[str, ...] = ()
    #: Bytes that must not appear anywhere in the answers (a reflected hostile value).
    forbid_text: tuple[bytes, ...] = ()


def leaks(data: bytes) -> list[str]:
    """What in ``data`` tells an attacker about the software: trace, version, Server header."""
    return [name for name, pattern in _LEAKS if pattern.search(data)]


def answer_statuses(data: bytes) -> tuple[tuple[int, ...], bool]:
    """The status of each complete answer in ``data``, and whether the last one is complete."""
    statuses: list[int] = []
    position = 0
    while position < len(data):
        match = _STATUS_LINE.match(data, position)
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


# ---- the cases -------------------------------------------------------------------------------


def _get(target: str, host: str, *extra: str, version: str = "HTTP/1.1") -> bytes:
    lines = [f"GET {target} {version}", f"Host: {host}", *extra, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _raw(*lines: bytes) -> bytes:
    return b"\r\n".join(lines)


def cases(
    host: str, *, max_body: int = 1 << 20, max_header: int = 16 << 10, max_url: int = 8 << 10
) -> list[Case]:
    """The hostile requests, each with its acceptable answers; ``host`` is the Host to send."""
    h = host.encode("ascii")
    not_found = frozenset({400, 404})
    refused = frozenset({400})
    return [
        Case(
            id="TRAVERSAL-PLAIN",
            title="path traversal (../) finds nothing",
            payload=_get("/../../../../etc/passwd", host),
            expect=not_found,
        ),
        Case(
            id="TRAVERSAL-ENCODED",
            title="percent-encoded traversal (%2e%2e%2f) finds nothing",
            payload=_get("/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", host),
            expect=not_found,
        ),
        Case(
            id="TRAVERSAL-DOUBLE-ENCODED",
            title="double-encoded traversal (%252e) finds nothing",
            payload=_get("/%252e%252e%252f%252e%252e%252fetc%252fpasswd", host),
            expect=not_found,
        ),
        Case(
            id="TRAVERSAL-OVERLONG-UTF8",
            title="overlong UTF-8 traversal (%c0%ae) finds nothing",
            payload=_get("/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", host),
            expect=not_found,
        ),
        Case(
            id="TRAVERSAL-BACKSLASH",
            title="backslash traversal (..\\) finds nothing",
            payload=_get("/..\\..\\..\\etc\\passwd", host),
            expect=not_found,
        ),
        Case(
            id="TRAVERSAL-ENCODED-BACKSLASH",
            title="encoded backslash traversal (%5c) finds nothing",
            payload=_get("/..%5c..%5c..%5cetc%5cpasswd", host),
            expect=not_found,
        ),
        Case(
            id="CRLF-IN-PATH",
            title="encoded CRLF in the path does not become a response header",
            payload=_get("/%0d%0aX-Injected:%20yes", host),
            expect=not_found,
            forbid_headers=("x-injected",),
        ),
        Case(
            id="CRLF-IN-REQUEST-ID",
            title="encoded CRLF in X-Request-ID is not echoed as a header",
            payload=_get("/", host, "X-Request-ID: abc%0d%0aX-Injected:%20yes"),
            expect=frozenset({200, 400}),
            forbid_headers=("x-injected",),
        ),
        Case(
            id="BARE-CR-IN-HEADER",
            title="a bare CR inside a header value is refused",
            payload=_raw(b"GET / HTTP/1.1", b"Host: " + h, b"X-Test: a\rX-Injected: yes", b"", b""),
            expect=refused,
            forbid_headers=("x-injected",),
        ),
        Case(
            id="HOST-HOSTILE",
            title="a hostile Host is never reflected",
            payload=_get("/", "evil.example"),
            expect=frozenset({200, 400, 421}),
            forbid_text=(b"evil.example",),
        ),
        Case(
            id="HOST-MISSING",
            title="HTTP/1.1 without Host is refused",
            payload=_raw(b"GET / HTTP/1.1", b"Connection: close", b"", b""),
            expect=refused,
        ),
        Case(
            id="HOST-DUPLICATE",
            title="two Host headers are refused or the first is used, never reflected",
            payload=_raw(b"GET / HTTP/1.1", b"Host: " + h, b"Host: evil.example", b"", b""),
            expect=frozenset({200, 400}),
            forbid_text=(b"evil.example",),
        ),
        Case(
            id="ABSOLUTE-URI",
            title="an absolute-URI request line is served or refused, not proxied",
            payload=_get(f"http://{host}/", host),
            expect=frozenset({200, 400, 404}),
        ),
        Case(
            id="ABSOLUTE-URI-FOREIGN",
            title="an absolute URI naming another host is not proxied",
            payload=_get("http://evil.example/", host),
            expect=frozenset({200, 400, 404, 421}),
            forbid_text=(b"evil.example",),
        ),
        Case(
            id="ABSOLUTE-URI-FILE",
            title="a file:// request target is refused",
            payload=_get("file:///etc/passwd", host),
            expect=not_found,
        ),
        Case(
            id="OVERSIZED-HEADER",
            title=f"one header over {max_header >> 10} KiB gets 431 or 400",
            payload=_get("/", host, "X-Big: " + "a" * (max_header * 2)),
            expect=frozenset({400, 431}),
        ),
        Case(
            id="MANY-HEADERS",
            title=f"headers totalling over {max_header >> 10} KiB get 431 or 400",
            payload=_get("/", host, *(f"X-H{i}: {'b' * 16}" for i in range(max_header // 16))),
            expect=frozenset({400, 431}),
        ),
        Case(
            id="OVERSIZED-URI",
            title=f"a request target over {max_url >> 10} KiB is refused (414, or 431)",
            payload=_get("/" + "u" * (max_url * 4), host),
            # The service answers 414; when the head arrives in pieces (through Docker's
            # loopback proxy) and outgrows Hypercorn's buffer first, Hypercorn answers 431.
            expect=frozenset({414, 431}),
        ),
        Case(
            id="OVERSIZED-BODY",
            title=f"a body over {max_body >> 20} MiB gets 413",
            payload=_raw(
                b"POST / HTTP/1.1",
                b"Host: " + h,
                b"Content-Length: " + str(max_body * 2).encode(),
                b"",
                b"x" * (max_body * 2),
            ),
            expect=frozenset({413}),
        ),
        Case(
            id="OVERSIZED-CHUNKED-BODY",
            title=f"a chunked body over {max_body >> 20} MiB gets 413",
            # b"", b"": the blank line that ends the head. Without it the chunks read as an
            # endless header block, which the server rightly refuses with 431.
            payload=_raw(b"POST / HTTP/1.1", b"Host: " + h, b"Transfer-Encoding: chunked", b"", b"")
            + _chunked(max_body * 2),
            expect=frozenset({413}),
        ),
        Case(
            id="INVALID-METHOD",
            title="an unknown method gets 405 or 501",
            payload=_raw(b"FOO / HTTP/1.1", b"Host: " + h, b"Connection: close", b"", b""),
            expect=frozenset({400, 405, 501}),
        ),
        Case(
            id="MALFORMED-METHOD",
            title="a method with illegal characters is refused",
            payload=_raw(b"G(T / HTTP/1.1", b"Host: " + h, b"", b""),
            expect=refused,
        ),
        Case(
            id="TRACE",
            title="TRACE gets 405 and echoes nothing",
            payload=_raw(b"TRACE / HTTP/1.1", b"Host: " + h, b"X-Echo: secret-cookie", b"", b""),
            expect=frozenset({405, 501}),
            forbid_text=(b"secret-cookie",),
        ),
        Case(
            id="CONNECT",
            title="CONNECT opens no tunnel",
            payload=_raw(b"CONNECT 127.0.0.1:22 HTTP/1.1", b"Host: 127.0.0.1:22", b"", b""),
            # Any refusal will do; what must not come back is a 200 that opens a tunnel.
            expect=frozenset({400, 404, 405, 501}),
        ),
        Case(
            id="SMUGGLE-CL-TE",
            title="Content-Length with Transfer-Encoding (CL.TE) is refused or one request only",
            payload=_raw(
                b"POST / HTTP/1.1",
                b"Host: " + h,
                b"Content-Length: 6",
                b"Transfer-Encoding: chunked",
                b"",
                b"0",
                b"",
                b"GET /smuggled HTTP/1.1",
                b"Host: " + h,
                b"",
                b"",
            ),
            expect=frozenset({400, 405, 501}),
        ),
        Case(
            id="SMUGGLE-TE-TE",
            title="two Transfer-Encodings (TE.TE) are refused or one request only",
            payload=_raw(
                b"POST / HTTP/1.1",
                b"Host: " + h,
                b"Transfer-Encoding: chunked",
                b"Transfer-Encoding: x-identity",
                b"",
                b"0",
                b"",
                b"GET /smuggled HTTP/1.1",
                b"Host: " + h,
                b"",
                b"",
            ),
            expect=frozenset({400, 405, 501}),
        ),
        Case(
            id="SMUGGLE-TE-OBFUSCATED",
            title="'Transfer-Encoding : chunked' (space before colon) is refused",
            payload=_raw(
                b"POST / HTTP/1.1",
                b"Host: " + h,
                b"Content-Length: 4",
                b"Transfer-Encoding : chunked",
                b"",
                b"0",
                b"",
                b"",
            ),
            expect=refused,
        ),
        Case(
            id="SMUGGLE-DUPLICATE-CL",
            title="two different Content-Lengths are refused",
            payload=_raw(
                b"POST / HTTP/1.1",
                b"Host: " + h,
                b"Content-Length: 0",
                b"Content-Length: 30",
                b"",
                b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
            expect=refused,
        ),
        Case(
            id="NEGATIVE-CL",
            title="a negative Content-Length is refused",
            payload=_raw(b"POST / HTTP/1.1", b"Host: " + h, b"Content-Length: -1", b"", b""),
            expect=refused,
        ),
        Case(
            id="INVALID-CHUNK-SIZE",
            title="a chunk size that is not hex is refused",
            payload=_raw(
                b"POST / HTTP/1.1",
                b"Host: " + h,
                b"Transfer-Encoding: chunked",
                b"",
                b"zz",
                b"hello",
                b"0",
                b"",
                b"",
            ),
            expect=frozenset({400, 405}),
        ),
        Case(
            id="HUGE-CHUNK-SIZE",
            title="a chunk size of 2^64-1 is refused",
            payload=_raw(
                b"POST / HTTP/1.1",
                b"Host: " + h,
                b"Transfer-Encoding: chunked",
                b"",
                b"ffffffffffffffff",
                b"x",
                b"",
            ),
            expect=frozenset({400, 405, 413}),
            # The body is cut off mid-chunk: when the app's answer has already begun, h11 can
            # only close the connection; a status, when one comes, must still be a refusal.
            closed_ok=True,
        ),
        Case(
            id="HTTP10-NO-HOST",
            title="HTTP/1.0 without Host is answered and closed",
            payload=_raw(b"GET / HTTP/1.0", b"", b""),
            expect=frozenset({200, 400}),
        ),
        Case(
            id="NUL-IN-PATH",
            title="a NUL byte in the request target is refused",
            payload=_raw(b"GET /\x00../etc/passwd HTTP/1.1", b"Host: " + h, b"", b""),
            expect=refused,
        ),
        Case(
            id="NUL-IN-HEADER",
            title="a NUL byte in a header value is refused",
            payload=_raw(b"GET / HTTP/1.1", b"Host: " + h, b"X-Test: a\x00b", b"", b""),
            expect=refused,
        ),
        Case(
            id="BAD-VERSION",
            title="a malformed HTTP version is refused",
            payload=_raw(b"GET / HTTP/one.one", b"Host: " + h, b"", b""),
            expect=frozenset({400, 505}),
        ),
        Case(
            id="TLS-ON-PLAIN-PORT",
            title="a TLS ClientHello on the plain port is refused",
            payload=bytes.fromhex("16030100a5010000a10303") + b"\x00" * 32,
            expect=refused,
        ),
        Case(
            id="OBS-FOLD",
            title="an obsolete folded header line is refused or unfolded, never a new header",
            payload=_raw(
                b"GET / HTTP/1.1", b"Host: " + h, b"X-Fold: a", b" X-Injected: yes", b"", b""
            ),
            # RFC 9112 5.2: a server either rejects obs-fold or replaces it with a space.
            expect=frozenset({200, 400}),
            forbid_headers=("x-injected",),
        ),
    ]


def _chunked(total: int, size: int = 64 << 10) -> bytes:
    chunk = b"%x\r\n" % size + b"y" * size + b"\r\n"
    return chunk * (total // size) + b"0\r\n\r\n"


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
    answer = send_raw(host, port, _get("/", host_header), timeout=timeout, linger=0)
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


async def _one(host: str, port: int, payload: bytes, timeout: float) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(payload)
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    statuses, _ = answer_statuses(data)
    return statuses[0] if statuses else None


async def _burst(
    host: str, port: int, payload: bytes, count: int, timeout: float
) -> list[int | None]:
    return list(await asyncio.gather(*(_one(host, port, payload, timeout) for _ in range(count))))


def burst(
    host: str, port: int, host_header: str, *, connections: int = 1000, timeout: float = 15.0
) -> Check:
    """Open ``connections`` at once, each asking ``GET /``: every one must get its 200."""
    started = time.monotonic()
    statuses = asyncio.run(_burst(host, port, _get("/", host_header), connections, timeout))
    took = time.monotonic() - started
    counts: dict[str, int] = {}
    for status in statuses:
        key = str(status) if status is not None else "no answer"
        counts[key] = counts.get(key, 0) + 1
    after = timed_get(host, port, host_header)
    ok = counts.get("200", 0) == connections and after is not None
    return Check(
        id="ATK-BURST",
        title=f"a burst of {connections} connections is answered, and service continues",
        ok=ok,
        evidence=f"{listing(f'{k}: {v}' for k, v in sorted(counts.items()))} in {took:.1f} s; "
        + (f"next request served in {after * 1000:.0f} ms" if after else "next request not served"),
    )


@dataclass(frozen=True, kw_only=True)
class Churn:
    """What :func:`churn` did: clients that came and went, and how they were answered."""

    clients: int
    answered: int
    seconds: float
    #: Clients not answered 200, by what happened ("503", "reset", "timeout" ...).
    failures: dict[str, int] = field(default_factory=dict)


async def _ask_and_hang_up(host: str, port: int, payload: bytes, timeout: float) -> str:
    """One client: connect, send ``payload``, read the whole answer, close. Its status."""
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
    match = _STATUS_LINE.match(head)
    return match.group(1).decode() if match else "not HTTP"


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
            outcome = await _ask_and_hang_up(host, port, payload, TIMEOUT)
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


def run_cases(host: str, port: int, case_list: list[Case]) -> Iterator[Check]:
    """Send each case on its own connection and judge the answer."""
    for case in case_list:
        yield evaluate(case, send_raw(host, port, case.payload))
