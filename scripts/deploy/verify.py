"""Checking a deployed stack the way its users will meet it.

* local mode (compose): ``GET /`` on the loopback port answers ``Hello World`` with every
  security header and no ``Server`` header; ``/healthz`` and ``/readyz`` answer 200; the
  latency of a short series of requests is recorded.
* swarm: swarm cannot publish on loopback alone, so the same checks run from a probe container
  (the project's own image, its Python, ``http.client``) attached to the stack's network, and
  reach the service by name.
* tunnel mode: every cloudflared replica's ``/ready`` must say it holds at least one edge
  connection (``cloudflared tunnel ready`` exits 0 only then), then the public hostname is
  fetched over HTTPS: status, headers (HSTS included) and a ``cf-ray`` header proving the
  answer came through Cloudflare's edge.
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from docker import DockerClient

from scripts.core import engine, paths
from scripts.core.checks import Check
from scripts.core.errors import VerifyError
from scripts.core.options import Mode
from scripts.core.records import StackRecord
from scripts.core.settings import Settings
from tunnel.spec import load_spec

logger = logging.getLogger(__name__)

VERIFY_RECORD = paths.BUILD / "verify.json"
#: The declarative tunnel file: its hostname is the public URL tunnel mode is verified at.
TUNNEL_SPEC = paths.ROOT / "tunnel.yaml"
BODY = "Hello World"
TIMEOUT = 5.0
LATENCY_SAMPLES = 20

#: Each security header and a test of its value (lower-cased header names).
EXPECTED_HEADERS: Mapping[str, tuple[str, str]] = {
    "strict-transport-security": ("starts", "max-age=63072000; includesubdomains"),
    "content-security-policy": ("contains", "default-src 'none'"),
    "x-content-type-options": ("equals", "nosniff"),
    "x-frame-options": ("equals", "deny"),
    "referrer-policy": ("equals", "no-referrer"),
    "permissions-policy": ("contains", "camera=()"),
    "cross-origin-opener-policy": ("equals", "same-origin"),
    "cross-origin-resource-policy": ("equals", "same-origin"),
    "cache-control": ("contains", "no-store"),
}

#: Run by the probe container's own interpreter: fetch a URL, print status/headers/body as JSON.
PROBE = """
import http.client, json, sys, time, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
started = time.perf_counter()
conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5)
conn.request("GET", url.path or "/")
response = conn.getresponse()
body = response.read().decode("utf-8", "replace")
print(json.dumps({"status": response.status, "headers": [[k.lower(), v] for k, v in
    response.getheaders()], "body": body, "ms": (time.perf_counter() - started) * 1000}))
"""


def verified(name: str, ok: bool, detail: str) -> Check:
    """A verify check: ``name`` is its title, and gives its id (``VFY-GET-STATUS``)."""
    slug = re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")
    return Check(id=f"VFY-{slug}", title=name, ok=ok, evidence=detail)


@dataclass(frozen=True)
class Answer:
    """One HTTP response, as the checks need it."""

    status: int
    headers: list[tuple[str, str]]
    body: str
    ms: float

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass
class VerifyReport:
    """Every check of one verify run."""

    target: str
    checks: list[Check] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.ok for check in self.checks)

    def write(self, path: Path = VERIFY_RECORD) -> None:
        """Write the report as JSON (the doit target of ``verify``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"target": self.target, "passed": self.passed, "latency_ms": self.latency_ms}
        data["checks"] = [asdict(check) for check in self.checks]
        path.write_text(json.dumps(data, indent=2) + "\n")

    def raise_for_failures(self) -> None:
        """:class:`VerifyError` naming the first failed check (and how many more)."""
        failed = [check for check in self.checks if not check.ok]
        if failed:
            more = f" (+{len(failed) - 1} more, see {VERIFY_RECORD})" if len(failed) > 1 else ""
            raise VerifyError(
                f"verify {self.target}: {failed[0].title}: {failed[0].evidence}{more}"
            )


def check_root(answer: Answer, *, edge_server: str | None = None) -> list[Check]:
    """What ``GET /`` must look like: status, body, every security header, no Server.

    Through the tunnel Cloudflare's edge adds ``server: cloudflare``; ``edge_server`` names
    that one allowed value. The origin itself never sends a Server header.
    """
    server = answer.header("server")
    checks = [
        verified("GET / status", answer.status == 200, f"{answer.status}"),
        verified("GET / body", answer.body == BODY, repr(answer.body[:40])),
        verified(
            "no Server header from the origin", server in {None, edge_server}, server or "absent"
        ),
    ]
    for name, (how, expected) in EXPECTED_HEADERS.items():
        value = answer.header(name)
        checks.append(
            verified(f"header {name}", _matches(value, how, expected), value or "missing")
        )
    return checks


def _matches(value: str | None, how: str, expected: str) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if how == "equals":
        return lowered == expected
    if how == "starts":
        return lowered.startswith(expected)
    return expected in lowered


def check_status(path: str, answer: Answer, expected: int = 200) -> Check:
    """A path answers ``expected``."""
    return verified(f"GET {path} status", answer.status == expected, f"{answer.status}")


def fetch(client: httpx.Client, url: str) -> Answer:
    """GET ``url`` with ``client``; :class:`VerifyError` if nothing answers."""
    started = time.perf_counter()
    try:
        response = client.get(url, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise VerifyError(f"{url} did not answer ({exc}); is the stack up? doit up") from None
    return Answer(
        status=response.status_code,
        headers=[(k.lower(), v) for k, v in response.headers.multi_items()],
        body=response.text,
        ms=(time.perf_counter() - started) * 1000,
    )


def verify_http(base_url: str, client: httpx.Client, target: str) -> VerifyReport:
    """Verify a service reachable from here at ``base_url`` (local mode, or the public URL)."""
    report = VerifyReport(target=target)
    report.checks += check_root(fetch(client, base_url + "/"))
    for path in ("/healthz", "/readyz"):
        report.checks.append(check_status(path, fetch(client, base_url + path)))
    report.latency_ms = latency([fetch(client, base_url + "/").ms for _ in range(LATENCY_SAMPLES)])
    return report


def latency(samples: list[float]) -> dict[str, float]:
    """p50, p95 and max of a series of request times, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "max": round(ordered[-1], 2),
    }


def probe(docker_engine: DockerClient, record: StackRecord, path: str) -> Answer:
    """Fetch ``http://app:8080{path}`` from a probe container on the stack's network."""
    output = docker_engine.containers.run(
        record.image,
        entrypoint=["/usr/bin/python3", "-c", PROBE, f"http://app:8080{path}"],
        network=record.network,
        remove=True,
        read_only=True,
        cap_drop=["ALL"],
        user="1000:1000",
        stdout=True,
        stderr=True,
    )
    try:
        data = json.loads(output)
    except ValueError:
        raise VerifyError(
            f"the probe on {record.network} got no answer from app: {output[-200:]!r}"
        ) from None
    return Answer(
        status=int(data["status"]),
        headers=[(k, v) for k, v in data["headers"]],
        body=str(data["body"]),
        ms=float(data["ms"]),
    )


def verify_in_network(docker_engine: DockerClient, record: StackRecord) -> VerifyReport:
    """Verify a stack that publishes no port, from inside its network."""
    report = VerifyReport(target=f"{record.target}:{record.mode} (probe on {record.network})")
    report.checks += check_root(probe(docker_engine, record, "/"))
    for path in ("/healthz", "/readyz"):
        report.checks.append(check_status(path, probe(docker_engine, record, path)))
    return report


def connector_checks(docker_engine: DockerClient, project: str) -> list[Check]:
    """Each cloudflared replica holds at least one edge connection (its /ready is 200)."""
    containers = docker_engine.containers.list(
        filters={
            "label": [
                f"com.docker.compose.project={project}",
                "com.docker.compose.service=cloudflared",
            ]
        }
    )
    if not containers:
        return [verified("cloudflared replicas", False, "no cloudflared container runs")]
    checks = []
    for container in containers:
        code, output = container.exec_run(
            ["cloudflared", "tunnel", "--metrics", "127.0.0.1:20241", "ready"]
        )
        text = output.decode(errors="replace") if isinstance(output, bytes) else ""
        detail = "ready" if code == 0 else text.strip()[:200]
        checks.append(verified(f"{container.name} /ready", code == 0, detail))
    return checks


def verify_tunnel(
    docker_engine: DockerClient, record: StackRecord, public_url: str, client: httpx.Client
) -> VerifyReport:
    """Tunnel mode: connectors ready, then the public URL through the edge."""
    report = VerifyReport(target=f"tunnel {public_url}")
    report.checks += connector_checks(docker_engine, record.project)
    if not report.passed:
        return report
    answer = fetch(client, public_url + "/")
    report.checks += check_root(answer, edge_server="cloudflare")
    cf_ray = answer.header("cf-ray")
    report.checks.append(
        verified("cf-ray header (answered by the edge)", cf_ray is not None, cf_ray or "missing")
    )
    return report


def step() -> None:
    """doit verify: check the recorded stack; write build/verify.json; fail on any miss."""
    settings = Settings.from_env()
    record = StackRecord.read()
    if record.mode == Mode.TUNNEL.value:
        hostname = load_spec(TUNNEL_SPEC).hostname
        with httpx.Client(follow_redirects=False) as client:
            report = verify_tunnel(engine.client(settings), record, f"https://{hostname}", client)
    elif record.url:
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            report = verify_http(record.url, client, f"{record.target}:{record.mode} {record.url}")
    else:
        report = verify_in_network(engine.client(settings), record)
    report.write()
    report.raise_for_failures()
    summary = ", ".join(f"{k} {v} ms" for k, v in report.latency_ms.items())
    logger.info(
        "verified %s: %d checks passed%s",
        report.target,
        len(report.checks),
        f" (latency {summary})" if summary else "",
    )
