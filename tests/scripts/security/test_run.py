"""The security step's options, WAF section, report files and gate (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.core.checks import Check
from scripts.core.errors import GateFailed, ParamError, ReportError
from scripts.security import run as security
from scripts.security.headers import grade_findings
from scripts.security.run import SecurityOptions, SecurityReport, waf_section
from tests.tunnel.rules import BLOCK, LIMIT
from tunnel.spec import TunnelSpec, load_spec
from tunnel.waf import FirewallRule

MIB = 1 << 20


def spec(custom: tuple[FirewallRule, ...], limits: tuple[FirewallRule, ...] = ()) -> TunnelSpec:
    return TunnelSpec(
        tunnel="t",
        zone="example.com",
        hostname="app.example.com",
        service="http://app:8080",
        custom_rules=custom,
        rate_limits=limits,
    )


def report() -> SecurityReport:
    return SecurityReport(
        target="zpsec at http://127.0.0.1:18300 (throwaway)",
        image="zeroport:abc",
        platform="Linux x86_64",
        started="2026-01-01T00:00:00Z",
    )


def test_options_from_the_command_line() -> None:
    options = SecurityOptions.from_vars({"fresh": "1", "min_grade": "B", "fresh_port": "18399"})
    assert (options.fresh, options.min_grade, options.fresh_port) == (True, "B", 18399)
    assert SecurityOptions.from_vars({}) == SecurityOptions()


@pytest.mark.parametrize(
    ("name", "value"),
    [("fresh", "maybe"), ("min_grade", "A++"), ("fresh_port", "80"), ("slow_connections", "-1")],
)
def test_a_bad_option_names_itself(name: str, value: str) -> None:
    with pytest.raises(ParamError, match=f"^{name} must be"):
        SecurityOptions.from_vars({name: value})


def test_the_projects_waf_rules_pass_and_are_listed() -> None:
    result = report()
    checks = waf_section(result, load_spec(security.TUNNEL_SPEC))
    assert all(check.ok for check in checks)
    assert {rule["id"] for rule in result.waf_rules} >= {"block-dotfiles", "per-ip"}
    titles = {check.id: check.title for check in checks}
    assert titles["WAF-http_request_firewall_custom.block-dotfiles.description"] == (
        "block-dotfiles: has a description"
    )
    assert titles["WAF-http_ratelimit.per-ip.ratelimit.period"] == (
        "per-ip: valid rate-limit period"
    )


def test_a_rule_without_description_or_with_a_wrong_action_fails() -> None:
    sloppy = FirewallRule(id="x", description=" ", expression="true", action="allow")
    failed = [c.id for c in waf_section(report(), spec((BLOCK, sloppy))) if not c.ok]
    assert failed == [
        "WAF-http_request_firewall_custom.x.description",
        "WAF-http_request_firewall_custom.x.action",
    ]


def test_a_rate_limit_before_a_custom_rule_fails() -> None:
    checks = waf_section(report(), spec((LIMIT, BLOCK)))
    order = next(check for check in checks if check.id == "WAF-RATE-LIMITS-LAST")
    assert not order.ok
    assert order.evidence == "rate-limit > custom"
    assert next(c for c in waf_section(report(), spec((BLOCK,), (LIMIT,))) if c.id == order.id).ok


def test_the_report_files_and_the_gate(tmp_path: Path) -> None:
    result = report()
    result.sections["image"] = [Check(id="IMG-USER", title="non-root", ok=True, evidence="1000")]
    result.sections["attacks"] = [
        Check(id="ATK-TRACE", title="TRACE | 405", ok=True, evidence="405"),
        Check(id="ATK-SMUGGLE-CL-TE", title="CL.TE", ok=False, evidence="405 then 404"),
    ]
    result.grades["GET / (200)"] = grade_findings([])
    waf_section(result, spec((BLOCK,), (LIMIT,)))
    result.write(tmp_path / "report.json", tmp_path / "report.md")

    data = security.read_report(tmp_path / "report.json")
    assert data["passed"] is False
    assert data["counts"] == {"checks": 3, "failed": 1}
    assert data["sections"]["attacks"][1] == {  # type: ignore[index]
        "id": "ATK-SMUGGLE-CL-TE",
        "title": "CL.TE",
        "ok": False,
        "evidence": "405 then 404",
    }
    assert "doit deploy mode=tunnel" in str(data["edge_testing"])
    page = (tmp_path / "report.md").read_text()
    assert "**FAIL**: 2 of 3 checks passed. Failed: ATK-SMUGGLE-CL-TE." in page
    assert "| `ATK-TRACE` TRACE \\| 405 | pass | 405 |" in page
    assert "GET / (200): **A+** (100/100)" in page
    assert "| api | http_ratelimit | block | API burst |" in page
    assert "Edge testing (manual)" in page

    with pytest.raises(GateFailed) as failure:
        result.raise_for_failures()
    assert str(failure.value).startswith("security: 1 of 3 checks failed: ATK-SMUGGLE-CL-TE;")


def test_a_clean_report_passes_the_gate() -> None:
    result = report()
    result.sections["image"] = [Check(id="IMG-USER", title="non-root", ok=True, evidence="1000")]
    result.raise_for_failures()
    assert result.passed


def test_reading_a_missing_or_foreign_report_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="doit security"):
        security.read_report(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ReportError, match="not a security report"):
        security.read_report(tmp_path / "other.json")


def test_every_security_variable_is_declared_once_and_read() -> None:
    values = {
        "fresh": "1",
        "fresh_port": "18400",
        "min_grade": "B",
        "slow_connections": "10",
        "burst_connections": "20",
        "churn_clients": "30",
        "isolation": "0",
    }
    assert set(security.VARIABLES) == set(values)
    options = SecurityOptions.from_vars(values)
    assert (options.fresh, options.fresh_port, options.min_grade, options.isolation) == (
        True,
        18400,
        "B",
        False,
    )
    assert (options.slow_connections, options.burst_connections, options.churn_clients) == (
        10,
        20,
        30,
    )
