"""The smoke test's raw HTTP client and its verdicts, against a tiny socket server in a thread."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from builder import smoke
from builder.smoke import Case, SmokeError, check_case, exchange

ROOT = Path(__file__).resolve().parents[2]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nHello World"


class RawServer:
    """Accepts one connection on 127.0.0.1, reads the request head, answers ``reply``, closes.

    ``reply=None`` closes without a word. The thread ends within a few seconds whatever happens.
    """

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = int(self.listener.getsockname()[1])
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except TimeoutError:
            return
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.received:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.received += chunk
            if self.reply is not None:
                conn.sendall(self.reply)

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[type[RawServer]]:
    started: list[RawServer] = []

    class Tracked(RawServer):
        def __init__(self, reply: bytes | None) -> None:
            super().__init__(reply)
            started.append(self)

    yield Tracked
    for server in started:
        server.close()


def test_exchange_sends_the_request_and_returns_status_and_response(
    serve: type[RawServer],
) -> None:
    server = serve(OK)
    request = smoke._request("/healthz")
    status, response = exchange(server.port, request)
    assert status == 200
    assert response == OK
    assert server.received == request
    assert b"Host: smoke.test\r\n" in request
    assert b"Connection: close\r\n" in request


def test_exchange_reports_a_connection_closed_without_answer(serve: type[RawServer]) -> None:
    server = serve(None)
    assert exchange(server.port, smoke._request("/")) == (None, b"")


def test_exchange_reports_an_answer_that_is_not_http(serve: type[RawServer]) -> None:
    server = serve(b"SSH-2.0-OpenSSH\r\n")
    assert exchange(server.port, smoke._request("/")) == (None, b"SSH-2.0-OpenSSH\r\n")


def test_exchange_keeps_an_early_answer_to_a_body_the_server_would_not_read(
    serve: type[RawServer],
) -> None:
    # A server refusing a large body answers 413 and closes before the client has sent it
    # all. The answer must not be lost because sending the rest failed: the smoke case
    # "body too large" expects exactly this 413.
    server = serve(b"HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\n\r\n")
    status, _ = exchange(server.port, smoke._request("/", "POST", body=b"x" * (32 * 1024 * 1024)))
    assert status == 413


def assert_verdict(port: int, case: Case, error: str | None) -> None:
    """``check_case`` passes when ``error`` is None, else fails saying exactly ``error``."""
    if error is None:
        check_case(port, case)
        return
    with pytest.raises(SmokeError) as caught:
        check_case(port, case)
    assert str(caught.value) == error


@pytest.mark.parametrize(
    ("reply", "case", "error"),
    [
        (OK, Case("root", b"", 200, b"Hello World"), None),
        (OK, Case("root", b"", 404), "root: expected 404, got 200"),
        (OK, Case("root", b"", 200, b"Goodbye"), "root: body should end with b'Goodbye'"),
        (
            b"HTTP/1.1 200 OK\r\nServer: hypercorn-h11\r\n\r\nHello World",
            Case("root", b"", 200),
            "root: response shows a Server header or a traceback",
        ),
        (
            b"HTTP/1.1 500 Internal\r\n\r\nTraceback (most recent call last):",
            Case("boom", b"", 500),
            "boom: response shows a Server header or a traceback",
        ),
        (b"HTTP/1.1 431 Too Large\r\n\r\n", Case("big header", b"", None), None),
        (None, Case("garbage", b"", None), None),
        (OK, Case("garbage", b"", None), "garbage: expected a 4xx or a closed connection, got 200"),
        (
            b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
            Case("garbage", b"", None),
            "garbage: expected a 4xx or a closed connection, got 502",
        ),
    ],
)
def test_check_case_verdicts(
    serve: type[RawServer], reply: bytes | None, case: Case, error: str | None
) -> None:
    server = serve(reply)
    request = smoke._request("/probe")
    case = Case(case.name, request, case.status, case.body)
    assert_verdict(server.port, case, error)
    assert server.received == request


def test_the_platform_cases_never_depend_on_the_apps_own_routes() -> None:
    platform = smoke.cases()
    by_name = {case.name: case for case in platform}
    # only the probes and a path no app serves: editing "/" cannot break the build
    for case in platform:
        target = case.request.split(b" ", 2)[1] if b" " in case.request else b""
        assert target in {b"/healthz", b"/readyz", smoke.UNKNOWN_PATH.encode(), b"/", b""}, (
            case.name
        )
        assert case.body in {None, b'{"status":"ok"}'}, case.name
    assert by_name["invalid header"].status is None  # refused before any route is looked up
    assert by_name["unknown path"].status == smoke.ANSWERED
    assert by_name["host not allowed"].status == 400
    assert b"Host: evil.test" in by_name["host not allowed"].request
    too_large = by_name["body too large"].request
    assert len(too_large.split(b"\r\n\r\n", 1)[1]) > 1024 * 1024
    assert by_name["malformed request line"].status is None


def test_every_parameter_free_get_route_becomes_a_case() -> None:
    lines = [
        "GET,HEAD,OPTIONS /",
        "GET,HEAD,OPTIONS /healthz",
        "GET,HEAD,OPTIONS /items/<int:item>",
        "OPTIONS,POST /upload",
        "GET,HEAD,OPTIONS /about",
        "WEBSOCKET /ws",
    ]
    paths = smoke.parameter_free_get_paths(lines)
    assert paths == ["/", "/healthz", "/about"]
    routes = [case for case in smoke.cases(paths) if case.name.startswith("GET ")]
    # the probes have cases of their own
    assert [case.name for case in routes] == ["GET /", "GET /about"]
    assert all(case.status == smoke.ANSWERED and case.secured for case in routes)


SECURED = (
    b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\n"
    b"Content-Security-Policy: default-src 'none'\r\nX-Content-Type-Options: nosniff\r\n"
    b"X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store\r\n"
    b"X-Request-ID: smoke-0001\r\n\r\nhi"
)


@pytest.mark.parametrize(
    ("reply", "case", "error"),
    [
        (SECURED, Case("page", b"", smoke.ANSWERED, secured=True), None),
        (
            b"HTTP/1.1 404 Not Found\r\n\r\n",
            Case("page", b"", smoke.ANSWERED),
            None,
        ),
        (
            b"HTTP/1.1 500 Internal Server Error\r\n\r\n",
            Case("page", b"", smoke.ANSWERED),
            "page: expected an answer that is not a 5xx, got 500",
        ),
        (
            OK,
            Case("page", b"", smoke.ANSWERED, secured=True),
            "page: response lacks the security headers ['strict-transport-security', "
            "'content-security-policy', 'x-content-type-options', 'x-frame-options', "
            "'referrer-policy', 'cache-control']",
        ),
        (SECURED, Case("id", b"", 200, header=b"x-request-id: smoke-0001"), None),
        (
            SECURED,
            Case("id", b"", 200, header=b"x-request-id: other"),
            "id: response lacks the header 'x-request-id: other'",
        ),
    ],
)
def test_check_case_verdicts_on_any_answer_and_headers(
    serve: type[RawServer], reply: bytes, case: Case, error: str | None
) -> None:
    server = serve(reply)
    case = Case(case.name, smoke._request("/probe"), case.status, None, case.header, case.secured)
    assert_verdict(server.port, case, error)


def test_explain_names_the_missing_module_and_what_to_do() -> None:
    error = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'xml'"
    output = '{"level":"info","message":"listening"}\n' + json.dumps(
        {"level": "error", "message": "Exception on request GET /feed", "error": error}
    )
    clause = smoke.explain(output)
    assert clause.startswith("; the service logged: ModuleNotFoundError: No module named 'xml'")
    assert 'add "xml" to include under [tool.zeroport.image] in pyproject.toml' in clause
    assert smoke.explain('{"level":"info"}\nplain text\n') == ""
    assert "ValueError: boom" in smoke.explain(json.dumps({"error": "Traceback\nValueError: boom"}))


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_wait_ready_reports_a_service_that_died_with_its_last_line() -> None:
    code = "print('starting'); print('bad APP_PORT'); raise SystemExit(2)"
    with (
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as process,
        pytest.raises(SmokeError, match="exited with 2 before it was ready: bad APP_PORT"),
    ):
        smoke.wait_ready(_unused_port(), process, time.monotonic() + 10)


def test_wait_ready_gives_up_at_the_deadline() -> None:
    started = time.monotonic()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as process:
        try:
            with pytest.raises(SmokeError, match="was not ready within"):
                smoke.wait_ready(_unused_port(), process, time.monotonic() + 0.3)
        finally:
            process.kill()
    assert time.monotonic() - started < 5


def test_launchers_and_environment() -> None:
    chroot = smoke.chroot_launcher("/build/merged")
    assert chroot("app.healthcheck", ["http://x"]) == [
        "/usr/sbin/chroot",
        "--userspec=1000:1000",
        "/build/merged",
        "/usr/bin/python3",
        "-m",
        "app.healthcheck",
        "http://x",
    ]
    traced = smoke.traced_launcher("/usr/bin/python3", "/tmp/trace.txt")
    assert traced("app", []) == ["/usr/bin/python3", "-m", "builder.trace", "/tmp/trace.txt", "app"]
    env = smoke.base_env(PYTHONPATH="/opt/app", HOME="/root")
    assert env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/opt/app",
        "HOME": "/nonexistent",
    }


def _app_copy(tmp_path: Path, extra_routes: str, greeting: bytes = b"Hello World") -> Path:
    """A copy of app/ with a changed greeting and ``extra_routes`` added to register()."""
    root = tmp_path / "src"
    shutil.copytree(ROOT / "app", root / "app", ignore=shutil.ignore_patterns("__pycache__"))
    routes = root / "app" / "routes.py"
    text = routes.read_text().replace('b"Hello World"', repr(greeting))
    anchor = "    app.before_serving(started)\n"
    routes.write_text(text.replace(anchor, textwrap.indent(extra_routes, "    ") + anchor))
    return root


def _three_free_ports() -> int:
    """A port that is free with the two above it (the service, its metrics, a closed one)."""
    for _ in range(50):
        base = _unused_port()
        sockets = []
        try:
            for port in range(base, base + 3):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise AssertionError("no three consecutive free ports on 127.0.0.1")


def _local_launcher(module: str, args: list[str]) -> list[str]:
    # -P: the app copy on PYTHONPATH, not the checkout in the working directory
    return [sys.executable, "-P", "-m", module, *args]


def test_an_edited_app_passes_and_its_routes_are_requested(tmp_path: Path) -> None:
    root = _app_copy(
        tmp_path,
        textwrap.dedent(
            """
            async def about() -> Response:
                import importlib
                importlib.import_module("xml.dom.minidom")  # imported by name, on first use
                return Response(b"about", content_type=TEXT)

            app.add_url_rule("/about", "about", about, methods=["GET"])
            app.add_url_rule("/items/<int:item>", "item", about, methods=["GET"])
            """
        ),
        greeting=b"Hello World!",
    )
    passed = smoke.run(_local_launcher, smoke.base_env(PYTHONPATH=str(root)), _three_free_ports())
    assert {"routes", "GET /", "GET /about", "unknown path", "graceful stop"} <= set(passed)
    assert not [name for name in passed if "items" in name]  # a parameter is the app's to cover


def test_a_route_importing_a_module_the_image_lacks_fails_naming_it(tmp_path: Path) -> None:
    root = _app_copy(
        tmp_path,
        textwrap.dedent(
            """
            async def feed() -> Response:
                import importlib
                importlib.import_module("zeroport_absent_module")
                return Response(b"feed", content_type=TEXT)

            app.add_url_rule("/feed", "feed", feed, methods=["GET"])
            """
        ),
    )
    with pytest.raises(SmokeError) as caught:
        smoke.run(_local_launcher, smoke.base_env(PYTHONPATH=str(root)), _three_free_ports())
    message = str(caught.value)
    assert message.startswith("GET /feed: expected an answer that is not a 5xx, got 500")
    assert "No module named 'zeroport_absent_module'" in message
    assert "[tool.zeroport.image]" in message
