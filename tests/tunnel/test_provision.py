"""Provisioning against the local Cloudflare API, through the SDK and CLOUDFLARE_BASE_URL."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.tunnel.api_server import (
    ACCOUNT_ID,
    BEYOND_RETRIES,
    ZONE_ID,
    CloudflareApi,
    serve,
)
from tests.tunnel.rules import CHALLENGE_BURST
from tunnel.errors import (
    ApiUnavailable,
    Conflict,
    PermissionDenied,
    PlanRefused,
    ProvisionError,
    RateLimited,
    ZoneNotFound,
)
from tunnel.provision import ProvisionReport, provision, write_secret
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec
from tunnel.waf import CUSTOM_PHASE, RATELIMIT_PHASE, FirewallRule, RateLimit

CUSTOM_PATH = f"/zones/{ZONE_ID}/rulesets/phases/{CUSTOM_PHASE}/entrypoint"
RATELIMIT_PATH = f"/zones/{ZONE_ID}/rulesets/phases/{RATELIMIT_PHASE}/entrypoint"
FOREIGN_CUSTOM = {
    "description": "someone's own rule",
    "expression": "ip.src eq 198.51.100.7",
    "action": "block",
}
FOREIGN_LIMIT = {
    "description": "someone's own rate limit",
    "expression": 'starts_with(http.request.uri.path, "/login")',
    "action": "block",
    "ratelimit": {
        "characteristics": ["cf.colo.id", "ip.src"],
        "period": 10,
        "requests_per_period": 5,
        "mitigation_timeout": 10,
    },
}


def run(spec: TunnelSpec, tmp_path: Path | None = None, **kwargs: Any) -> ProvisionReport:
    """One provisioning run configured from the environment, as the CLI and doit run it."""
    if tmp_path is not None:
        kwargs.setdefault("token_file", tmp_path / "secrets" / "tunnel-token")
    return provision(spec, CloudflareSettings.from_env(), **kwargs)


def calls(api: CloudflareApi) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in api.requests]


def test_a_free_zone_and_an_empty_account_get_everything_in_order(
    api: CloudflareApi, spec: TunnelSpec, tmp_path: Path
) -> None:
    report = run(spec, tmp_path)

    (tunnel,) = api.live_tunnels()
    tunnel_id = tunnel["id"]
    assert calls(api) == [
        # reads: zone (with plan), tunnel, DNS, both phases
        ("GET", "/zones"),
        ("GET", f"/accounts/{ACCOUNT_ID}/cfd_tunnel"),
        ("GET", f"/zones/{ZONE_ID}/dns_records"),
        ("GET", CUSTOM_PATH),
        ("GET", RATELIMIT_PATH),
        # writes: tunnel and token first, then ingress, DNS, rules
        ("POST", f"/accounts/{ACCOUNT_ID}/cfd_tunnel"),
        ("GET", f"/accounts/{ACCOUNT_ID}/cfd_tunnel/{tunnel_id}/token"),
        ("PUT", f"/accounts/{ACCOUNT_ID}/cfd_tunnel/{tunnel_id}/configurations"),
        ("POST", f"/zones/{ZONE_ID}/dns_records"),
        ("PUT", CUSTOM_PATH),
        ("PUT", RATELIMIT_PATH),
    ]
    assert api.requests[0].query == {"name": "example.com", "account.id": ACCOUNT_ID}
    assert api.requests[1].query == {"name": "zeroport", "is_deleted": "false"}
    assert api.requests[2].query == {"name.exact": "app.example.com"}
    assert api.requests[5].body == {"name": "zeroport", "config_src": "cloudflare"}
    assert tunnel["remote_config"] is True
    assert api.configs[tunnel_id]["config"] == {
        "ingress": [
            {
                "hostname": "app.example.com",
                "service": "http://app:8080",
                "originRequest": {"connectTimeout": 10, "keepAliveTimeout": 90},
            },
            {"service": "http_status:404"},
        ]
    }
    (record,) = api.records
    assert (record["type"], record["name"], record["content"], record["proxied"]) == (
        "CNAME",
        "app.example.com",
        f"{tunnel_id}.cfargotunnel.com",
        True,
    )
    assert record["comment"] == "zeroport: tunnel zeroport"
    assert [r["ref"] for r in api.phases[CUSTOM_PHASE]["rules"]] == [
        "zeroport_block-dotfiles",
        "zeroport_challenge-metrics",
    ]
    (limit,) = api.phases[RATELIMIT_PHASE]["rules"]
    assert limit["ref"] == "zeroport_per-ip"
    assert limit["ratelimit"] == {
        "characteristics": ["cf.colo.id", "ip.src"],
        "period": 10,
        "requests_per_period": 50,
        "mitigation_timeout": 10,
    }
    token_file = tmp_path / "secrets" / "tunnel-token"
    assert token_file.read_text() == api.token_of("zeroport")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert report.tunnel_id == tunnel_id
    assert report.changes[0].startswith("created tunnel 'zeroport'")
    assert report.changes[1] == f"wrote the tunnel token to {token_file} (mode 0600)"
    assert len(report.changes) == 6
    assert "ok: every rule fits the zone's plan (Free Website)" in report.lines()


def test_a_second_run_makes_zero_writes(
    api: CloudflareApi, spec: TunnelSpec, tmp_path: Path
) -> None:
    run(spec, tmp_path)
    api.requests.clear()

    report = run(spec, tmp_path)

    assert api.writes == []
    assert report.changes == []
    assert report.lines()[-1] == "nothing to change"
    assert f"ok: tunnel token in {tmp_path / 'secrets' / 'tunnel-token'} is current" in (
        report.lines()
    )


def test_a_rule_with_a_zero_field_settles(
    api: CloudflareApi, spec: TunnelSpec, tmp_path: Path
) -> None:
    # Challenge actions need mitigation_timeout 0 below Enterprise, and the API leaves that
    # zero out of its answers: the comparison must not see a change on every run.
    spec = replace(spec, rate_limits=(CHALLENGE_BURST,))
    run(spec, tmp_path)
    assert "mitigation_timeout" not in api.phases[RATELIMIT_PHASE]["rules"][0]["ratelimit"]
    api.requests.clear()

    report = run(spec, tmp_path)

    assert api.writes == []
    assert report.changes == []


def test_the_old_paid_plan_rule_is_refused_on_a_free_zone_with_zero_writes(
    api: CloudflareApi, spec: TunnelSpec, tmp_path: Path
) -> None:
    paid = FirewallRule(
        id="api-per-ip",
        description="At most 100 API requests per minute from one IP, then block for 10 minutes",
        expression='(http.host eq "app.example.com" and starts_with(http.request.uri.path, "/"))',
        action="block",
        ratelimit=RateLimit(period=60, requests_per_period=100, mitigation_timeout=600),
    )

    with pytest.raises(PlanRefused) as caught:
        run(replace(spec, rate_limits=(paid,)), tmp_path)

    assert api.writes == []
    assert not (tmp_path / "secrets" / "tunnel-token").exists()
    refusals = caught.value.refusals
    assert len(refusals) == 3
    assert refusals[0].startswith(
        "the Free plan refuses rate-limiting rule 'api-per-ip': period 60 s is not one it "
        "allows (10 s); set period: 10 in tunnel.yaml"
    )
    assert (
        "mitigation_timeout 600 s is not one it allows (10 s); set mitigation_timeout: 10"
        in (refusals[1])
    )
    assert "its expression uses http.host" in refusals[2]
    assert all("developers.cloudflare.com/waf/rate-limiting-rules" in r for r in refusals)
    assert str(caught.value).endswith("(and 2 more) (nothing was changed)")


def test_a_hand_made_rule_that_fills_the_plan_refuses_ours_with_zero_writes(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    api.add_rule(RATELIMIT_PHASE, FOREIGN_LIMIT)
    api.requests.clear()

    with pytest.raises(
        PlanRefused,
        match=r"allows 1 rate-limiting rule\(s\) in a zone, and this "
        r"run would leave 2 \(1 from tunnel.yaml, 1 already in the zone\)",
    ):
        run(spec)

    assert api.writes == []


def test_an_existing_locally_managed_tunnel_is_refused_with_zero_writes(
    api: CloudflareApi, spec: TunnelSpec, tmp_path: Path
) -> None:
    local = api.add_tunnel("zeroport", config_src="local")
    # As the docs' example shows it: remote_config false, and no config_src at all.
    assert local["remote_config"] is False
    assert "config_src" not in local

    with pytest.raises(Conflict, match=r"tunnel 'zeroport' \(.*\) is locally managed"):
        run(spec, tmp_path)

    assert api.writes == []
    assert api.configs == {}


@pytest.mark.parametrize(("kind", "content"), [("A", "192.0.2.1"), ("AAAA", "2001:db8::1")])
def test_an_address_record_at_the_hostname_is_refused_with_zero_writes(
    api: CloudflareApi, spec: TunnelSpec, kind: str, content: str
) -> None:
    api.add_record(kind, "app.example.com", content)

    with pytest.raises(Conflict) as caught:
        run(spec)

    assert api.writes == []
    assert str(caught.value).startswith(
        f"app.example.com already has a DNS {kind} record ({content}) that this project did "
        "not create"
    )


def test_a_cname_someone_else_made_is_refused_with_zero_writes(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    api.add_record("CNAME", "app.example.com", "elsewhere.example.net", proxied=True)

    with pytest.raises(Conflict, match=r"a DNS CNAME record \(elsewhere.example.net\)"):
        run(spec)

    assert api.writes == []


def test_our_cname_pointing_at_an_old_tunnel_is_corrected_in_place(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    old = api.add_record(
        "CNAME",
        "app.example.com",
        "0000.cfargotunnel.com",
        proxied=False,
        comment="zeroport: tunnel zeroport",
    )

    run(spec)

    (record,) = api.records
    tunnel_id = api.live_tunnels()[0]["id"]
    assert record["id"] == old["id"]
    assert (record["content"], record["proxied"]) == (f"{tunnel_id}.cfargotunnel.com", True)
    assert record["comment"] == "zeroport: tunnel zeroport"


@pytest.mark.parametrize(
    ("phase", "plan", "rule"),
    [(CUSTOM_PHASE, "free", FOREIGN_CUSTOM), (RATELIMIT_PHASE, "pro", FOREIGN_LIMIT)],
    ids=["custom", "ratelimit"],
)
def test_a_hand_made_rule_in_either_phase_is_kept_unchanged(
    api: CloudflareApi, spec: TunnelSpec, phase: str, plan: str, rule: dict[str, Any]
) -> None:
    api.plan = plan
    before = api.add_rule(phase, rule)["rules"][0]

    run(spec)
    run(spec)

    rules = api.phases[phase]["rules"]
    assert rules[0] == before  # same id, version and last_updated: never rewritten
    assert all(r["ref"].startswith("zeroport_") for r in rules[1:])
    assert len(rules) > 1


@pytest.mark.parametrize(
    ("method", "path", "status", "times", "applied", "error"),
    [
        ("POST", f"/zones/{ZONE_ID}/dns_records", 503, BEYOND_RETRIES, False, ApiUnavailable),
        ("PUT", RATELIMIT_PATH, 403, 1, False, PermissionDenied),
        ("PUT", r"/accounts/.*/configurations", 400, 1, False, ProvisionError),
        # The tunnel is created but the answer is lost; the SDK's retry then hears "you already
        # have a tunnel with this name".
        ("POST", r"/accounts/.*/cfd_tunnel", 502, 1, True, ProvisionError),
    ],
    ids=["dns-5xx-beyond-retries", "rules-403", "ingress-400", "tunnel-answer-lost"],
)
def test_a_failure_mid_way_then_a_rerun_converges(
    api: CloudflareApi,
    spec: TunnelSpec,
    tmp_path: Path,
    method: str,
    path: str,
    status: int,
    times: int,
    applied: bool,
    error: type[ProvisionError],
) -> None:
    api.fail(
        method, path, status=status, code=1000, message="injected", times=times, applied=applied
    )
    token_file = tmp_path / "secrets" / "tunnel-token"

    with pytest.raises(error) as caught:
        run(spec, tmp_path)
    if not applied:
        # Everything done before the failure is listed, starting with the tunnel...
        assert caught.value.done[0].startswith("created tunnel 'zeroport'")
        # ...and its token was written as soon as the tunnel existed.
        assert token_file.read_text() == api.token_of("zeroport")

    run(spec, tmp_path)
    api.requests.clear()
    assert run(spec, tmp_path).changes == []
    assert api.writes == []

    clean = CloudflareApi()
    with serve(clean) as base_url:
        settings = replace(CloudflareSettings.from_env(), base_url=base_url)
        provision(spec, settings, token_file=tmp_path / "clean-token")
    assert api.snapshot() == clean.snapshot()
    assert token_file.read_text() == api.token_of("zeroport")


def test_a_dry_run_lists_the_plan_and_writes_nothing(
    api: CloudflareApi, spec: TunnelSpec, tmp_path: Path
) -> None:
    report = run(spec, tmp_path, dry_run=True)

    assert api.writes == []
    assert not (tmp_path / "secrets").exists()
    assert report.lines()[:4] == [
        "would change: create tunnel 'zeroport' (remotely managed)",
        "would change: put remote ingress of 'zeroport': app.example.com -> http://app:8080, "
        "else http_status:404",
        "would change: create proxied CNAME app.example.com -> <new tunnel id>.cfargotunnel.com",
        "would change: http_request_firewall_custom: add zeroport_block-dotfiles (block): "
        "Block requests for dotfiles such as /.env and /.git/config",
    ]


def test_a_rule_dropped_from_the_spec_is_removed_and_others_stay(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    api.add_rule(CUSTOM_PHASE, FOREIGN_CUSTOM)
    run(spec)

    report = run(replace(spec, custom_rules=spec.custom_rules[:1]))

    refs = [r["ref"] for r in api.phases[CUSTOM_PHASE]["rules"]]
    assert refs[1:] == ["zeroport_block-dotfiles"]
    assert not refs[0].startswith("zeroport_")
    assert "remove zeroport_challenge-metrics (no longer in the spec)" in report.changes[0]


def test_a_changed_service_replaces_only_the_remote_ingress(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    run(spec)
    api.requests.clear()

    report = run(replace(spec, service="http://app:9090"))

    tunnel_id = api.live_tunnels()[0]["id"]
    assert [(r.method, r.path) for r in api.writes] == [
        ("PUT", f"/accounts/{ACCOUNT_ID}/cfd_tunnel/{tunnel_id}/configurations")
    ]
    assert api.configs[tunnel_id]["config"]["ingress"][0]["service"] == "http://app:9090"
    assert report.changes[0].startswith(
        "replaced the remote ingress of tunnel 'zeroport' (previous"
    )


def test_403_names_the_permissions_and_changes_nothing(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    api.fail("GET", "/zones", status=403, code=10000, message="Authentication error")

    with pytest.raises(PermissionDenied) as caught:
        run(spec)

    message = str(caught.value)
    assert "\n" not in message
    assert "HTTP 403" in message
    for permission in (
        "Account · Cloudflare Tunnel · Edit",
        "Zone · DNS · Edit",
        "Zone · Zone WAF · Edit",
    ):
        assert permission in message
    assert message.endswith("(nothing was changed)")
    assert api.writes == []


def test_429_says_to_wait(api: CloudflareApi, spec: TunnelSpec) -> None:
    settings = replace(CloudflareSettings.from_env(), max_retries=0)
    api.fail("GET", r"/accounts/.*/cfd_tunnel", status=429, code=971, message="Please wait")

    with pytest.raises(RateLimited, match=r"HTTP 429\); wait a few minutes"):
        provision(spec, settings)


def test_a_missing_zone_is_reported_before_any_write(api: CloudflareApi, spec: TunnelSpec) -> None:
    api.zone_name = "example.org"

    with pytest.raises(ZoneNotFound, match=r"zone 'example\.com' was not found in account"):
        run(spec)
    assert api.writes == []


def test_write_secret_tightens_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "token"
    target.write_text("same")
    target.chmod(0o644)

    assert write_secret(target, "same") is False
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert write_secret(target, "new") is True
    assert target.read_text() == "new"
