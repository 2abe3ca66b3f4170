"""The image's smoke test: start the service, drive every route and error path, stop it.

It runs twice during a build. First with the builder's full interpreter under
``builder.trace``, to record what the service imports at run time; then against the assembled
runtime (``chroot`` into it as uid 1000), where any ``ImportError``, unexpected status, or
traceback fails the build. It speaks raw HTTP/1.1 over a socket so that it can send what a
client library refuses to (malformed request lines, invalid headers, huge header blocks).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
ALLOWED_HOST = "smoke.test"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 5.0
#: Words that must never appear in the service's output or responses during a smoke run.
FORBIDDEN = ("ModuleNotFoundError", "ImportError", "No module named")

#: A launcher turns (module, args) into the argv that runs ``python -m module args``.
Launcher = Callable[[str, list[str]], list[str]]


class SmokeError(RuntimeError):
    """The service did not behave as the smoke test expects."""


@dataclass(frozen=True)
class Case:
    """One request and the status it must get (``None``: the server may close instead)."""

    name: str
    request: bytes
    status: int | None
    body: bytes | None = None


def _request(path: str, method: str = "GET", extra: str = "", body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {ALLOWED_HOST}\r\nConnection: close\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def cases() -> list[Case]:
    """Every route and error path the service has, with the status each must answer."""
    big_header = "X-Big: " + "a" * 70_000 + "\r\n"
    return [
        Case("root", _request("/"), 200, b"Hello World"),
        Case("head", _request("/", "HEAD"), 200),
        Case("liveness", _request("/healthz"), 200, b'{"status":"ok"}'),
        Case("readiness", _request("/readyz"), 200),
        Case("request id", _request("/", extra="X-Request-ID: smoke-0001\r\n"), 200),
        Case("proxy headers", _request("/", extra="X-Forwarded-For: 203.0.113.9\r\n"), 200),
        Case("not found", _request("/nope"), 404),
        Case("wrong method", _request("/", "POST", body=b"x"), 405),
        Case("trace", _request("/", "TRACE"), 405),
        Case("body too large", _request("/", "POST", body=b"x" * (1024 * 1024 + 1)), 413),
        Case("header block too large", _request("/", extra=big_header), None),
        Case(
            "host not allowed",
            b"GET / HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n",
            400,
        ),
        Case("malformed request line", b"GARBAGE\r\n\r\n", None),
        Case("invalid header", b"GET / HTTP/1.1\r\nHost: smoke.test\r\nBad Header\r\n\r\n", None),
    ]


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
    elif status != case.status:
        raise SmokeError(f"{case.name}: expected {case.status}, got {status}")
    if case.body is not None and not response.endswith(case.body):
        raise SmokeError(f"{case.name}: body should end with {case.body!r}")
    lowered = response.lower()
    if b"\r\nserver:" in lowered or b"traceback" in lowered:
        raise SmokeError(f"{case.name}: response shows a Server header or a traceback")


def wait_ready(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until ``/healthz`` answers 200, the process dies, or ``deadline`` passes."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
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
        "APP_PROXY_HOPS": "1",
    }

    def main_cases() -> None:
        for case in cases():
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
        Case("access: no token", _request("/"), 403),
        Case(
            "access: malformed token",
            _request("/", extra="Cf-Access-Jwt-Assertion: not.a.token\r\n"),
            403,
        ),
    ]


def _serve(
    launch: Launcher, service_env: Mapping[str, str], port: int, body: Callable[[], object]
) -> None:
    """Start the service, run ``body`` against it, stop it with SIGTERM (exit 0 expected)."""
    process = subprocess.Popen(  # noqa: S603 - argv from the launcher, no shell
        launch("app", []), env=dict(service_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(port, process, time.monotonic() + START_TIMEOUT)
        body()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=STOP_TIMEOUT)
        if code != 0:
            raise SmokeError(f"SIGTERM: expected exit 0, got {code}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    _check_output("service", output)


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
    for word in FORBIDDEN:
        if word in output:
            line = next(line for line in output.splitlines() if word in line)
            raise SmokeError(f"{what}: {line.strip()}")


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
