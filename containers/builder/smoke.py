"""The image's smoke test: start the service, drive what every app must answer, stop it.

It runs twice during a build. First with the builder's full interpreter under
``builder.trace``, to record what the service imports at run time; then against the assembled
runtime (``chroot`` into it as uid 1000), where any ``ImportError``, unexpected status, or
traceback fails the build. It speaks raw HTTP/1.1 over a socket so that it can send what a
client library refuses to (malformed request lines, invalid headers, huge header blocks).

It checks what every app built on this service must do, never this app's content:

* the health endpoints answer, and the platform's guards answer what they must (404 or the
  app's own page for an unknown path, 405, 413, 431, 400 for a foreign Host or garbage);
* every parameter-free GET route the app registers (``python -m app --routes``) answers
  without a 5xx and with the security headers, so that a module such a route imports on
  first use is traced into the image, or, if the image cannot have it, fails the build with
  the module's name. Routes with parameters or bodies are the app's to cover, through
  ``include`` under ``[tool.zeroport.image]`` in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
ALLOWED_HOST = "smoke.test"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 5.0
#: Words that must never appear in the service's output or responses during a smoke run.
FORBIDDEN = ("ModuleNotFoundError", "ImportError", "No module named")
#: The container's probes: they answer 200 whatever the app's routes are.
HEALTH_PATHS = ("/healthz", "/readyz")
#: A path no app is expected to serve: the guards' cases use it (a catch-all route may answer).
UNKNOWN_PATH = "/zeroport-smoke/unknown"
#: Headers every response of the service carries (app/headers.py adds them to each answer).
SECURITY_HEADERS = (
    b"strict-transport-security",
    b"content-security-policy",
    b"x-content-type-options",
    b"x-frame-options",
    b"referrer-policy",
    b"cache-control",
)
#: Any answer but a server error: what an app's own route must give.
ANSWERED = range(100, 500)
_MISSING_MODULE = re.compile(r"No module named '([^']+)'")

#: A launcher turns (module, args) into the argv that runs ``python -m module args``.
Launcher = Callable[[str, list[str]], list[str]]


class SmokeError(RuntimeError):
    """The service did not behave as the smoke test expects."""


@dataclass(frozen=True)
class Case:
    """One request and what it must get.

    ``status``: that status, any status in a range, or ``None`` for a 4xx or a closed
    connection. ``body``: what the response must end with. ``header``: a header line
    (lower-case) it must carry. ``secured``: it must carry every one of SECURITY_HEADERS.
    """

    name: str
    request: bytes
    status: int | range | None
    body: bytes | None = None
    header: bytes | None = None
    secured: bool = False


def _request(path: str, method: str = "GET", extra: str = "", body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {ALLOWED_HOST}\r\nConnection: close\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def cases(get_paths: Iterable[str] = ()) -> list[Case]:
    """The platform's cases, then one per parameter-free GET route in ``get_paths``."""
    big_header = "X-Big: " + "a" * 70_000 + "\r\n"
    platform = [
        Case("liveness", _request("/healthz"), 200, b'{"status":"ok"}', secured=True),
        Case("readiness", _request("/readyz"), 200, secured=True),
        Case("head", _request("/healthz", "HEAD"), 200),
        Case(
            "request id",
            _request("/healthz", extra="X-Request-ID: smoke-0001\r\n"),
            200,
            header=b"x-request-id: smoke-0001",
        ),
        Case("proxy headers", _request("/healthz", extra="X-Forwarded-For: 203.0.113.9\r\n"), 200),
        Case("unknown path", _request(UNKNOWN_PATH), ANSWERED, secured=True),
        Case("wrong method", _request("/healthz", "POST", body=b"x"), 405, secured=True),
        Case("trace", _request("/healthz", "TRACE"), 405),
        Case(
            "body too large",
            _request("/healthz", "POST", body=b"x" * (1024 * 1024 + 1)),
            413,
            secured=True,
        ),
        Case("header block too large", _request("/healthz", extra=big_header), None),
        Case(
            "host not allowed",
            f"GET {UNKNOWN_PATH} HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n".encode(),
            400,
            secured=True,
        ),
        Case("malformed request line", b"GARBAGE\r\n\r\n", None),
        Case("invalid header", b"GET / HTTP/1.1\r\nHost: smoke.test\r\nBad Header\r\n\r\n", None),
    ]
    routes = [
        Case(f"GET {path}", _request(path), ANSWERED, secured=True)
        for path in get_paths
        if path not in HEALTH_PATHS
    ]
    return platform + routes


def parameter_free_get_paths(route_lines: Iterable[str]) -> list[str]:
    """The paths of the GET routes without parameters, from ``python -m app --routes``."""
    paths = []
    for line in route_lines:
        methods, _, rule = line.strip().partition(" ")
        if "GET" in methods.split(",") and rule.startswith("/") and "<" not in rule:
            paths.append(rule)
    return paths


def app_routes(launch: Launcher, env: Mapping[str, str]) -> list[str]:
    """The app's parameter-free GET paths, as ``python -m app --routes`` lists them."""
    result = subprocess.run(  # noqa: S603 - argv from the launcher, no shell
        launch("app", ["--routes"]),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=STOP_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise SmokeError(
            f"python -m app --routes: expected exit 0, got {result.returncode}"
            f"{explain(result.stdout + result.stderr)}"
        )
    _check_output("python -m app --routes", result.stdout + result.stderr)
    return parameter_free_get_paths(result.stdout.splitlines())


def exchange(port: int, request: bytes) -> tuple[int | None, bytes]:
    """Send ``request``; the status and raw response, or ``(None, b"")`` when closed early."""
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
        # The server may answer (413, 431) and close before the whole request is sent; what
        # it answered is still there to read.
        with contextlib.suppress(OSError):
            sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    response = b"".join(chunks)
    if not response.startswith(b"HTTP/"):
        return None, response
    return int(response.split(b" ", 2)[1]), response


def check_case(port: int, case: Case) -> None:
    """Send one case and compare the answer with what it must be."""
    status, response = exchange(port, case.request)
    if case.status is None:
        if status is not None and not 400 <= status < 500:
            raise SmokeError(f"{case.name}: expected a 4xx or a closed connection, got {status}")
    elif isinstance(case.status, range):
        if status not in case.status:
            raise SmokeError(f"{case.name}: expected an answer that is not a 5xx, got {status}")
    elif status != case.status:
        raise SmokeError(f"{case.name}: expected {case.status}, got {status}")
    if case.body is not None and not response.endswith(case.body):
        raise SmokeError(f"{case.name}: body should end with {case.body!r}")
    head = response.split(b"\r\n\r\n", 1)[0].lower()
    lowered = response.lower()
    if b"\r\nserver:" in head or b"traceback" in lowered:
        raise SmokeError(f"{case.name}: response shows a Server header or a traceback")
    if case.header is not None and b"\r\n" + case.header + b"\r\n" not in head + b"\r\n":
        raise SmokeError(f"{case.name}: response lacks the header {case.header.decode()!r}")
    if case.secured:
        missing = [name.decode() for name in SECURITY_HEADERS if b"\r\n" + name + b":" not in head]
        if missing:
            raise SmokeError(f"{case.name}: response lacks the security headers {missing}")


def wait_ready(
    port: int,
    process: subprocess.Popen[bytes],
    deadline: float,
    log: IO[bytes] | None = None,
) -> None:
    """Wait until ``/healthz`` answers 200, the process dies, or ``deadline`` passes.

    ``log`` is the file the process writes its output to (default: its stdout pipe).
    """
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = _read(log) if log is not None else _read(process.stdout)
            last = output.strip().splitlines()[-1:] or ["(no output)"]
            raise SmokeError(
                f"the service exited with {process.returncode} before it was ready: {last[0]}"
            )
        try:
            status, _ = exchange(port, _request("/healthz"))
        except OSError:
            status = None
        if status == 200:
            return
        time.sleep(0.1)
    raise SmokeError(f"the service was not ready within {START_TIMEOUT:g} s")


def run(
    launch: Launcher, env: Mapping[str, str], port: int = 18080, *, access: bool = False
) -> list[str]:
    """Drive the service through every case; the list of checks that passed.

    ``access``: the image carries the ``access`` extra, so the Cloudflare Access check is run
    too (a service started with it on: 403 without or with a bad token, health still open).
    """
    passed: list[str] = []
    service_env = {
        **env,
        "APP_HOST": HOST,
        "APP_PORT": str(port),
        "APP_ALLOWED_HOSTS": ALLOWED_HOST,
        "APP_METRICS_PORT": str(port + 1),
        "APP_METRICS_HOST": HOST,
        "APP_PROXY_HOPS": "1",
    }
    get_paths = app_routes(launch, env)
    passed.append("routes")

    def main_cases() -> None:
        for case in cases(get_paths):
            check_case(port, case)
            passed.append(case.name)
        status, _ = exchange(port + 1, _request("/metrics"))
        if status != 200:
            raise SmokeError(f"metrics: expected 200 on port {port + 1}, got {status}")
        passed.append("metrics")
        _expect_exit(launch, "app.healthcheck", [f"http://{HOST}:{port}/healthz"], env, 0)
        _expect_exit(launch, "app.healthcheck", [f"http://{HOST}:{port + 2}/healthz"], env, 1)
        passed.append("healthcheck")

    _serve(launch, service_env, port, main_cases)
    passed.append("graceful stop")
    if access:
        access_env = {
            **service_env,
            "APP_ACCESS_TEAM": "https://smoke.cloudflareaccess.com",
            "APP_ACCESS_AUD": "ab" * 32,
        }

        def refused_without_token() -> None:
            for case in access_cases():
                check_case(port, case)

        _serve(launch, access_env, port, refused_without_token)
        passed.append("access")
    _expect_exit(launch, "app", [], {**env, "APP_PORT": "not-a-port"}, 2)
    passed.append("bad config")
    return passed


def access_cases() -> list[Case]:
    """With Cloudflare Access required: no token and a malformed one are refused."""
    return [
        Case("access: health stays open", _request("/healthz"), 200),
        Case("access: no token", _request(UNKNOWN_PATH), 403),
        Case(
            "access: malformed token",
            _request(UNKNOWN_PATH, extra="Cf-Access-Jwt-Assertion: not.a.token\r\n"),
            403,
        ),
    ]


def _serve(
    launch: Launcher, service_env: Mapping[str, str], port: int, body: Callable[[], object]
) -> None:
    """Start the service, run ``body`` against it, stop it with SIGTERM (exit 0 expected).

    A failure names what the service logged about it (a missing module, say). The output goes
    to a file, not a pipe, so that a chatty service never blocks on a full pipe.
    """
    failure: SmokeError | None = None
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603 - argv from the launcher, no shell
            launch("app", []), env=dict(service_env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_ready(port, process, time.monotonic() + START_TIMEOUT, log)
            try:
                body()
            except SmokeError as error:
                failure = error
            else:
                process.send_signal(signal.SIGTERM)
                code = process.wait(timeout=STOP_TIMEOUT)
                if code != 0:
                    failure = SmokeError(f"SIGTERM: expected exit 0, got {code}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
            output = _read(log)
    if failure is not None:
        raise SmokeError(f"{failure}{explain(output)}")
    _check_output("service", output)


def explain(output: str) -> str:
    """What the service's ``output`` says went wrong, as a clause to append to an error.

    The first error it logged (the last line of its traceback), or the first line naming a
    missing module; with a missing module, what to do about it.
    """
    reason = None
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and isinstance(entry.get("error"), str):
                reason = entry["error"].strip().splitlines()[-1]
                break
        if any(word in line for word in FORBIDDEN):
            reason = line.strip()[-300:]
            break
    if reason is None:
        return ""
    clause = f"; the service logged: {reason}"
    missing = _MISSING_MODULE.search(reason)
    if missing:
        clause += (
            f" (the image lacks the module {missing.group(1)}: if it is in the standard "
            f'library, add "{missing.group(1)}" to include under [tool.zeroport.image] in '
            "pyproject.toml; if not, add its distribution to [project] dependencies and run "
            "doit lock)"
        )
    return clause


def _expect_exit(
    launch: Launcher, module: str, args: list[str], env: Mapping[str, str], expected: int
) -> None:
    result = subprocess.run(  # noqa: S603 - argv from the launcher, no shell
        launch(module, args),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=STOP_TIMEOUT,
        check=False,
    )
    _check_output(module, result.stdout + result.stderr)
    if result.returncode != expected:
        raise SmokeError(
            f"python -m {module} {' '.join(args)}: expected exit {expected}, "
            f"got {result.returncode}: {result.stderr.strip()[-300:]}"
        )


def _check_output(what: str, output: str) -> None:
    if any(word in output for word in FORBIDDEN):
        raise SmokeError(f"{what}: an import failed{explain(output)}")


def _read(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    if stream.seekable():
        stream.seek(0)
    return stream.read().decode(errors="replace")


def chroot_launcher(root: str, python: str = "/usr/bin/python3") -> Launcher:
    """Run modules inside the assembled runtime at ``root`` as uid/gid 1000."""

    def launch(module: str, args: list[str]) -> list[str]:
        return ["/usr/sbin/chroot", "--userspec=1000:1000", root, python, "-m", module, *args]

    return launch


def traced_launcher(python: str, trace_file: str) -> Launcher:
    """Run modules with the builder's interpreter under ``builder.trace``."""

    def launch(module: str, args: list[str]) -> list[str]:
        return [python, "-m", "builder.trace", trace_file, module, *args]

    return launch


def base_env(**extra: str) -> dict[str, str]:
    """A small, fixed environment for the service under test."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **extra, "HOME": "/nonexistent"}
