"""The hostile requests ``doit security`` sends, each with the answers acceptable for it.

Each :class:`Case` is one request as bytes on the wire (so that nothing between us and the
service can tidy it up). Most cases fall in families that share what they expect (a traversal
finds nothing, a malformed request is refused with 400, an oversized one with its own status);
the families are tables here, each row a case. :mod:`scripts.security.attacks` sends them and
judges the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_FOUND = frozenset({400, 404})
REFUSED = frozenset({400})


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


def get(target: str, host: str, *extra: str, version: str = "HTTP/1.1") -> bytes:
    """``GET target`` with ``Host``, any ``extra`` header lines, and ``Connection: close``."""
    lines = [f"GET {target} {version}", f"Host: {host}", *extra, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _raw(*lines: bytes) -> bytes:
    return b"\r\n".join(lines)


def _chunked(total: int, size: int = 64 << 10) -> bytes:
    chunk = b"%x\r\n" % size + b"y" * size + b"\r\n"
    return chunk * (total // size) + b"0\r\n\r\n"


#: Paths that must find nothing: (id, what it tries, request target).
TRAVERSALS = (
    ("TRAVERSAL-PLAIN", "path traversal (../)", "/../../../../etc/passwd"),
    ("TRAVERSAL-ENCODED", "percent-encoded traversal (%2e%2e%2f)",
     "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    ("TRAVERSAL-DOUBLE-ENCODED", "double-encoded traversal (%252e)",
     "/%252e%252e%252f%252e%252e%252fetc%252fpasswd"),
    ("TRAVERSAL-OVERLONG-UTF8", "overlong UTF-8 traversal (%c0%ae)",
     "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd"),
    ("TRAVERSAL-BACKSLASH", "backslash traversal (..\\)", "/..\\..\\..\\etc\\passwd"),
    ("TRAVERSAL-ENCODED-BACKSLASH", "encoded backslash traversal (%5c)",
     "/..%5c..%5c..%5cetc%5cpasswd"),
    ("ABSOLUTE-URI-FILE", "a file:// request target", "file:///etc/passwd"),
)  # fmt: skip


def _malformed(h: bytes) -> tuple[tuple[str, str, bytes], ...]:
    """Requests HTTP/1.1 does not allow, refused with 400: (id, title, payload)."""
    return (
        ("HOST-MISSING", "HTTP/1.1 without Host is refused",
         _raw(b"GET / HTTP/1.1", b"Connection: close", b"", b"")),
        ("MALFORMED-METHOD", "a method with illegal characters is refused",
         _raw(b"G(T / HTTP/1.1", b"Host: " + h, b"", b"")),
        ("SMUGGLE-TE-OBFUSCATED", "'Transfer-Encoding : chunked' (space before colon) is refused",
         _raw(b"POST / HTTP/1.1", b"Host: " + h, b"Content-Length: 4",
              b"Transfer-Encoding : chunked", b"", b"0", b"", b"")),
        ("SMUGGLE-DUPLICATE-CL", "two different Content-Lengths are refused",
         _raw(b"POST / HTTP/1.1", b"Host: " + h, b"Content-Length: 0", b"Content-Length: 30",
              b"", b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("NEGATIVE-CL", "a negative Content-Length is refused",
         _raw(b"POST / HTTP/1.1", b"Host: " + h, b"Content-Length: -1", b"", b"")),
        ("NUL-IN-PATH", "a NUL byte in the request target is refused",
         _raw(b"GET /\x00../etc/passwd HTTP/1.1", b"Host: " + h, b"", b"")),
        ("NUL-IN-HEADER", "a NUL byte in a header value is refused",
         _raw(b"GET / HTTP/1.1", b"Host: " + h, b"X-Test: a\x00b", b"", b"")),
        ("TLS-ON-PLAIN-PORT", "a TLS ClientHello on the plain port is refused",
         bytes.fromhex("16030100a5010000a10303") + b"\x00" * 32),
    )  # fmt: skip


def _smuggles(h: bytes) -> tuple[tuple[str, str, bytes], ...]:
    """Bodies framed two ways, each with a request hidden behind: (id, title, payload).
    Refused (400), or answered for one request only; 405/501 are the app's or h11's refusal."""
    hidden = (b"0", b"", b"GET /smuggled HTTP/1.1", b"Host: " + h, b"", b"")
    return (
        ("SMUGGLE-CL-TE", "Content-Length with Transfer-Encoding (CL.TE)",
         _raw(b"POST / HTTP/1.1", b"Host: " + h, b"Content-Length: 6",
              b"Transfer-Encoding: chunked", b"", *hidden)),
        ("SMUGGLE-TE-TE", "two Transfer-Encodings (TE.TE)",
         _raw(b"POST / HTTP/1.1", b"Host: " + h, b"Transfer-Encoding: chunked",
              b"Transfer-Encoding: x-identity", b"", *hidden)),
    )  # fmt: skip


def cases(
    host: str, *, max_body: int = 1 << 20, max_header: int = 16 << 10, max_url: int = 8 << 10
) -> list[Case]:
    """The hostile requests, each with its acceptable answers; ``host`` is the Host to send."""
    h = host.encode("ascii")
    found_nothing = [
        Case(id=id_, title=f"{what} finds nothing", payload=get(target, host), expect=NOT_FOUND)
        for id_, what, target in TRAVERSALS
    ]
    refused = [
        Case(id=id_, title=title, payload=payload, expect=REFUSED)
        for id_, title, payload in _malformed(h)
    ]
    smuggled = [
        Case(
            id=id_,
            title=f"{title} is refused or one request only",
            payload=payload,
            expect=frozenset({400, 405, 501}),
        )
        for id_, title, payload in _smuggles(h)
    ]
    post = (b"POST / HTTP/1.1", b"Host: " + h)
    return [
        *found_nothing,
        Case(
            id="CRLF-IN-PATH",
            title="encoded CRLF in the path does not become a response header",
            payload=get("/%0d%0aX-Injected:%20yes", host),
            expect=NOT_FOUND,
            forbid_headers=("x-injected",),
        ),
        Case(
            id="CRLF-IN-REQUEST-ID",
            title="encoded CRLF in X-Request-ID is not echoed as a header",
            payload=get("/", host, "X-Request-ID: abc%0d%0aX-Injected:%20yes"),
            expect=frozenset({200, 400}),
            forbid_headers=("x-injected",),
        ),
        Case(
            id="BARE-CR-IN-HEADER",
            title="a bare CR inside a header value is refused",
            payload=_raw(b"GET / HTTP/1.1", b"Host: " + h, b"X-Test: a\rX-Injected: yes", b"", b""),
            expect=REFUSED,
            forbid_headers=("x-injected",),
        ),
        Case(
            id="HOST-HOSTILE",
            title="a hostile Host is never reflected",
            payload=get("/", "evil.example"),
            expect=frozenset({200, 400, 421}),
            forbid_text=(b"evil.example",),
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
            payload=get(f"http://{host}/", host),
            expect=frozenset({200, 400, 404}),
        ),
        Case(
            id="ABSOLUTE-URI-FOREIGN",
            title="an absolute URI naming another host is not proxied",
            payload=get("http://evil.example/", host),
            expect=frozenset({200, 400, 404, 421}),
            forbid_text=(b"evil.example",),
        ),
        Case(
            id="OVERSIZED-HEADER",
            title=f"one header over {max_header >> 10} KiB gets 431 or 400",
            payload=get("/", host, "X-Big: " + "a" * (max_header * 2)),
            expect=frozenset({400, 431}),
        ),
        Case(
            id="MANY-HEADERS",
            title=f"headers totalling over {max_header >> 10} KiB get 431 or 400",
            payload=get("/", host, *(f"X-H{i}: {'b' * 16}" for i in range(max_header // 16))),
            expect=frozenset({400, 431}),
        ),
        Case(
            id="OVERSIZED-URI",
            title=f"a request target over {max_url >> 10} KiB is refused (414, or 431)",
            # Twice the limit: over the service's guard, and within what Hypercorn buffers of
            # an incomplete head (the header and target limits together, app/server.py), so
            # the answer is the service's 414 whether the head arrives whole or in pieces.
            # Four times the limit outgrew that buffer when it came in pieces, and Hypercorn's
            # own 431 then passed even a service that answers anything with 200. 431 stays
            # acceptable for a service whose header limit is set below its target limit.
            payload=get("/" + "u" * (max_url * 2), host),
            expect=frozenset({414, 431}),
        ),
        Case(
            id="OVERSIZED-BODY",
            title=f"a body over {max_body >> 20} MiB gets 413",
            payload=_raw(
                *post, b"Content-Length: " + str(max_body * 2).encode(), b"", b"x" * (max_body * 2)
            ),
            expect=frozenset({413}),
        ),
        Case(
            id="OVERSIZED-CHUNKED-BODY",
            title=f"a chunked body over {max_body >> 20} MiB gets 413",
            # b"", b"": the blank line that ends the head. Without it the chunks read as an
            # endless header block, which the server rightly refuses with 431.
            payload=_raw(*post, b"Transfer-Encoding: chunked", b"", b"") + _chunked(max_body * 2),
            expect=frozenset({413}),
        ),
        Case(
            id="INVALID-METHOD",
            title="an unknown method gets 405 or 501",
            payload=_raw(b"FOO / HTTP/1.1", b"Host: " + h, b"Connection: close", b"", b""),
            expect=frozenset({400, 405, 501}),
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
        *smuggled,
        *refused,
        Case(
            id="INVALID-CHUNK-SIZE",
            title="a chunk size that is not hex is refused",
            payload=_raw(
                *post, b"Transfer-Encoding: chunked", b"", b"zz", b"hello", b"0", b"", b""
            ),
            expect=frozenset({400, 405}),
        ),
        Case(
            id="HUGE-CHUNK-SIZE",
            title="a chunk size of 2^64-1 is refused",
            payload=_raw(*post, b"Transfer-Encoding: chunked", b"", b"ffffffffffffffff", b"x", b""),
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
            id="BAD-VERSION",
            title="a malformed HTTP version is refused",
            payload=_raw(b"GET / HTTP/one.one", b"Host: " + h, b"", b""),
            expect=frozenset({400, 505}),
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
