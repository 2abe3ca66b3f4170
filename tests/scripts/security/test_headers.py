"""Header grading: drHEADer's OWASP rules mapped to a score, a letter and a gate check."""

from __future__ import annotations

import logging

import pytest

from scripts.core.errors import ParamError
from scripts.security.headers import (
    HeaderFinding,
    analyse,
    grade_check,
    grade_findings,
    grade_headers,
    letter,
    meets,
)

#: Every header the OWASP Secure Headers Project recommends, with its recommended value.
OWASP = [
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
    (
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store, max-age=0"),
    ("X-Permitted-Cross-Domain-Policies", "none"),
    ("X-XSS-Protection", "0"),
]


def finding(severity: str) -> HeaderFinding:
    return HeaderFinding(rule="X", severity=severity, message="m")


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        ([], ("A+", 100)),
        (["low"], ("A", 95)),
        (["low", "low"], ("A", 90)),
        (["medium"], ("A", 90)),
        (["high"], ("B", 80)),
        (["high", "low", "low"], ("C", 70)),
        (["high", "medium", "low"], ("D", 65)),
        (["high"] * 6, ("F", 0)),
    ],
)
def test_score_and_letter_follow_the_severities(
    severities: list[str], expected: tuple[str, int]
) -> None:
    grade = grade_findings([finding(s) for s in severities])
    assert (grade.letter, grade.score) == expected


def test_letters_are_ordered_and_unknown_ones_refused() -> None:
    assert letter(59) == "F"
    assert meets("A+", "A")
    assert meets("A", "A")
    assert not meets("B", "A")
    with pytest.raises(ParamError, match="min_grade must be one of A\\+, A, B"):
        meets("A", "Z")


def test_all_owasp_recommendations_grade_a_plus() -> None:
    grade = grade_headers(OWASP)
    assert grade.findings == ()
    assert grade.letter == "A+"


def test_a_missing_hsts_and_a_server_header_cost_their_severity() -> None:
    headers = [h for h in OWASP if h[0] != "Strict-Transport-Security"]
    headers.append(("Server", "hypercorn-h11"))
    found = {(f.rule, f.severity) for f in analyse(headers)}
    assert found == {("Strict-Transport-Security", "high"), ("Server", "medium")}
    assert grade_headers(headers).score == 70


def test_cache_control_without_max_age_is_a_high_finding() -> None:
    """Headers as app/headers.py set them when this was written: no-store alone, two missing."""
    headers = [
        h for h in OWASP if h[0] not in {"X-Permitted-Cross-Domain-Policies", "X-XSS-Protection"}
    ]
    headers = [("Cache-Control", "no-store") if h[0] == "Cache-Control" else h for h in headers]
    grade = grade_headers(headers)
    assert grade.letter == "C"
    assert "Cache-Control (high)" in grade.findings[0].describe()
    assert "expected no-store, max-age=0; got no-store" in grade.findings[0].describe()


def test_the_check_passes_at_the_minimum_grade_and_lists_the_findings() -> None:
    grade = grade_findings([finding("low")])
    assert grade_check("GET /", grade, "A").ok
    failing = grade_check("GET /", grade_findings([finding("high")]), "A")
    assert not failing.ok
    assert failing.id == "HDR-GRADE[GET /]"
    assert failing.evidence.startswith("B (80/100); X (high): m")


def test_grading_leaves_the_root_logger_unconfigured() -> None:
    """drHEADer's ``logging.info()`` would otherwise install a root handler: doubled lines."""
    root = logging.getLogger()
    kept = list(root.handlers)  # pytest's own capture handlers: off while this runs
    for handler in kept:
        root.removeHandler(handler)
    try:
        grade_headers(OWASP)
        assert root.handlers == []
    finally:
        for handler in kept:
            root.addHandler(handler)
