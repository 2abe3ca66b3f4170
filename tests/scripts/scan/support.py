"""What the scan stage's tests share: small checkouts with planted and clean files, stand-in
auditors on PATH, the audit's options for a test, and ignore files written on the fly.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import textwrap
from datetime import date
from pathlib import Path

from scripts.core.settings import Settings
from scripts.scan import audit
from scripts.scan.audit import AuditOptions, Targets, tool_env
from scripts.scan.findings import Finding, IgnorePolicy, Kind, Severity

TRIVY_FIXTURES = Path(__file__).parents[1] / "fixtures" / "trivy"
#: The day the tests' ignore entries are judged on.
TODAY = date(2025, 6, 1)

PLANTED_DOCKERFILE = """\
FROM debian:trixie-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000
ADD http://example.com/tool.tar.gz /opt/
USER root
ENTRYPOINT ["/opt/tool"]
"""
CLEAN_DOCKERFILE = """\
FROM debian:trixie-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000
COPY app /app
USER 65532:65532
ENTRYPOINT ["/usr/bin/python3", "-m", "app"]
"""
PLANTED_CODE = """\
import subprocess


def run(command):
    return subprocess.call(command, shell=True)
"""
CLEAN_CODE = """\
def add(a: int, b: int) -> int:
    return a + b
"""
PLANTED_COMPOSE = """\
services:
  app:
    image: zeroport:1
    privileged: true
"""
CLEAN_COMPOSE = """\
services:
  app:
    image: zeroport@sha256:aaaabbbbccccddddeeeeffff00001111222233334444555566667777888899990
    read_only: true
    user: "65532:65532"
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
    mem_limit: 256m
    pids_limit: 100
    cpus: 0.5
    ports:
      - "127.0.0.1:8080:8080"
    tmpfs:
      - /tmp
"""
#: What pip-audit 2.10 printed here, offline, for `--strict ... -r requirements.txt`: exit 1,
#: nothing on stdout.
PIP_AUDIT_OFFLINE_STDERR = (
    "WARNING:pip_audit._cli:--no-deps is supported, but users are encouraged to fully hash "
    "their pinned dependencies\n"
    "ERROR:pip_audit._cli:quart: Dependency not found on PyPI and could not be audited: "
    "quart (0.20.0)\n"
)
PIP_AUDIT_VULNERABLE = {
    "dependencies": [
        {"name": "quart", "version": "0.20.0", "vulns": []},
        {
            "name": "h11",
            "version": "0.14.0",
            "vulns": [
                {
                    "id": "GHSA-vqfr-h8mv-ghfj",
                    "fix_versions": ["0.16.0"],
                    "aliases": ["CVE-2025-43859"],
                    "description": "h11 accepts some malformed Chunked-Encoding bodies.\nMore.",
                }
            ],
        },
    ],
    "fixes": [],
}


def checkout(
    root: Path,
    *,
    dockerfile: str | None = None,
    code: str | None = None,
    compose: str | None = None,
    requirements: str | None = None,
    ignore: str | None = None,
) -> Targets:
    """Write the given files where the audit looks for them in a checkout at ``root``."""
    targets = Targets.under(root)
    files = {
        targets.dockerfile: dockerfile,
        targets.code[0] / "main.py": code,
        targets.containers / "compose.yaml": compose,
        targets.requirements: requirements,
        root / ".trivyignore.yaml": ignore and textwrap.dedent(ignore),
    }
    for path, text in files.items():
        if text is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return targets


def stand_in(
    bin_dir: Path,
    name: str,
    *,
    stdout: str = "",
    stderr: str = "",
    code: int = 0,
    required: tuple[str, ...] = (),
) -> None:
    """A fake ``name`` on ``bin_dir``: exits 1 unless its argv holds ``required``, else prints
    what it is given and exits with ``code``."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"missing = [a for a in {list(required)!r} if a not in sys.argv]\n"
        f"if missing:\n    sys.exit(f'stand-in {name}: argv lacks {{missing}}')\n"
        f"sys.stdout.write({stdout!r})\nsys.stderr.write({stderr!r})\nsys.exit({code})\n",
        encoding="utf-8",
    )
    script.chmod(0o755)


def stand_in_trivy_reports(bin_dir: Path, reports: dict[str, Path]) -> None:
    """A fake ``trivy`` writing ``reports[key]`` where ``--output`` says; the key is the
    subcommand, and ``image secret`` for the image's secret scan."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "trivy"
    mapping = {k: str(v) for k, v in reports.items()}
    script.write_text(
        f"#!{sys.executable}\nimport shutil, sys\n"
        "scanners = sys.argv[sys.argv.index('--scanners') + 1] if '--scanners' in sys.argv "
        "else ''\n"
        "key = 'image secret' if sys.argv[1] == 'image' and scanners == 'secret' else sys.argv[1]\n"
        f"shutil.copyfile({mapping!r}[key], sys.argv[sys.argv.index('--output') + 1])\n",
        encoding="utf-8",
    )
    script.chmod(0o755)


#: The auditors the audit group installs beside this interpreter, trivy left out.
AUDITORS = ("hadolint", "bandit", "compose-lint", "pip-audit")


def env_with(bin_dir: Path) -> dict[str, str]:
    """The audit's environment: ``bin_dir`` (stand-ins) ahead of the real auditors, no trivy."""
    bin_dir.mkdir(exist_ok=True)
    tools = bin_dir.parent / "auditors"
    tools.mkdir(exist_ok=True)
    for name in AUDITORS:
        link = tools / name
        if not link.exists():
            link.symlink_to(Path(sysconfig.get_path("scripts")) / name)
    settings = Settings.from_env()
    return tool_env(settings) | {
        "PATH": os.pathsep.join([str(bin_dir), str(tools), "/usr/bin", "/bin"])
    }


def options(targets: Targets, **overrides: object) -> AuditOptions:
    values: dict[str, object] = {
        "targets": targets,
        "ignore_file": targets.root / ".trivyignore.yaml",
        "report": targets.root / "build" / "scan" / "audit.json",
        "allow_missing": frozenset({"trivy"}),
        "today": TODAY,
        **overrides,
    }
    return AuditOptions(**values)  # type: ignore[arg-type]


def by_name(report: audit.AuditReport) -> dict[str, audit.ToolReport]:
    return {t.name: t for t in report.tools}


def finding(**overrides: object) -> Finding:
    values: dict[str, object] = {
        "tool": "trivy",
        "kind": Kind.VULN,
        "id": "CVE-2025-0001",
        "severity": Severity.HIGH,
        "title": "t",
        "target": "zeroport:test (debian 13.1)",
        **overrides,
    }
    return Finding(**values)  # type: ignore[arg-type]


def write_ignore(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".trivyignore.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def policy_with(
    tmp_path: Path, section: str, entry_id: str, statement: str, expired_at: str
) -> IgnorePolicy:
    """The policy of an ignore file with one entry in ``section``."""
    entry = f"  - id: {entry_id}\n    statement: {statement}\n    expired_at: {expired_at}\n"
    return IgnorePolicy.load(write_ignore(tmp_path, f"{section}:\n{entry}"))
