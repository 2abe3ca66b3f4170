"""What the auditors find, on one severity scale, and the file of accepted risks.

Every auditor (trivy, hadolint, bandit, compose-lint, pip-audit) is normalised into
:class:`Finding`. Accepted risks live in one place, ``.trivyignore.yaml`` in trivy's documented
format (https://trivy.dev/latest/docs/configuration/filtering/#trivyignoreyaml), with two rules
trivy does not enforce: every entry carries a reason (``statement``) and an expiry date
(``expired_at``), and an expired entry fails the audit instead of quietly ceasing to apply.
The file is applied here, to every tool's findings, rather than handed to trivy, so the report
can list what was ignored, why, and until when.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import yaml

from scripts.core.errors import AuditError

logger = logging.getLogger(__name__)


class Severity(enum.IntEnum):
    """One scale for every tool, ordered so that ``finding.severity >= gate`` reads as it should."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str) -> Severity:
        """``"high"`` or ``"HIGH"`` to :attr:`HIGH`; anything else is a ``ValueError``."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            allowed = ", ".join(s.name for s in cls)
            raise ValueError(f"severity must be one of {allowed}, got {value!r}") from None


class Kind(enum.StrEnum):
    """What sort of problem a finding is; decides which section of the ignore file applies."""

    VULN = "vuln"
    MISCONFIG = "misconfig"
    SECRET = "secret"  # noqa: S105  # nosec B105 - a kind of finding, not a password
    #: An insecure pattern in source code (bandit).
    CODE = "code"


#: The ignore-file section that may accept each kind of finding. trivy's format has no section
#: for source-code checks, so bandit's test ids sit with the other rule ids under
#: ``misconfigurations``.
SECTION_OF: Mapping[Kind, str] = {
    Kind.VULN: "vulnerabilities",
    Kind.MISCONFIG: "misconfigurations",
    Kind.SECRET: "secrets",
    Kind.CODE: "misconfigurations",
}
_SECTIONS = ("vulnerabilities", "misconfigurations", "secrets", "licenses")
_ENTRY_KEYS = {"id", "statement", "expired_at", "paths"}


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One problem one tool reported."""

    #: The tool that reported it: ``trivy``, ``hadolint``, ``bandit``, ``compose-lint``, ...
    tool: str
    kind: Kind
    #: The tool's identifier: CVE-2024-1234, DS-0002, DL3002, B602, CL-0002, PYSEC-...
    id: str
    severity: Severity
    title: str
    #: Where it was found: a repository-relative file, or trivy's target inside an image.
    target: str
    line: int | None = None
    package: str = ""
    installed: str = ""
    fixed: str = ""
    #: File of the package inside an image (trivy's PkgPath); ignore ``paths`` match it too.
    package_path: str = ""
    #: Other identifiers of the same finding (trivy's AVDID, pip-audit's CVE aliases).
    aliases: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        """The id and its aliases: an ignore entry may name any of them."""
        return (self.id, *self.aliases)

    @property
    def where(self) -> str:
        """``target:line``, or the package and version for a vulnerability."""
        if self.package:
            return f"{self.package} {self.installed}".strip()
        return f"{self.target}:{self.line}" if self.line is not None else self.target

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping, severity and kind as their names."""
        return {
            "tool": self.tool,
            "kind": str(self.kind),
            "id": self.id,
            "severity": self.severity.name,
            "title": self.title,
            "target": self.target,
            "line": self.line,
            "package": self.package,
            "installed": self.installed,
            "fixed": self.fixed,
            "package_path": self.package_path,
            "aliases": list(self.aliases),
        }


def blocking(findings: Iterable[Finding], gate: Severity) -> list[Finding]:
    """The findings at or above ``gate`` (the default gate HIGH means HIGH and CRITICAL)."""
    return [f for f in findings if f.severity >= gate]


@dataclass(frozen=True, kw_only=True)
class IgnoreEntry:
    """One accepted risk: which finding, why, until when, and optionally in which files."""

    section: str
    id: str
    statement: str
    expired_at: date
    paths: tuple[str, ...] = ()

    def expired(self, today: date) -> bool:
        """True from ``expired_at`` on: trivy treats the date as midnight UTC starting that day."""
        return today >= self.expired_at

    def matches(self, finding: Finding) -> bool:
        """True when this entry names ``finding`` (by id or alias, section and path)."""
        if SECTION_OF[finding.kind] != self.section or self.id not in finding.ids:
            return False
        if not self.paths:
            return True
        candidates = [p for p in (finding.target, finding.package_path) if p]
        return any(_glob(pattern).fullmatch(p) for pattern in self.paths for p in candidates)


@dataclass(frozen=True, kw_only=True)
class Ignored:
    """A finding an unexpired ignore entry accepted, with that entry's reason and expiry."""

    finding: Finding
    reason: str
    until: date

    def to_json(self) -> dict[str, object]:
        """The finding's mapping plus ``reason`` and ``until``."""
        return {**self.finding.to_json(), "reason": self.reason, "until": self.until.isoformat()}


@dataclass(frozen=True, kw_only=True)
class IgnorePolicy:
    """The accepted risks read from one ignore file."""

    source: Path | None = None
    entries: tuple[IgnoreEntry, ...] = ()

    @classmethod
    def load(cls, path: Path) -> IgnorePolicy:
        """Read ``path`` (trivy's ``.trivyignore.yaml`` format); a missing file accepts nothing.

        An entry without ``statement`` or ``expired_at``, an unknown section or key, or a date
        that is not ``YYYY-MM-DD`` raises :class:`AuditError` naming the entry.
        """
        if not path.is_file():
            logger.info("no ignore file at %s: no risk is accepted", path)
            return cls(source=None)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise AuditError(f"{path} is not valid YAML: {error}") from None
        if data is None:
            return cls(source=path)
        if not isinstance(data, dict):
            raise AuditError(
                f"{path} must be a mapping of {', '.join(_SECTIONS)}; got {type(data).__name__}"
            )
        entries: list[IgnoreEntry] = []
        for section, items in data.items():
            if section not in _SECTIONS:
                raise AuditError(
                    f"{path}: unknown section {section!r}; expected one of {', '.join(_SECTIONS)}"
                )
            if items is None:
                continue
            if not isinstance(items, list):
                raise AuditError(f"{path}: {section} must be a list of entries")
            entries.extend(_entry(path, section, index, item) for index, item in enumerate(items))
        return cls(source=path, entries=tuple(entries))

    def expired(self, today: date) -> list[IgnoreEntry]:
        """The entries whose date has come: each one fails the audit until renewed or removed."""
        return [e for e in self.entries if e.expired(today)]

    def apply(
        self, findings: Iterable[Finding], *, today: date
    ) -> tuple[list[Finding], list[Ignored]]:
        """Split ``findings`` into those still active and those an unexpired entry accepts."""
        valid = [e for e in self.entries if not e.expired(today)]
        active: list[Finding] = []
        ignored: list[Ignored] = []
        for finding in findings:
            entry = next((e for e in valid if e.matches(finding)), None)
            if entry is None:
                active.append(finding)
            else:
                ignored.append(
                    Ignored(finding=finding, reason=entry.statement, until=entry.expired_at)
                )
        return active, ignored


def _entry(path: Path, section: str, index: int, item: object) -> IgnoreEntry:
    if not isinstance(item, dict):
        raise AuditError(
            f"{path}: {section}[{index}] must be a mapping with id, statement, expired_at"
        )
    ident = item.get("id")
    name = f"{section}[{index}]" + (f" ({ident})" if ident else "")
    unknown = sorted(set(item) - _ENTRY_KEYS)
    if unknown:
        # purls (trivy's package filter) is refused rather than skipped: ignoring it would
        # widen the entry to every package with that id.
        raise AuditError(
            f"{path}: {name} has unsupported key(s) {', '.join(map(str, unknown))}; "
            f"use only {', '.join(sorted(_ENTRY_KEYS))}"
        )
    if not isinstance(ident, str) or not ident.strip():
        raise AuditError(f"{path}: {name} needs an id (the CVE, check or rule id to accept)")
    statement = item.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise AuditError(f"{path}: {name} needs a statement: say why this risk is accepted")
    if item.get("expired_at") is None:
        raise AuditError(
            f"{path}: {name} needs expired_at: YYYY-MM-DD, the day the acceptance lapses"
        )
    expired_at = _date(item["expired_at"])
    if expired_at is None:
        raise AuditError(
            f"{path}: {name} expired_at must be a date YYYY-MM-DD, got {item['expired_at']!r}"
        )
    paths = item.get("paths") or []
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise AuditError(f"{path}: {name} paths must be a list of file globs")
    return IgnoreEntry(
        section=section,
        id=ident.strip(),
        statement=statement.strip(),
        expired_at=expired_at,
        paths=tuple(paths),
    )


def _date(value: object) -> date | None:
    # YAML reads an unquoted 2025-01-31 as a date, a quoted one as a string; accept both.
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


@functools.cache
def _glob(pattern: str) -> re.Pattern[str]:
    """trivy's path globs: ``**`` crosses directories, ``*`` and ``?`` stay within one."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))
