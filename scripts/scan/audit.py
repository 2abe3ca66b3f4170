"""The security audit: every auditor where it applies, one report, one gate.

``python -m scripts.scan.audit`` (what ``nox -s audit`` runs) scans with trivy (the image's
vulnerabilities and secrets, the Dockerfile's configuration, secrets in the checkout),
hadolint (the Dockerfile), bandit (app/, scripts/, tunnel/), compose-lint
(containers/compose*.yaml) and pip-audit (the exported lock), applies the accepted risks of
``.trivyignore.yaml``, writes ``build/scan/audit.json`` and fails when any of these holds:

- a finding at or above the gate severity (default HIGH) that no valid ignore entry accepts;
- an ignore entry whose ``expired_at`` has come;
- a tool that is not installed, unless allowed (``--allow-missing trivy``);
- a tool that ran but could not audit, unless allowed (``--allow-unaudited pip-audit``); the
  image's vulnerability scan without trivy's database is allowed by its own name,
  ``--allow-unaudited trivy-db``, so that allowing it never excuses trivy's other scans.

An allowed tool is reported as skipped, with the reason, never as passed.
"""

from __future__ import annotations

import argparse
import enum
import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeAlias

from rich.console import Console
from rich.table import Table

from scripts.core import paths
from scripts.core.checks import Check, listing
from scripts.core.errors import (
    AuditError,
    DatabaseUnavailable,
    GateFailed,
    ParamError,
    ReportError,
    ToolFailed,
    ToolMissing,
    ToolTimeout,
    WorkflowError,
)
from scripts.core.records import read_record, write_json
from scripts.core.settings import Settings
from scripts.scan import auditors, trivy
from scripts.scan.findings import Finding, Ignored, IgnoreEntry, IgnorePolicy, Severity, blocking

logger = logging.getLogger(__name__)

#: The accepted risks (trivy's .trivyignore.yaml format; every entry needs statement and expiry).
IGNORE_FILE = paths.ROOT / ".trivyignore.yaml"
#: The combined report.
REPORT = paths.SCAN_DIR / "audit.json"
#: The external programs the audit runs: the names --allow-missing and --allow-unaudited take.
TOOLS = ("trivy", "hadolint", "bandit", "compose-lint", "pip-audit")
#: What --allow-unaudited also takes: the image scan's missing vulnerability database.
TRIVY_DB = "trivy-db"
UNAUDITED = (*TOOLS, TRIVY_DB)


class Status(enum.StrEnum):
    """How one auditor's run ended."""

    RAN = "ran"
    #: Nothing to audit, or the tool was allowed to be missing or unable to audit.
    SKIPPED = "skipped"
    MISSING = "missing"
    FAILED = "failed-to-run"


@dataclass(frozen=True, kw_only=True)
class Targets:
    """What the audit looks at, by default this checkout's files (see :mod:`scripts.core.paths`)."""

    root: Path = paths.ROOT
    dockerfile: Path = paths.DOCKERFILE
    containers: Path = paths.CONTAINERS
    requirements: Path = paths.REQUIREMENTS
    code: tuple[Path, ...] = (paths.APP, paths.SCRIPTS, paths.TUNNEL)
    #: bandit's settings live in pyproject's ``[tool.bandit]``.
    pyproject: Path = paths.PYPROJECT

    @classmethod
    def under(cls, root: Path) -> Targets:
        """The same layout in another checkout (tests audit a temporary one)."""

        def moved(path: Path) -> Path:
            return root / path.relative_to(paths.ROOT)

        default = cls()
        return cls(
            root=root,
            dockerfile=moved(default.dockerfile),
            containers=moved(default.containers),
            requirements=moved(default.requirements),
            code=tuple(moved(p) for p in default.code),
            pyproject=moved(default.pyproject),
        )

    def compose_files(self) -> list[Path]:
        """The compose files: ``containers/compose*.yaml``."""
        return sorted(self.containers.glob("compose*.yaml"))


@dataclass(frozen=True, kw_only=True)
class AuditOptions:
    """What to audit and how strictly."""

    #: Findings at or above this severity fail the audit.
    gate: Severity = Severity.HIGH
    #: The image to scan, by name (trivy asks the Docker engine, then the registry) ...
    image: str | None = None
    #: ... or as a ``docker save`` archive. With neither, the image scan is skipped.
    image_archive: Path | None = None
    #: Tools (names from TOOLS) that may be absent; they are reported as skipped.
    allow_missing: frozenset[str] = frozenset()
    #: Tools that may fail to audit (pip-audit without network); reported as skipped.
    allow_unaudited: frozenset[str] = frozenset()
    ignore_file: Path = IGNORE_FILE
    report: Path = REPORT
    targets: Targets = field(default_factory=Targets)
    trivy: trivy.TrivyOptions = field(default_factory=trivy.TrivyOptions)
    #: The date expiries are judged against; None is today (UTC, as trivy judges them).
    today: date | None = None

    def __post_init__(self) -> None:
        for name, known in (("allow_missing", TOOLS), ("allow_unaudited", UNAUDITED)):
            unknown = sorted(set(getattr(self, name)) - set(known))
            if unknown:
                raise ParamError(name, ", ".join(unknown), f"a subset of {', '.join(known)}")


@dataclass(frozen=True, kw_only=True)
class ToolReport:
    """One auditor's run: how it ended, what it found, what the ignore file accepted."""

    #: What ran: ``trivy image``, ``trivy config``, ``trivy secrets``, ``hadolint``, ...
    name: str
    #: The program: one of TOOLS.
    tool: str
    status: Status
    #: Why it was skipped or failed (one line).
    reason: str = ""
    #: The --allow-unaudited name that excused (or would excuse) a failure to audit.
    allowance: str = ""
    findings: tuple[Finding, ...] = ()
    ignored: tuple[Ignored, ...] = ()

    def counts(self) -> dict[str, int]:
        """Active findings per severity, most severe first."""
        return {
            level.name: sum(1 for f in self.findings if f.severity == level)
            for level in sorted(Severity, reverse=True)
        }

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "tool": self.tool,
            "status": str(self.status),
            "reason": self.reason,
            "counts": self.counts(),
            "findings": [f.to_json() for f in self.findings],
            "ignored": [i.to_json() for i in self.ignored],
        }


@dataclass(frozen=True, kw_only=True)
class AuditReport:
    """Every auditor's run, the gate, and the expired ignore entries."""

    gate: Severity
    tools: tuple[ToolReport, ...]
    expired: tuple[IgnoreEntry, ...] = ()
    ignore_file: Path | None = None

    def blocking(self) -> list[Finding]:
        """Active findings at or above the gate."""
        return blocking((f for t in self.tools for f in t.findings), self.gate)

    def failures(self) -> list[str]:
        """One line per reason the audit fails; empty when it passes."""
        lines: list[str] = []
        for entry in self.expired:
            lines.append(
                f"ignore entry {entry.section}/{entry.id} expired on {entry.expired_at} "
                f"({self.ignore_file}): fix the finding, or renew the entry with a new "
                "statement and expired_at"
            )
        for tool in self.tools:
            if tool.status is Status.MISSING:
                lines.append(f"{tool.reason} (or allow it: --allow-missing {tool.tool})")
            elif tool.status is Status.FAILED:
                # Most reasons already lead with their tool: "pip-audit could not audit ...".
                named = tool.reason.startswith(tool.name)
                what = tool.reason if named else f"{tool.name}: {tool.reason}"
                lines.append(f"{what} (fix it, or allow it: --allow-unaudited {tool.allowance})")
        for finding in self.blocking():
            lines.append(
                f"{finding.severity.name} {finding.tool} {finding.id} {finding.where}: "
                f"{finding.title}"
            )
        # Three trivy scans share one missing program: say so once.
        return list(dict.fromkeys(lines))

    @property
    def passed(self) -> bool:
        """True when nothing fails the gate."""
        return not self.failures()

    def checks(self) -> list[Check]:
        """One check per auditor, and one for the ignore file: the audit in the same model
        as verify's and the security report's checks."""
        blocking = self.blocking()
        checks = []
        for tool in self.tools:
            found = [f for f in blocking if f in tool.findings]
            if tool.status is Status.RAN:
                evidence = (
                    listing(f"{f.severity.name} {f.id} {f.where}" for f in found)
                    if found
                    else f"ran: nothing at or above {self.gate.name}"
                    + (f", {len(tool.ignored)} accepted in the ignore file" if tool.ignored else "")
                )
            else:
                evidence = f"{tool.status}: {tool.reason}"
            checks.append(
                Check(
                    id="AUD-" + re.sub(r"[^A-Z0-9]+", "-", tool.name.upper()),
                    title=f"{tool.name} finds nothing at or above {self.gate.name}",
                    ok=not found and tool.status in {Status.RAN, Status.SKIPPED},
                    evidence=evidence,
                )
            )
        checks.append(
            Check(
                id="AUD-IGNORES",
                title="no accepted risk has expired",
                ok=not self.expired,
                evidence=listing(f"{e.section}/{e.id} ({e.expired_at})" for e in self.expired),
            )
        )
        return checks

    def to_json(self) -> dict[str, object]:
        """The report as written to ``build/scan/audit.json``."""
        return {
            "gate": self.gate.name,
            "passed": self.passed,
            "failures": self.failures(),
            "checks": [check.to_json() for check in self.checks()],
            "ignore_file": str(self.ignore_file) if self.ignore_file else None,
            "expired_ignores": [
                {
                    "section": e.section,
                    "id": e.id,
                    "statement": e.statement,
                    "expired_at": e.expired_at.isoformat(),
                }
                for e in self.expired
            ],
            "tools": {t.name: t.to_json() for t in self.tools},
        }


def tool_env(settings: Settings) -> dict[str, str]:
    """The auditors' environment: ``settings.tool_env()`` and the CA bundle for pip-audit.

    The auditors come from the project's audit dependency group, beside the interpreter
    (settings put its scripts directory on PATH).
    """
    extra = {}
    if settings.ca_bundle:
        # pip-audit talks to PyPI through requests, which trusts only certifi's bundle unless
        # told otherwise; behind an intercepting proxy it then fails on every package.
        extra["REQUESTS_CA_BUNDLE"] = settings.ca_bundle
    return settings.tool_env(**extra)


def run_audit(options: AuditOptions, *, env: Mapping[str, str]) -> AuditReport:
    """Run every auditor, apply the ignore file and write the report; does not gate.

    A malformed ignore file raises :class:`AuditError` before anything runs.
    """
    policy = IgnorePolicy.load(options.ignore_file)
    today = options.today or datetime.now(UTC).date()
    reports = tuple(
        _run(name, tool, scan, options=options, policy=policy, today=today)
        for name, tool, scan in _jobs(options, env)
    )
    report = AuditReport(
        gate=options.gate,
        tools=reports,
        expired=tuple(policy.expired(today)),
        ignore_file=policy.source,
    )
    write_report(report, options.report)
    return report


def write_report(report: AuditReport, path: Path) -> None:
    """Write ``report`` as JSON to ``path``."""
    write_json(path, report.to_json())
    logger.info("audit report: %s", path)


def enforce(report: AuditReport) -> None:
    """Raise :class:`GateFailed` with the first reason (and how many more) if the audit fails."""
    failures = report.failures()
    if failures:
        more = f" (+{len(failures) - 1} more in {REPORT.name})" if len(failures) > 1 else ""
        raise GateFailed(f"audit failed: {failures[0]}{more}")


#: A scan to run, or the reason there is nothing to scan.
_Scan: TypeAlias = Callable[[], list[Finding]] | str


def _jobs(options: AuditOptions, env: Mapping[str, str]) -> list[tuple[str, str, _Scan]]:
    targets = options.targets
    root = targets.root
    out = options.report.parent
    dockerfile = targets.dockerfile
    compose = targets.compose_files()
    code = [p for p in targets.code if p.is_dir()]

    def image_scan(scanners: str, output: str) -> Callable[[], list[Finding]]:
        return functools.partial(
            trivy.scan_image,
            image=options.image,
            archive=options.image_archive,
            output=out / output,
            options=options.trivy,
            env=env,
            scanners=scanners,
        )

    def config() -> list[Finding]:
        return trivy.scan_config(
            dockerfile.parent,
            output=out / "trivy-config.json",
            options=options.trivy,
            env=env,
            prefix=_shown(dockerfile.parent, root),
        )

    def secrets() -> list[Finding]:
        return trivy.scan_secrets(
            root, output=out / "trivy-secrets.json", options=options.trivy, env=env
        )

    def hadolint() -> list[Finding]:
        return auditors.hadolint(dockerfile, root=root, env=env)

    def bandit() -> list[Finding]:
        config = targets.pyproject if targets.pyproject.is_file() else None
        return auditors.bandit(code, root=root, env=env, config=config)

    def compose_lint() -> list[Finding]:
        return auditors.compose_lint(compose, root=root, env=env)

    def pip_audit() -> list[Finding]:
        return auditors.pip_audit(targets.requirements, root=root, env=env)

    has_image = options.image is not None or options.image_archive is not None
    has_dockerfile = dockerfile.is_file()
    no_dockerfile = f"no {_shown(dockerfile, root)} to lint"
    no_compose = f"no {_shown(targets.containers, root)}/compose*.yaml"
    no_lock = f"no {_shown(targets.requirements, root)} (the exported lock)"
    no_image = "no image given (--image NAME)"
    return [
        ("trivy image", "trivy", image_scan("vuln", "trivy-image.json") if has_image else no_image),
        (
            "trivy image secrets",
            "trivy",
            image_scan("secret", "trivy-image-secrets.json") if has_image else no_image,
        ),
        ("trivy config", "trivy", config if has_dockerfile else no_dockerfile),
        ("trivy secrets", "trivy", secrets),
        ("hadolint", "hadolint", hadolint if has_dockerfile else no_dockerfile),
        ("bandit", "bandit", bandit if code else "no Python sources (app/, scripts/, tunnel/)"),
        ("compose-lint", "compose-lint", compose_lint if compose else no_compose),
        ("pip-audit", "pip-audit", pip_audit if targets.requirements.is_file() else no_lock),
    ]


def _run(
    name: str,
    tool: str,
    scan: _Scan,
    *,
    options: AuditOptions,
    policy: IgnorePolicy,
    today: date,
) -> ToolReport:
    if isinstance(scan, str):
        logger.info("%s: skipped, %s", name, scan)
        return ToolReport(name=name, tool=tool, status=Status.SKIPPED, reason=scan)
    logger.info("%s: running", name)
    try:
        found = scan()
    except ToolMissing as error:
        if tool in options.allow_missing:
            reason = f"{error} (allowed by --allow-missing {tool})"
            return ToolReport(name=name, tool=tool, status=Status.SKIPPED, reason=reason)
        return ToolReport(name=name, tool=tool, status=Status.MISSING, reason=str(error))
    except (ToolFailed, ToolTimeout, AuditError, ReportError) as error:
        logger.info("%s could not audit: %s", name, error)
        allowance = TRIVY_DB if isinstance(error, DatabaseUnavailable) else tool
        if allowance in options.allow_unaudited:
            reason = f"{error} (allowed by --allow-unaudited {allowance})"
            return ToolReport(
                name=name, tool=tool, status=Status.SKIPPED, reason=reason, allowance=allowance
            )
        return ToolReport(
            name=name, tool=tool, status=Status.FAILED, reason=str(error), allowance=allowance
        )
    active, ignored = policy.apply(found, today=today)
    return ToolReport(
        name=name, tool=tool, status=Status.RAN, findings=tuple(active), ignored=tuple(ignored)
    )


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


_SHORT = {
    Severity.CRITICAL: "CRIT",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MED",
    Severity.LOW: "LOW",
    Severity.UNKNOWN: "UNK",
}


def _table(report: AuditReport) -> Table:
    table = Table(title=f"security audit (gate: {report.gate.name} and above)")
    table.add_column("auditor", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for level in sorted(Severity, reverse=True):
        table.add_column(_SHORT[level], justify="right")
    table.add_column("ignored", justify="right")
    style = {
        Status.RAN: "green",
        Status.SKIPPED: "yellow",
        Status.MISSING: "red",
        Status.FAILED: "red",
    }
    for tool in report.tools:
        ran = tool.status is Status.RAN
        counts = [str(n) if ran else "-" for n in tool.counts().values()]
        table.add_row(
            tool.name,
            f"[{style[tool.status]}]{tool.status}[/]",
            *counts,
            str(len(tool.ignored)) if ran else "-",
        )
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.scan.audit",
        description="Run the security auditors, write build/scan/audit.json, gate on the result.",
    )
    parser.add_argument(
        "--severity",
        type=str.upper,
        choices=[s.name for s in Severity if s is not Severity.UNKNOWN],
        default=Severity.HIGH.name,
        help="fail on findings at or above this severity (default: HIGH)",
    )
    image = parser.add_mutually_exclusive_group()
    image.add_argument("--image", metavar="NAME", help="image to scan with trivy")
    image.add_argument("--image-archive", type=Path, metavar="TAR", help="docker save archive")
    parser.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        choices=TOOLS,
        metavar="TOOL",
        help="report TOOL as skipped when it is not installed (repeatable)",
    )
    parser.add_argument(
        "--allow-unaudited",
        action="append",
        default=[],
        choices=UNAUDITED,
        metavar="TOOL",
        help="report TOOL as skipped when it cannot audit, e.g. pip-audit offline, or trivy-db "
        "when trivy cannot download its vulnerability database (repeatable)",
    )
    parser.add_argument(
        "--ignore-file", type=Path, help="accepted risks (default: .trivyignore.yaml)"
    )
    parser.add_argument("--report", type=Path, help="where to write the JSON report")
    parser.add_argument("--root", type=Path, help="checkout to audit (default: this one)")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="trivy uses only its cache: no DB download (needs a populated --cache-dir)",
    )
    parser.add_argument("--cache-dir", type=Path, help="trivy's cache directory")
    parser.add_argument("--db-repository", metavar="REPO", help="OCI mirror of trivy's DB")
    return parser


def _built_image() -> str | None:
    """The image ``doit image`` recorded in build/image.json, if one was built."""
    try:
        return read_record().tag
    except WorkflowError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Command line: audit, print a table and the reasons for failing; 0 pass, 1 fail, 2 error."""
    args = _parser().parse_args(argv)
    console = Console()
    root = args.root.resolve() if args.root else paths.ROOT
    targets = Targets.under(root) if args.root else Targets()
    options = AuditOptions(
        gate=Severity[args.severity],
        image=args.image or (None if args.image_archive or args.root else _built_image()),
        image_archive=args.image_archive,
        allow_missing=frozenset(args.allow_missing),
        allow_unaudited=frozenset(args.allow_unaudited),
        ignore_file=args.ignore_file or root / IGNORE_FILE.name,
        report=args.report or root / REPORT.relative_to(paths.ROOT),
        targets=targets,
        trivy=trivy.TrivyOptions(
            cache_dir=args.cache_dir, offline=args.offline, db_repository=args.db_repository
        ),
    )
    try:
        report = run_audit(options, env=tool_env(Settings.from_env()))
    except WorkflowError as error:
        console.print(f"[red]audit could not start:[/] {error}", highlight=False)
        return 2
    console.print(_table(report))
    skipped: dict[str, list[str]] = {}
    for tool in report.tools:
        if tool.status is Status.SKIPPED:
            skipped.setdefault(tool.reason, []).append(tool.name)
    for reason, names in skipped.items():
        console.print(
            f"[yellow]skipped[/] {', '.join(names)}: {reason}", highlight=False, soft_wrap=True
        )
    for tool in report.tools:
        for item in tool.ignored:
            console.print(
                f"[dim]ignored[/] {item.finding.tool} {item.finding.id} {item.finding.where}: "
                f"{item.reason} (until {item.until})",
                highlight=False,
                soft_wrap=True,
            )
    failures = report.failures()
    for line in failures:
        console.print(f"[red]FAIL[/] {line}", highlight=False, soft_wrap=True)
    console.print(f"report: {options.report}", highlight=False, soft_wrap=True)
    if failures:
        console.print(f"[bold red]audit failed[/]: {len(failures)} problem(s)")
        return 1
    console.print("[bold green]audit passed[/]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def step(*, image: str | None, severity: str, allow_missing: str, allow_unaudited: str) -> None:
    """doit scan: the audit of the built image and the repository; GateFailed when it fails."""
    argv = ["--severity", severity]
    if image:
        argv += ["--image", image]
    for name in filter(None, allow_missing.split(",")):
        argv += ["--allow-missing", name.strip()]
    for name in filter(None, allow_unaudited.split(",")):
        argv += ["--allow-unaudited", name.strip()]
    code = main(argv)
    if code:
        raise GateFailed(
            f"the security audit failed (exit {code}); the reasons are listed above and in "
            f"{REPORT.relative_to(paths.ROOT)}"
        )
