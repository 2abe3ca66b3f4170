"""``doit security``: one command, one report, each check with an id, a verdict and its evidence.

Sections, in the order they run:

1. image audit and 2. container audit (:mod:`scripts.security.container_audit`, CIS Docker 4-5);
3. network isolation of the tunnel topology (:mod:`scripts.security.isolation`);
4. headers graded against OWASP Secure Headers (:mod:`scripts.security.headers`);
5. the WAF and rate-limit rules of ``tunnel.yaml``, checked statically
   (:func:`tunnel.waf.check_rules`) and listed; when the deployed stack is in tunnel mode
   they are also proven at Cloudflare's edge (:mod:`scripts.security.waf_edge`); local mode
   has no edge and the report says so;
6. the attack simulation (:mod:`scripts.security.attacks`): hostile requests, slowloris, a
   burst, and a churn flood after which the service must hold no more descriptors,
   CLOSE-WAIT sockets or memory than before it (read inside the container,
   :mod:`scripts.security.probe`); then the service must still be healthy.

The target is the deployed stack when it is a local compose stack answering on loopback (the
one ``doit deploy`` starts); otherwise, or with ``fresh=1``, a throwaway local stack from the same
compose files under its own project name and port, removed afterwards. The report goes to
``build/security/report.json`` and ``report.md``; any failed check fails the step.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from docker import DockerClient

from scripts import deploy
from scripts.core import engine, paths, proc, records
from scripts.core.checks import Check, failed
from scripts.core.errors import DeployError, GateFailed, ReportError, ToolError
from scripts.core.options import Mode, StackOptions, read_vars, var, variables_of
from scripts.core.poll import poll_until
from scripts.core.records import read_json, read_record, write_json
from scripts.core.settings import Settings
from scripts.security import attacks, churn, waf_edge
from scripts.security.cases import cases
from scripts.security.container_audit import ExpectedPorts, audit_containers, audit_image
from scripts.security.headers import Grade, grade_check, grade_headers, rank
from scripts.security.isolation import PROJECT as ISOLATION_PROJECT
from scripts.security.isolation import isolation_checks
from tunnel.spec import TunnelSpec, load_spec
from tunnel.waf import check_rules

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
REPORT_JSON = paths.SECURITY_DIR / "report.json"
REPORT_MD = paths.SECURITY_DIR / "report.md"
TUNNEL_SPEC = paths.ROOT / "tunnel.yaml"
#: The throwaway local stack's project name, when the deployed one cannot be used.
FRESH_PROJECT = "zpsec"
UP_TIMEOUT = 120.0
HEALTH_TIMEOUT = 15.0
COMMAND = "doit security"


def _grade(name: str, value: str) -> str:
    rank(value)  # ParamError for an unknown letter
    return value


@dataclass(frozen=True, kw_only=True)
class SecurityOptions:
    """What ``doit security`` takes on its command line."""

    #: Test a throwaway local stack even when a deployed one could be used.
    fresh: bool = field(default=False, metadata=var())
    #: Loopback port of the throwaway stack (not ``port``, which is the deployed stack's).
    fresh_port: int = field(default=18300, metadata=var(1024, 65535))
    #: Lowest acceptable header grade.
    min_grade: str = field(default="A", metadata=var(parse=_grade))
    #: Slow connections the slowloris case holds open.
    slow_connections: int = field(default=500, metadata=var(1, 5000))
    #: Connections the burst case opens at once.
    burst_connections: int = field(default=1000, metadata=var(1, 5000))
    #: Clients the churn case sends (each connects, asks, reads and hangs up).
    churn_clients: int = field(default=5000, metadata=var(1, 100_000))
    #: Build the tunnel topology and prove its isolation (needs compose and the image).
    isolation: bool = field(default=True, metadata=var())
    #: Compose project names of the throwaway stack and of the isolation topology.
    project: str = FRESH_PROJECT
    isolation_project: str = ISOLATION_PROJECT

    @classmethod
    def from_vars(cls, variables: Mapping[str, str]) -> SecurityOptions:
        """Validate doit's command-line variables (``fresh=1 fresh_port=18300 min_grade=A``)."""
        return replace(cls(), **read_vars(cls, variables))


#: The doit variables ``doit security`` takes: dodo.py passes exactly these.
VARIABLES = variables_of(SecurityOptions)


@dataclass(frozen=True, kw_only=True)
class StackUnderTest:
    """The stack under test: its compose project, image and loopback URL."""

    project: str
    image: str
    url: str
    fresh: bool

    @property
    def host(self) -> str:
        """The address the URL names (127.0.0.1)."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The loopback port the app is published on."""
        return urlsplit(self.url).port or 80

    @property
    def host_header(self) -> str:
        """The Host header a normal client sends."""
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> list[str]:
        """The labels that pick out the stack's app containers."""
        return [f"com.docker.compose.project={self.project}", "com.docker.compose.service=app"]


@dataclass
class SecurityReport:
    """Every check of one ``doit security`` run, by section."""

    target: str
    image: str
    platform: str
    started: str
    sections: dict[str, list[Check]] = field(default_factory=dict)
    grades: dict[str, Grade] = field(default_factory=dict)
    waf_rules: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[Check]:
        """All checks, in section order."""
        return [check for checks in self.sections.values() for check in checks]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return not failed(self.checks)

    def to_json(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        checks = self.checks
        return {
            "command": COMMAND,
            "target": self.target,
            "image": self.image,
            "platform": self.platform,
            "started": self.started,
            "passed": self.passed,
            "counts": {"checks": len(checks), "failed": len(failed(checks))},
            "grades": {what: grade.to_json() for what, grade in self.grades.items()},
            "sections": {
                name: [check.to_json() for check in section]
                for name, section in self.sections.items()
            },
            "waf_rules": self.waf_rules,
            "edge_testing": EDGE_TESTING,
            "notes": self.notes,
        }

    def write(self, json_path: Path = REPORT_JSON, md_path: Path = REPORT_MD) -> None:
        """Write the JSON report and its markdown summary."""
        write_json(json_path, self.to_json())
        md_path.write_text(markdown(self))

    def raise_for_failures(self) -> None:
        """:class:`GateFailed` naming the failed checks, in one line."""
        bad = failed(self.checks)
        if bad:
            names = ", ".join(check.id for check in bad[:6])
            more = f" (+{len(bad) - 6} more)" if len(bad) > 6 else ""
            raise GateFailed(
                f"security: {len(bad)} of {len(self.checks)} checks failed: {names}{more}; "
                f"evidence in {REPORT_MD.relative_to(paths.ROOT)}"
            )


def read_report(path: Path = REPORT_JSON) -> dict[str, object]:
    """A report written by :meth:`SecurityReport.write`."""

    def parse(data: Any) -> dict[str, object]:
        if not isinstance(data, dict) or "sections" not in data:
            raise ValueError("no sections")
        return data

    return read_json(path, parse, what="a security report", command="doit security")


EDGE_TESTING = (
    "The WAF and rate-limit rules act at Cloudflare's edge. With the stack deployed in tunnel "
    "mode, doit security proves them there itself (WAF-EDGE-*). By hand: provision them (doit "
    "tunnel, or python -m tunnel provision tunnel.yaml), "
    "deploy in tunnel mode (doit deploy mode=tunnel), then from any client: request a path each "
    "block rule matches (curl -si https://HOSTNAME/.env must answer 403 from Cloudflare, with a "
    "cf-ray header and no origin log line); request a challenged path (answers 403 with "
    "cf-mitigated: challenge); send one more request than a rate limit allows within its period "
    "(the excess answers 429); and find each event under Security > Events in the dashboard."
)


# ---- the target ------------------------------------------------------------------------------


@contextmanager
def target_stack(
    settings: Settings, docker_engine: DockerClient, options: SecurityOptions, image: str
) -> Iterator[StackUnderTest]:
    """The deployed local stack, or a throwaway one of ``image`` (removed on exit)."""
    deployed = None if options.fresh else _deployed(docker_engine)
    if deployed is not None:
        yield deployed
        return
    stack_options = StackOptions(project=options.project, port=options.fresh_port)
    argv = deploy.compose_argv(settings, stack_options)
    env = deploy.compose_env(settings, stack_options, image)
    engine.require_port("127.0.0.1", options.fresh_port)
    logger.info(
        "starting a throwaway local stack %s on 127.0.0.1:%d", options.project, options.fresh_port
    )
    try:
        try:
            proc.run(
                [*argv, "up", "--detach", "--wait", "--wait-timeout", str(int(UP_TIMEOUT))],
                env=env,
                timeout=UP_TIMEOUT + 60,
            )
        except ToolError as exc:
            raise DeployError(f"the throwaway stack did not start: {exc}") from None
        yield StackUnderTest(
            project=options.project,
            image=image,
            url=f"http://127.0.0.1:{options.fresh_port}",
            fresh=True,
        )
    finally:
        proc.run([*argv, "down", "--remove-orphans"], env=env, timeout=120, check=False)


def tunnel_deployed() -> bool:
    """Whether the deployed stack is in tunnel mode: only then is there an edge to test."""
    try:
        return records.StackRecord.read().mode == Mode.TUNNEL.value
    except ReportError:
        return False


def _deployed(docker_engine: DockerClient) -> StackUnderTest | None:
    try:
        record = records.StackRecord.read()
    except ReportError:
        logger.info("nothing is deployed: testing a throwaway local stack")
        return None
    if (
        record.url is None
        or record.target != "compose"
        or not deploy.running(docker_engine, record)
    ):
        logger.info(
            "the deployed %s:%s stack is not a running local compose stack on loopback: "
            "testing a throwaway local stack",
            record.target,
            record.mode,
        )
        return None
    return StackUnderTest(project=record.project, image=record.image, url=record.url, fresh=False)


# ---- the sections ----------------------------------------------------------------------------


def header_section(
    report: SecurityReport, client: httpx.Client, target: StackUnderTest, minimum: str
) -> list[Check]:
    """Grade ``GET /`` and an error response (404): headers must be there on errors too."""
    checks = []
    for what in ("/", "/no-such-page"):
        response = client.get(target.url + what)
        grade = grade_headers(list(response.headers.multi_items()))
        label = f"GET {what} ({response.status_code})"
        report.grades[label] = grade
        checks.append(grade_check(label, grade, minimum))
    return checks


def waf_section(
    report: SecurityReport, spec: TunnelSpec, *, edge: httpx.Client | None = None
) -> list[Check]:
    """The spec's WAF and rate-limit rules, checked without Cloudflare and listed; with an
    ``edge`` client (tunnel mode), also proven at Cloudflare's edge."""
    report.waf_rules = [
        {
            "id": rule.id,
            "phase": rule.phase,
            "action": rule.action,
            "description": rule.description,
            "expression": rule.expression,
        }
        for rule in spec.rules
    ]
    checks = [
        Check(
            id=f"WAF-{finding.id.removeprefix('waf.')}",
            title=_waf_title(finding.id),
            ok=finding.ok,
            evidence=finding.message,
        )
        for finding in check_rules(spec.rules, ref_prefix=spec.ref_prefix)
    ]
    kinds = ["rate-limit" if rule.ratelimit is not None else "custom" for rule in spec.rules]
    first_limit = kinds.index("rate-limit") if "rate-limit" in kinds else len(kinds)
    checks.append(
        Check(
            id="WAF-RATE-LIMITS-LAST",
            title="rate-limit rules come after every custom rule",
            ok="custom" not in kinds[first_limit:],
            evidence=" > ".join(kinds) or "no rules",
        )
    )
    if edge is None:
        report.notes.append(waf_edge.NO_EDGE)
    else:
        logger.info("security: proving the WAF rules at the edge, https://%s/", spec.hostname)
        checks += waf_edge.edge_checks(edge, spec)
    return checks


#: What each of tunnel.waf's static checks asks, by the last part of its id.
_WAF_TITLES = {
    "id": "unique, well-formed id",
    "description": "has a description",
    "expression": "non-empty expression",
    "action": "action valid in its phase",
    "action_parameters": "skip says what it skips",
}


def _waf_title(finding_id: str) -> str:
    rule, _, check = finding_id.removeprefix("waf.").partition(".")[2].partition(".")
    if check.startswith("ratelimit."):
        return f"{rule}: valid rate-limit {check.removeprefix('ratelimit.')}"
    return f"{rule}: {_WAF_TITLES.get(check, check)}"


def attack_section(
    docker_engine: DockerClient,
    client: httpx.Client,
    target: StackUnderTest,
    options: SecurityOptions,
) -> list[Check]:
    """The hostile requests, slowloris and a burst; then the service must be healthy."""
    restarts = _restarts(docker_engine, target)
    case_list = cases(target.host_header)
    checks = list(attacks.run_cases(target.host, target.port, case_list))
    checks.append(
        attacks.slowloris(
            target.host, target.port, target.host_header, connections=options.slow_connections
        )
    )
    checks.append(
        attacks.burst(
            target.host, target.port, target.host_header, connections=options.burst_connections
        )
    )
    containers = docker_engine.containers.list(filters={"label": target.label})
    checks += churn.checks(
        containers, target.host, target.port, target.host_header, options.churn_clients
    )
    checks.append(healthy_after(docker_engine, client, target, restarts))
    return checks


def _restarts(docker_engine: DockerClient, target: StackUnderTest) -> dict[str, int]:
    return {
        str(container.name): int(container.attrs.get("RestartCount", 0))
        for container in docker_engine.containers.list(all=True, filters={"label": target.label})
    }


def healthy_after(
    docker_engine: DockerClient,
    client: httpx.Client,
    target: StackUnderTest,
    before: dict[str, int],
) -> Check:
    """After the attacks: /healthz answers 200, every app container is healthy, none restarted."""
    problems = ["not checked"]

    def healthy() -> bool:
        problems[:] = _health_problems(docker_engine, client, target, before)
        return not problems

    poll_until(healthy, timeout=HEALTH_TIMEOUT, interval=1.0)
    return Check(
        id="ATK-HEALTHY-AFTER",
        title="the service is healthy after the attacks (no restart, no OOM kill)",
        ok=not problems,
        evidence="; ".join(problems)
        if problems
        else f"/healthz 200; {len(before)} app container(s) healthy, restart counts unchanged",
    )


def _health_problems(
    docker_engine: DockerClient,
    client: httpx.Client,
    target: StackUnderTest,
    before: dict[str, int],
) -> list[str]:
    problems = []
    try:
        status = client.get(target.url + "/healthz").status_code
    except httpx.HTTPError as exc:
        status = 0
        problems.append(f"/healthz: {type(exc).__name__}")
    if status != 200:
        problems.append(f"/healthz answered {status}")
    for container in docker_engine.containers.list(all=True, filters={"label": target.label}):
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status", "none")
        name = str(container.name)
        if health != "healthy":
            problems.append(f"{name} is {health}")
        if int(container.attrs.get("RestartCount", 0)) != before.get(name, 0):
            problems.append(f"{name} restarted")
        if state.get("OOMKilled"):
            problems.append(f"{name} was OOM-killed")
    return problems


def run(
    settings: Settings,
    docker_engine: DockerClient,
    target: StackUnderTest,
    options: SecurityOptions,
    *,
    edge: bool = False,
) -> SecurityReport:
    """Every section against ``target`` (and the WAF at the edge if ``edge``); the report."""
    report = SecurityReport(
        target=f"{target.project} at {target.url}" + (" (throwaway)" if target.fresh else ""),
        image=target.image,
        platform=f"{platform.system()} {platform.machine()}",
        started=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    local = ExpectedPorts(published={"8080/tcp": frozenset({"127.0.0.1"})})
    logger.info("security: auditing image %s", target.image)
    report.sections["image"] = audit_image(docker_engine, target.image, local)
    report.sections["containers"] = audit_containers(docker_engine, target.label, local)
    if options.isolation:
        logger.info("security: building the tunnel topology to prove its isolation")
        report.sections["isolation"] = isolation_checks(
            settings, docker_engine, target.image, options.isolation_project
        )
    else:
        report.notes.append("network isolation not checked (isolation=0)")
    if settings.system != "Linux":
        report.notes.append(
            f"host listeners (ss -ltn) are checked on Linux only, not {settings.system}"
        )
    with httpx.Client(timeout=5.0, trust_env=False, follow_redirects=False) as client:
        logger.info("security: grading headers of %s", target.url)
        report.sections["headers"] = header_section(report, client, target, options.min_grade)
        spec = load_spec(TUNNEL_SPEC)
        if edge:
            # The public internet, as any visitor meets it (the environment's proxy included).
            with httpx.Client(follow_redirects=False) as edge_client:
                report.sections["waf"] = waf_section(report, spec, edge=edge_client)
        else:
            report.sections["waf"] = waf_section(report, spec)
        logger.info("security: attack simulation against %s", target.url)
        report.sections["attacks"] = attack_section(docker_engine, client, target, options)
    return report


def markdown(report: SecurityReport) -> str:
    """The report as a page a reviewer reads in a minute."""
    checks = report.checks
    bad = failed(checks)
    lines = [
        "# Security report",
        "",
        f"`{COMMAND}` against {report.target}, image `{report.image}`, on {report.platform}, "
        f"{report.started}.",
        "",
        f"**{'PASS' if not bad else 'FAIL'}**: {len(checks) - len(bad)} of {len(checks)} checks "
        "passed." + (f" Failed: {', '.join(c.id for c in bad)}." if bad else ""),
        "",
    ]
    if report.grades:
        grades = ", ".join(
            f"{what}: **{g.letter}** ({g.score}/100)" for what, g in report.grades.items()
        )
        lines += [f"Header grade (OWASP Secure Headers via drHEADer): {grades}.", ""]
    for name, section in report.sections.items():
        lines += [f"## {name}", "", "| check | result | evidence |", "| --- | --- | --- |"]
        lines += [
            f"| `{check.id}` {_cell(check.title)} | {'pass' if check.ok else '**FAIL**'} | "
            f"{_cell(check.evidence)} |"
            for check in section
        ]
        lines.append("")
    if report.waf_rules:
        lines += ["## WAF rules (tunnel.yaml)", "", "| id | phase | action | description |"]
        lines.append("| --- | --- | --- | --- |")
        lines += [
            f"| {r['id']} | {r['phase']} | {r['action']} | {_cell(r['description'])} |"
            for r in report.waf_rules
        ]
        lines += ["", f"Edge testing (manual): {EDGE_TESTING}", ""]
    if report.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def step(variables: dict[str, str]) -> None:
    """doit security: audit, isolation, headers, WAF, attacks; write the report; gate on it."""
    options = SecurityOptions.from_vars(variables)
    settings = Settings.from_env()
    docker_engine = engine.client(settings)
    with target_stack(settings, docker_engine, options, read_record().tag) as target:
        report = run(settings, docker_engine, target, options, edge=tunnel_deployed())
    report.write()
    logger.info(
        "security: %d checks, %d failed; report in %s",
        len(report.checks),
        len(failed(report.checks)),
        REPORT_MD,
    )
    report.raise_for_failures()
