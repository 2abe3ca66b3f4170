"""The findings model: the severity gate, and the ignore file (entries, expiry, paths, sections)."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from scripts.core import paths
from scripts.core.errors import AuditError
from scripts.scan.findings import IgnorePolicy, Kind, Severity, blocking
from scripts.scan.trivy import read_report
from tests.scripts.scan.support import TODAY, TRIVY_FIXTURES, finding, policy_with, write_ignore

# --- the severity gate -----------------------------------------------------------------------


def test_default_gate_blocks_high_and_critical_only() -> None:
    findings = read_report(TRIVY_FIXTURES / "image.json")

    assert {f.id for f in blocking(findings, Severity.HIGH)} == {
        "CVE-2025-0001",
        "CVE-2025-0003",
        "github-pat",
    }
    assert {f.id for f in blocking(findings, Severity.CRITICAL)} == {"CVE-2025-0003", "github-pat"}


def test_severity_parses_any_case_and_refuses_unknown_levels() -> None:
    assert Severity.parse("medium") is Severity.MEDIUM
    with pytest.raises(ValueError, match="CRITICAL"):
        Severity.parse("severe")


# --- the ignore file -------------------------------------------------------------------------


def test_ignore_entry_moves_finding_to_ignored_with_reason_and_date(tmp_path: Path) -> None:
    policy = policy_with(
        tmp_path,
        "vulnerabilities",
        "CVE-2025-0001",
        "the parser is never fed untrusted input",
        "2025-07-01",
    )
    findings = read_report(TRIVY_FIXTURES / "image.json")

    active, ignored = policy.apply(findings, today=TODAY)

    assert "CVE-2025-0001" not in {f.id for f in active}
    [item] = ignored
    assert (item.finding.id, item.reason, item.until) == (
        "CVE-2025-0001",
        "the parser is never fed untrusted input",
        date(2025, 7, 1),
    )
    assert item.to_json()["until"] == "2025-07-01"
    assert policy.expired(TODAY) == []


def test_entry_lapses_on_its_expiry_date(tmp_path: Path) -> None:
    policy = policy_with(tmp_path, "vulnerabilities", "CVE-2025-0001", "accepted", '"2025-06-01"')

    active, ignored = policy.apply([finding()], today=date(2025, 5, 31))
    assert (len(active), len(ignored)) == (0, 1)

    active, ignored = policy.apply([finding()], today=TODAY)
    assert (len(active), len(ignored)) == (1, 0)
    assert [e.id for e in policy.expired(TODAY)] == ["CVE-2025-0001"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- id: CVE-1\n  expired_at: 2030-01-01", "CVE-1.* needs a statement"),
        ("- id: CVE-1\n  statement: '  '\n  expired_at: 2030-01-01", "needs a statement"),
        ("- id: CVE-1\n  statement: ok", "CVE-1.* needs expired_at"),
        ("- id: CVE-1\n  statement: ok\n  expired_at: next year", "must be a date YYYY-MM-DD"),
        ("- id: CVE-1\n  statement: ok\n  expired_at: 2030-01-01T10:00:00", "YYYY-MM-DD"),
        ("- statement: ok\n  expired_at: 2030-01-01", "needs an id"),
        (
            "- id: CVE-1\n  statement: ok\n  expired_at: 2030-01-01\n  purls: [pkg:deb/debian/x]",
            "unsupported key.*purls",
        ),
        (
            "- id: CVE-1\n  statement: ok\n  expired_at: 2030-01-01\n  paths: x",
            "list of file globs",
        ),
        ("id: CVE-1", "must be a list"),
    ],
)
def test_ignore_entry_without_reason_or_expiry_is_an_error(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = write_ignore(tmp_path, "vulnerabilities:\n" + textwrap.indent(entry, "  ") + "\n")
    with pytest.raises(AuditError, match=message):
        IgnorePolicy.load(path)


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    path = write_ignore(tmp_path, "vulnerabilites:\n  - id: CVE-1\n")
    with pytest.raises(AuditError, match="unknown section 'vulnerabilites'"):
        IgnorePolicy.load(path)


def test_paths_limit_where_an_entry_applies(tmp_path: Path) -> None:
    policy = IgnorePolicy.load(
        write_ignore(
            tmp_path,
            """\
            misconfigurations:
              - id: AVD-DS-0002
                statement: the builder stage runs as root
                expired_at: 2030-01-01
                paths: ["containers/*"]
            vulnerabilities:
              - id: CVE-2025-0003
                statement: h11 is only a client here
                expired_at: 2030-01-01
                paths: ["usr/lib/python3/**"]
            """,
        )
    )
    here = finding(
        kind=Kind.MISCONFIG, id="DS002", aliases=("AVD-DS-0002",), target="containers/Dockerfile"
    )
    deeper = finding(
        kind=Kind.MISCONFIG, id="DS002", aliases=("AVD-DS-0002",), target="containers/x/Dockerfile"
    )
    in_image = finding(
        id="CVE-2025-0003",
        target="Python",
        package_path="usr/lib/python3/site-packages/h11/METADATA",
    )
    elsewhere = finding(id="CVE-2025-0003", target="Python", package_path="opt/venv/h11/METADATA")

    active, ignored = policy.apply([here, deeper, in_image, elsewhere], today=TODAY)

    assert [i.finding for i in ignored] == [here, in_image]
    assert active == [deeper, elsewhere]


def test_entry_applies_only_to_its_own_section(tmp_path: Path) -> None:
    policy = policy_with(tmp_path, "secrets", "CVE-2025-0001", "wrong section", "2030-01-01")
    active, ignored = policy.apply([finding()], today=TODAY)
    assert (active, ignored) == ([finding()], [])


def test_missing_ignore_file_accepts_nothing(tmp_path: Path) -> None:
    policy = IgnorePolicy.load(tmp_path / "absent.yaml")
    assert policy.apply([finding()], today=TODAY) == ([finding()], [])


def test_project_ignore_file_is_valid() -> None:
    policy = IgnorePolicy.load(paths.ROOT / ".trivyignore.yaml")
    assert policy.source == paths.ROOT / ".trivyignore.yaml"
