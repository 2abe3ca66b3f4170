"""Grading a live response's headers against the OWASP Secure Headers recommendations.

The rules are drHEADer's default ruleset (``drheaderplus`` on PyPI), which encodes the OWASP
Secure Headers Project's recommended values: HSTS of at least 180 days with includeSubDomains,
a CSP without unsafe sources and with ``default-src 'none'|'self'``, ``X-Content-Type-Options:
nosniff``, ``X-Frame-Options: DENY``, a strict Referrer-Policy, ``Cache-Control: no-store,
max-age=0``, ``X-Permitted-Cross-Domain-Policies: none``, ``X-XSS-Protection: 0``, the
cross-origin policies, and no ``Server``/``X-Powered-By`` and the like.

Each violation costs points by its severity (the ruleset's own: high, medium, low), and the
score maps to a letter. The letter is part of the report and of the gate
(``doit security min_grade=A``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from scripts.core.checks import Check, listing
from scripts.core.errors import ParamError

#: Points a violation costs, by the ruleset's severity.
PENALTY = {"high": 20, "medium": 10, "low": 5}
#: Letters from best to worst, each with the lowest score that earns it.
GRADES: tuple[tuple[str, int], ...] = (
    ("A+", 100),
    ("A", 90),
    ("B", 80),
    ("C", 70),
    ("D", 60),
    ("F", 0),
)


@dataclass(frozen=True, kw_only=True)
class HeaderFinding:
    """One recommendation a response does not follow."""

    rule: str
    severity: str
    message: str
    value: str = ""
    expected: str = ""

    def describe(self) -> str:
        """``Cache-Control (high): ...; expected no-store, max-age=0; got no-store``."""
        text = f"{self.rule} ({self.severity}): {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.value:
            text += f"; got {self.value}"
        return text


@dataclass(frozen=True, kw_only=True)
class Grade:
    """A response's score, letter and the findings behind them."""

    letter: str
    score: int
    findings: tuple[HeaderFinding, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The grade as JSON-ready data."""
        return {
            "letter": self.letter,
            "score": self.score,
            "findings": [finding.describe() for finding in self.findings],
        }


def letter(score: int) -> str:
    """The letter a score earns."""
    return next(name for name, lowest in GRADES if score >= lowest)


def rank(grade_letter: str) -> int:
    """Position of a letter from the best (0); :class:`ParamError` for an unknown one."""
    names = [name for name, _ in GRADES]
    if grade_letter not in names:
        raise ParamError("min_grade", grade_letter, "one of " + ", ".join(names))
    return names.index(grade_letter)


def meets(grade_letter: str, minimum: str) -> bool:
    """True when ``grade_letter`` is ``minimum`` or better."""
    return rank(grade_letter) <= rank(minimum)


def grade_findings(findings: Sequence[HeaderFinding]) -> Grade:
    """Score ``findings``: 100 less each one's penalty, never below 0."""
    score = max(0, 100 - sum(PENALTY.get(f.severity, PENALTY["high"]) for f in findings))
    return Grade(letter=letter(score), score=score, findings=tuple(findings))


def analyse(headers: Sequence[tuple[str, str]]) -> list[HeaderFinding]:
    """drHEADer's default (OWASP) rules applied to a response's headers."""
    from drheader.core import Drheader  # imports requests: loaded only when a grade is asked

    merged: dict[str, object] = {}
    cookies: list[str] = []
    for name, value in headers:
        if name.lower() == "set-cookie":
            cookies.append(value)
        elif name in merged:
            merged[name] = f"{merged[name]}, {value}"
        else:
            merged[name] = value
    if cookies:
        merged["set-cookie"] = cookies
    with _root_logger_kept():
        report = Drheader(headers=merged).analyze()
    return [
        HeaderFinding(
            rule=item.rule,
            severity=item.severity.lower(),
            message=item.message,
            value=item.value or "",
            expected=", ".join(item.expected or []),
        )
        for item in report
    ]


@contextmanager
def _root_logger_kept() -> Iterator[None]:
    """drHEADer logs through ``logging.info()``, which configures the root logger when it has
    no handler; every later pipeline line would then print twice. A NullHandler meanwhile
    keeps the root logger as it was."""
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        yield
    finally:
        root.removeHandler(guard)


def grade_headers(headers: Sequence[tuple[str, str]]) -> Grade:
    """The grade of one response's headers."""
    return grade_findings(analyse(headers))


def grade_check(what: str, grade: Grade, minimum: str) -> Check:
    """The report's check for one graded response: it passes at ``minimum`` or better."""
    found = [finding.describe() for finding in grade.findings]
    return Check(
        id=f"HDR-GRADE[{what}]",
        title=f"OWASP secure headers grade {minimum} or better",
        ok=meets(grade.letter, minimum),
        evidence=f"{grade.letter} ({grade.score}/100); "
        + (listing(found, limit=12) if found else "no finding"),
    )
