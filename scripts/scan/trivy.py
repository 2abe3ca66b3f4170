"""The trivy wrapper: image, config and secret scans, an SBOM, and a reader for trivy's report.

Each scan is one ``trivy`` run (argv list, explicit environment, timeout) that writes its JSON
report (SchemaVersion 2) under ``build/scan/``; :func:`read_report` turns it into
:class:`~scripts.findings.Finding` values. Only the image's vulnerability scan needs trivy's
database (downloaded on first use); when it cannot be had, the scan raises
:class:`DatabaseUnavailable`, which the audit reports as one line and allows only when told
(``allow_unaudited=trivy-db``). The config scan, both secret scans and the CycloneDX SBOM
need nothing but the binary. The flags follow trivy's CLI reference
(aquasecurity/trivy ``docs/docs/references/configuration/cli/trivy_{image,config,filesystem}.md``)
and its air-gap guide (``docs/docs/advanced/air-gap.md``); they need trivy 0.53 or newer.

Nothing is filtered inside trivy: no ``--severity`` (the report counts every level and the gate
is applied afterwards), no ``--exit-code`` (a non-zero exit therefore means trivy itself failed),
and no ``--ignorefile`` (accepted risks are applied by :mod:`scripts.scan.findings`, which can
report them). trivy runs in the report's directory so that a stray ``trivy.yaml`` or
``.trivyignore`` in the caller's working directory cannot change the result unseen.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.core import proc
from scripts.core.errors import DatabaseUnavailable, ReportError, ToolFailed
from scripts.core.settings import MINUTES
from scripts.scan.findings import Finding, Kind, Severity

logger = logging.getLogger(__name__)

#: Directories of a checkout that are not the project's own files: tools, caches, build output.
SKIP_DIRS = (
    ".git",
    ".venv",
    ".nox",
    "build",
    "node_modules",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "**/__pycache__",
)


@dataclass(frozen=True, kw_only=True)
class TrivyOptions:
    """How to run trivy: where its databases live and whether it may download them."""

    #: trivy's cache (vulnerability DB, checks bundle); None keeps trivy's default, which
    #: ``TRIVY_CACHE_DIR`` in the environment also sets.
    cache_dir: Path | None = None
    #: Use only what the cache holds: no DB download, no API lookups, no checks update.
    offline: bool = False
    #: OCI repository to pull the vulnerability DB from (a mirror) instead of trivy's default.
    db_repository: str | None = None
    #: Seconds one scan may take; the first image scan downloads the DB (~60 MB).
    timeout: float = 10 * MINUTES


#: What trivy prints when its vulnerability database cannot be had (pkg/db and its caller:
#: "init error: DB error: failed to download vulnerability DB: ...").
_DB_FAILURE = re.compile(r"failed to download vulnerability DB|DB error", re.IGNORECASE)


def image_argv(
    *,
    image: str | None = None,
    archive: Path | None = None,
    output: Path,
    options: TrivyOptions,
    scanners: str = "vuln",
) -> list[str]:
    """``trivy image`` of an image name or a ``docker save`` tar, with ``scanners``.

    ``vuln`` needs the vulnerability database; ``secret`` needs nothing but the image.
    """
    if (image is None) == (archive is None):
        raise ValueError("give exactly one of image (a name) or archive (a docker save tar)")
    argv = ["trivy", "image", "--scanners", scanners, *_report_flags(output, options)]
    if "vuln" in scanners.split(","):
        if options.offline:
            argv += ["--skip-db-update", "--skip-java-db-update", "--offline-scan"]
        if options.db_repository:
            argv += ["--db-repository", options.db_repository]
    argv += ["--input", str(archive.resolve())] if archive is not None else [str(image)]
    return argv


def sbom_argv(image: str, *, output: Path, options: TrivyOptions) -> list[str]:
    """``trivy image --format cyclonedx``: the packages trivy finds in ``image``, no scanning."""
    argv = ["trivy", "image", "--format", "cyclonedx", "--output", str(output.resolve())]
    if options.cache_dir is not None:
        argv += ["--cache-dir", str(options.cache_dir.resolve())]
    return [*argv, "--quiet", image]


def config_argv(directory: Path, *, output: Path, options: TrivyOptions) -> list[str]:
    """``trivy config`` for misconfigurations (the Dockerfile) in ``directory``."""
    argv = ["trivy", "config", *_report_flags(output, options)]
    if options.offline:
        # The checks bundle is the only download a config scan makes; without it trivy uses
        # the checks built into its binary.
        argv.append("--skip-check-update")
    return [*argv, str(directory.resolve())]


def secrets_argv(
    directory: Path, *, output: Path, options: TrivyOptions, skip_dirs: Sequence[str] = SKIP_DIRS
) -> list[str]:
    """``trivy fs`` with only the secret scanner, over ``directory`` minus ``skip_dirs``.

    The secret scanner needs no database, so there is nothing to skip when offline. Each
    skipped directory is given under ``directory``'s absolute path: trivy 0.76 honours a
    relative ``--skip-dirs`` only when it is the only one (two or more, and ``build`` was
    scanned; measured here), absolute ones and absolute globs always.
    """
    root = directory.resolve()
    argv = ["trivy", "fs", "--scanners", "secret", *_report_flags(output, options)]
    for skipped in skip_dirs:
        argv += ["--skip-dirs", posixpath.join(root.as_posix(), skipped)]
    return [*argv, str(root)]


def scan_image(
    *,
    image: str | None = None,
    archive: Path | None = None,
    output: Path,
    options: TrivyOptions,
    env: Mapping[str, str],
    scanners: str = "vuln",
) -> list[Finding]:
    """Scan an image (by name, or a ``docker save`` archive) and return what trivy found.

    :class:`DatabaseUnavailable` when a vulnerability scan could not get trivy's database.
    """
    argv = image_argv(
        image=image, archive=archive, output=output, options=options, scanners=scanners
    )
    try:
        return _scan(argv, output=output, options=options, env=env)
    except ToolFailed as error:
        if "vuln" in scanners.split(",") and _DB_FAILURE.search(error.output):
            raise DatabaseUnavailable(
                error.argv,
                error.returncode,
                error.output,
                "trivy's vulnerability database could not be downloaded; give trivy network "
                "access, or a populated --cache-dir",
            ) from None
        raise


def write_sbom(
    image: str, *, output: Path, env: Mapping[str, str], options: TrivyOptions | None = None
) -> dict[str, object]:
    """Have trivy write its CycloneDX SBOM of ``image`` to ``output``; the parsed document."""
    options = options or TrivyOptions()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    argv = sbom_argv(image, output=output, options=options)
    logger.info("trivy image --format cyclonedx -> %s", output)
    proc.run(argv, env=_offline_env(env, options), timeout=options.timeout)
    try:
        data = json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"trivy's SBOM {output} is not readable JSON: {error}") from None
    if not isinstance(data, dict) or data.get("bomFormat") != "CycloneDX":
        raise ReportError(f"trivy's SBOM {output} is not a CycloneDX document")
    return data


def scan_config(
    directory: Path,
    *,
    output: Path,
    options: TrivyOptions,
    env: Mapping[str, str],
    prefix: str = "",
) -> list[Finding]:
    """Scan ``directory`` for misconfigurations; ``prefix`` makes targets repository-relative."""
    argv = config_argv(directory, output=output, options=options)
    return _scan(argv, output=output, options=options, env=env, prefix=prefix)


def scan_secrets(
    directory: Path,
    *,
    output: Path,
    options: TrivyOptions,
    env: Mapping[str, str],
    skip_dirs: Sequence[str] = SKIP_DIRS,
) -> list[Finding]:
    """Scan the files under ``directory`` for secrets."""
    argv = secrets_argv(directory, output=output, options=options, skip_dirs=skip_dirs)
    return _scan(argv, output=output, options=options, env=env)


def read_report(path: Path, *, prefix: str = "") -> list[Finding]:
    """Read a trivy JSON report file; a file of the wrong shape is a :class:`ReportError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read trivy report {path}: {error}") from None
    return parse_report(data, prefix=prefix, source=str(path))


def parse_report(data: object, *, prefix: str = "", source: str = "trivy report") -> list[Finding]:
    """The findings in a parsed trivy report (``Results[]`` of SchemaVersion 2).

    Vulnerabilities, failed misconfiguration checks (``Status`` FAIL; PASS and EXCEPTION are
    not problems) and secrets become findings. ``prefix`` is joined in front of each result's
    ``Target``, which trivy reports relative to the scanned directory.
    """
    if not isinstance(data, dict) or data.get("SchemaVersion") != 2:
        found = data.get("SchemaVersion") if isinstance(data, dict) else type(data).__name__
        raise ReportError(
            f"{source}: expected a trivy JSON report with SchemaVersion 2, got {found}"
        )
    # trivy leaves Results out when it found nothing to report on.
    results = data.get("Results", [])
    if not isinstance(results, list):
        raise ReportError(f"{source}: Results must be a list")
    findings: list[Finding] = []
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise ReportError(f"{source}: Results[{index}] must be an object")
        target = _text(result, "Target", source)
        if prefix:
            target = posixpath.join(prefix, target)
        where = f"{source}: {target}"
        findings += [
            _vulnerability(v, target, where) for v in _items(result, "Vulnerabilities", where)
        ]
        findings += [
            _misconfiguration(m, target, where)
            for m in _items(result, "Misconfigurations", where)
            if m.get("Status", "FAIL") == "FAIL"
        ]
        findings += [_secret(s, target, where) for s in _items(result, "Secrets", where)]
    return findings


def _report_flags(output: Path, options: TrivyOptions) -> list[str]:
    # Absolute paths: trivy runs in the report's directory, not the caller's.
    flags = ["--format", "json", "--output", str(output.resolve()), "--quiet"]
    if options.cache_dir is not None:
        flags += ["--cache-dir", str(options.cache_dir.resolve())]
    return flags


def _scan(
    argv: list[str],
    *,
    output: Path,
    options: TrivyOptions,
    env: Mapping[str, str],
    prefix: str = "",
) -> list[Finding]:
    output.parent.mkdir(parents=True, exist_ok=True)
    # A report left by an earlier run must never pass for this run's result.
    output.unlink(missing_ok=True)
    run_env = _offline_env(env, options)
    hint = (
        "offline scans need trivy's DB in the cache: run `trivy image --download-db-only "
        "--cache-dir DIR` where there is network and pass --cache-dir DIR"
        if options.offline
        else "trivy downloads its DB on first use: check the network, or use --offline with a "
        "populated --cache-dir"
    )
    logger.info("trivy %s -> %s", argv[1], output)
    proc.run(argv, env=run_env, timeout=options.timeout, cwd=str(output.parent), hint=hint)
    if not output.is_file():
        raise ReportError(f"trivy {argv[1]} exited 0 but wrote no report at {output}")
    return read_report(output, prefix=prefix)


def _offline_env(env: Mapping[str, str], options: TrivyOptions) -> dict[str, str]:
    run_env = dict(env)
    if options.offline:
        # Newer trivy checks for updates and sends telemetry; flags for both do not exist in
        # older releases, but every trivy flag has a TRIVY_* variable and unknown ones are unused.
        run_env |= {"TRIVY_SKIP_VERSION_CHECK": "true", "TRIVY_DISABLE_TELEMETRY": "true"}
    return run_env


def check_id_forms(check: str) -> tuple[str, ...]:
    """Every spelling trivy has used for one check: ``DS-0002``, ``AVD-DS-0002``, ``DS002``.

    Current trivy (0.6x on) reports ``ID: DS-0002`` and no ``AVDID``; older reports carry
    ``ID: DS002`` with ``AVDID: AVD-DS-0002``. An ignore entry written in any of the forms must
    keep matching whichever trivy wrote the report. An id of another shape is returned as is.
    """
    match = re.fullmatch(r"(?:AVD-)?([A-Z]+)-?([0-9]+)", check)
    if match is None:
        return (check,)
    family, number = match.group(1), int(match.group(2))
    forms = (f"{family}-{number:04d}", f"AVD-{family}-{number:04d}", f"{family}{number:03d}")
    return (check, *(form for form in forms if form != check))


def _items(result: dict[str, object], key: str, where: str) -> list[dict[str, object]]:
    items = result.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ReportError(f"{where}: {key} must be a list of objects")
    return items


def _text(item: Mapping[str, object], key: str, where: str, *, required: bool = True) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ReportError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value


def _severity(item: Mapping[str, object], where: str) -> Severity:
    value = item.get("Severity")
    try:
        return Severity[str(value)]
    except KeyError:
        raise ReportError(f"{where}: unknown Severity {value!r}") from None


def _line(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _vulnerability(item: dict[str, object], target: str, where: str) -> Finding:
    title = _text(item, "Title", where, required=False)
    if not title:
        title = _text(item, "Description", where, required=False).strip().split("\n")[0]
    return Finding(
        tool="trivy",
        kind=Kind.VULN,
        id=_text(item, "VulnerabilityID", where),
        severity=_severity(item, where),
        title=title,
        target=target,
        package=_text(item, "PkgName", where),
        installed=_text(item, "InstalledVersion", where, required=False),
        fixed=_text(item, "FixedVersion", where, required=False),
        package_path=_text(item, "PkgPath", where, required=False),
    )


def _misconfiguration(item: dict[str, object], target: str, where: str) -> Finding:
    check = _text(item, "ID", where)
    # An ignore entry may name the check in any form trivy has used (see check_id_forms).
    avd = _text(item, "AVDID", where, required=False)
    forms = dict.fromkeys([*check_id_forms(check), *(check_id_forms(avd) if avd else ())])
    cause = item.get("CauseMetadata")
    line = _line(cause.get("StartLine")) if isinstance(cause, dict) else None
    return Finding(
        tool="trivy",
        kind=Kind.MISCONFIG,
        id=check,
        severity=_severity(item, where),
        title=_text(item, "Title", where, required=False),
        target=target,
        line=line,
        aliases=tuple(form for form in forms if form != check),
    )


def _secret(item: dict[str, object], target: str, where: str) -> Finding:
    return Finding(
        tool="trivy",
        kind=Kind.SECRET,
        id=_text(item, "RuleID", where),
        severity=_severity(item, where),
        title=_text(item, "Title", where, required=False),
        target=target,
        line=_line(item.get("StartLine")),
    )
