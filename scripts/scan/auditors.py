"""The auditors besides trivy: hadolint, bandit, compose-lint and pip-audit.

Each function runs its tool once (argv list, explicit environment, timeout) from the checkout's
root, so the files in the report are repository-relative, reads the tool's JSON and returns
:class:`~scripts.findings.Finding` values on the common severity scale:

=============  ===============================================================================
hadolint       error -> HIGH, warning -> MEDIUM, info and style -> LOW. DL3002 (last USER is
               root) is raised to error with hadolint's own ``--error``: trivy rates the same
               check (DS-0002) HIGH, and the image must not run as root.
bandit         its ``issue_severity`` (HIGH, MEDIUM, LOW; UNDEFINED -> UNKNOWN).
compose-lint   its own levels (critical, high, medium, low).
pip-audit      HIGH for every known vulnerability: its JSON carries no severity.
=============  ===============================================================================

A tool that ran but could not audit everything (bandit could not parse a file, compose-lint
could not read a compose file, pip-audit could not reach its vulnerability service) raises
:class:`~scripts.errors.AuditError`: an audit that did not look is never a pass.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path

from scripts.core import proc
from scripts.core.errors import AuditError, ReportError, ToolFailed
from scripts.core.settings import MINUTES, SECONDS
from scripts.scan.findings import Finding, Kind, Severity

logger = logging.getLogger(__name__)

HADOLINT_LEVELS: Mapping[str, Severity] = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "info": Severity.LOW,
    "style": Severity.LOW,
}
#: hadolint rules raised to ``error`` (see the module docstring).
HADOLINT_RAISED = ("DL3002",)
#: pip-audit's socket timeout per request to its vulnerability service.
PIP_AUDIT_NETWORK_TIMEOUT = 15 * SECONDS


def hadolint(
    dockerfile: Path, *, root: Path, env: Mapping[str, str], timeout: float = 1 * MINUTES
) -> list[Finding]:
    """Lint ``dockerfile`` with hadolint."""
    argv = ["hadolint", "--no-fail", "--no-color", "--format", "json"]
    for rule in HADOLINT_RAISED:
        argv += ["--error", rule]
    argv.append(_relative(dockerfile, root))
    # --no-fail: findings exit 0, so any other exit is hadolint failing.
    result = proc.run(argv, env=env, timeout=timeout, cwd=str(root))
    items = _json(result.stdout, "hadolint")
    if not isinstance(items, list):
        raise ReportError(f"hadolint: expected a JSON list, got {type(items).__name__}")
    return [_hadolint_finding(item) for item in items]


def bandit(
    sources: Sequence[Path],
    *,
    root: Path,
    env: Mapping[str, str],
    config: Path | None = None,
    timeout: float = 5 * MINUTES,
) -> list[Finding]:
    """Scan the Python files under ``sources`` with bandit (``config``: its pyproject table)."""
    argv = ["bandit", "--format", "json", "--quiet", "--recursive"]
    if config is not None:
        argv += ["--configfile", _relative(config, root)]
    argv += [_relative(source, root) for source in sources]
    # bandit exits 1 when it finds issues; anything else is bandit failing.
    result = proc.run(argv, env=env, timeout=timeout, cwd=str(root), check=False)
    if result.returncode not in (0, 1):
        raise ToolFailed(argv, result.returncode, result.stderr or result.stdout)
    data = _json(result.stdout, "bandit")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ReportError("bandit: expected a JSON object with a results list")
    errors = data.get("errors") or []
    if errors:
        # A file bandit cannot parse (or a path that does not exist) is not audited, and
        # bandit still exits 0 for it.
        unread = "; ".join(f"{e.get('filename')}: {e.get('reason')}" for e in errors)
        raise AuditError(f"bandit could not audit {len(errors)} file(s): {unread}")
    return [_bandit_finding(item) for item in data["results"]]


def compose_lint(
    files: Sequence[Path], *, root: Path, env: Mapping[str, str], timeout: float = 1 * MINUTES
) -> list[Finding]:
    """Lint the compose ``files`` with compose-lint.

    Findings that a ``.compose-lint.yml`` suppresses still count: that file has no expiry, so
    an accepted risk belongs in the ignore file instead, where it must carry one.
    """
    argv = ["compose-lint", "check", "--format", "json", *(_relative(f, root) for f in files)]
    # Exit 1 means findings at or above its own --fail-on; 2 means it could not lint.
    result = proc.run(argv, env=env, timeout=timeout, cwd=str(root), check=False)
    if result.returncode not in (0, 1, 2):
        raise ToolFailed(argv, result.returncode, result.stderr or result.stdout)
    data = _json(result.stdout, "compose-lint")
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise ReportError("compose-lint: expected a JSON object with a findings list")
    errors = data.get("errors") or []
    if errors or result.returncode == 2:
        problems = "; ".join(f"{e.get('file')}: {e.get('message')}" for e in errors)
        raise AuditError(f"compose-lint could not lint: {problems or result.stderr.strip()}")
    return [_compose_finding(item) for item in data["findings"]]


def pip_audit(
    requirements: Path, *, root: Path, env: Mapping[str, str], timeout: float = 5 * MINUTES
) -> list[Finding]:
    """Audit the pinned ``requirements`` (the exported lock) with pip-audit.

    ``--strict`` turns "could not audit a dependency" into a failure: without it pip-audit
    exits 0 and prints "No known vulnerabilities found" when its service is unreachable.
    ``--disable-pip --no-deps``: the file is a complete lock, so nothing is resolved or installed.
    """
    argv = [
        "pip-audit",
        "--strict",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--disable-pip",
        "--no-deps",
        "--timeout",
        f"{PIP_AUDIT_NETWORK_TIMEOUT:g}",
        "--requirement",
        _relative(requirements, root),
    ]
    # pip-audit exits 1 both for "vulnerabilities found" (with a JSON report) and for
    # "could not audit" (without one), so the report decides.
    result = proc.run(argv, env=env, timeout=timeout, cwd=str(root), check=False)
    try:
        data = json.loads(result.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        if result.returncode == 0:
            raise ReportError("pip-audit exited 0 without a JSON report")
        raise AuditError(
            f"pip-audit could not audit {_relative(requirements, root)}: "
            f"{_pip_audit_error(result.stderr)}"
        )
    skipped = [d for d in data["dependencies"] if isinstance(d, dict) and d.get("skip_reason")]
    if skipped:
        raise AuditError(f"pip-audit could not audit: {skipped[0]['skip_reason']}")
    return [
        _pip_audit_finding(dep, vuln, requirements, root)
        for dep in data["dependencies"]
        for vuln in dep.get("vulns") or []
    ]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _json(text: str, tool: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        raise ReportError(f"{tool} did not print JSON: {text.strip()[:200]!r}") from None


def _hadolint_finding(item: object) -> Finding:
    if not isinstance(item, dict):
        raise ReportError("hadolint: each result must be a JSON object")
    level = str(item.get("level"))
    if level not in HADOLINT_LEVELS:
        raise ReportError(f"hadolint: unknown level {level!r}")
    return Finding(
        tool="hadolint",
        kind=Kind.MISCONFIG,
        id=str(item["code"]),
        severity=HADOLINT_LEVELS[level],
        # DL1000 (cannot parse) spreads its "expecting ..." list over several lines.
        title=str(item.get("message", "")).split("\n")[0],
        target=posixpath.normpath(str(item["file"])),
        line=_int(item.get("line")),
    )


def _bandit_finding(item: object) -> Finding:
    if not isinstance(item, dict):
        raise ReportError("bandit: each result must be a JSON object")
    severity = str(item.get("issue_severity", "UNDEFINED")).upper()
    return Finding(
        tool="bandit",
        kind=Kind.CODE,
        id=str(item["test_id"]),
        severity=Severity[severity] if severity in Severity.__members__ else Severity.UNKNOWN,
        title=f"{item.get('issue_text', '')} (confidence {item.get('issue_confidence', '?')})",
        target=posixpath.normpath(str(item["filename"])),
        line=_int(item.get("line_number")),
    )


def _compose_finding(item: object) -> Finding:
    if not isinstance(item, dict):
        raise ReportError("compose-lint: each finding must be a JSON object")
    level = str(item.get("severity", "")).upper()
    if level not in Severity.__members__:
        raise ReportError(f"compose-lint: unknown severity {item.get('severity')!r}")
    title = f"service {item.get('service')}: {item.get('message', '')}"
    if item.get("suppressed"):
        title += (
            f" [suppressed in compose-lint's config ({item.get('suppression_reason', 'no reason')})"
            " but counted: accept it in .trivyignore.yaml, with an expiry]"
        )
    return Finding(
        tool="compose-lint",
        kind=Kind.MISCONFIG,
        id=str(item["rule_id"]),
        severity=Severity[level],
        title=title,
        target=posixpath.normpath(str(item["file"])),
        line=_int(item.get("line")),
    )


def _pip_audit_finding(
    dep: dict[str, object], vuln: object, requirements: Path, root: Path
) -> Finding:
    if not isinstance(vuln, dict):
        raise ReportError("pip-audit: each vulnerability must be a JSON object")
    description = str(vuln.get("description") or "").strip().split("\n")[0]
    aliases = vuln.get("aliases") or []
    fixes = vuln.get("fix_versions") or []
    return Finding(
        tool="pip-audit",
        kind=Kind.VULN,
        id=str(vuln["id"]),
        severity=Severity.HIGH,
        title=description[:200],
        target=_relative(requirements, root),
        package=str(dep.get("name", "")),
        installed=str(dep.get("version", "")),
        fixed=", ".join(str(f) for f in fixes) if isinstance(fixes, list) else "",
        aliases=tuple(str(a) for a in aliases) if isinstance(aliases, list) else (),
    )


def _pip_audit_error(stderr: str) -> str:
    # pip-audit logs "ERROR:pip_audit._cli:<dep>: <why>"; an unreachable service ends in a
    # traceback whose last line names the exception.
    errors = [
        line.split(":", 2)[-1].strip() for line in stderr.splitlines() if line.startswith("ERROR:")
    ]
    if errors:
        return "; ".join(errors)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
