"""Teardown against the local Cloudflare API: exactly what the project made goes, and only that."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tunnel.api_server import ACCOUNT_ID, ZONE_ID, CloudflareApi
from tunnel.destroy import destroy
from tunnel.errors import Conflict, ProvisionError
from tunnel.provision import ProvisionReport, provision
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec
from tunnel.waf import CUSTOM_PHASE, RATELIMIT_PHASE

HAND_MADE = {
    "description": "someone's own rule",
    "expression": "ip.src eq 198.51.100.7",
    "action": "block",
}


def teardown(spec: TunnelSpec, **kwargs: Any) -> ProvisionReport:
    return destroy(spec, CloudflareSettings.from_env(), **kwargs)


@pytest.fixture
def provisioned(api: CloudflareApi, spec: TunnelSpec, tmp_path: Path) -> CloudflareApi:
    """The account after ``doit tunnel``, with things of others beside the project's."""
    api.add_rule(CUSTOM_PHASE, HAND_MADE)
    api.add_tunnel("someone-elses")
    api.add_record("TXT", "app.example.com", "v=spf1 -all")
    api.add_record("A", "www.example.com", "192.0.2.10")
    provision(spec, CloudflareSettings.from_env(), token_file=tmp_path / "tunnel-token")
    api.requests.clear()
    return api


def test_destroy_removes_exactly_what_the_project_made(
    provisioned: CloudflareApi, spec: TunnelSpec
) -> None:
    api = provisioned
    tunnel_id = next(t["id"] for t in api.live_tunnels() if t["name"] == "zeroport")
    hand_made = api.phases[CUSTOM_PHASE]["rules"][0]
    cname = next(r["id"] for r in api.records if r["type"] == "CNAME")

    report = teardown(spec)

    assert [(r.method, r.path) for r in api.writes] == [
        ("DELETE", f"/zones/{ZONE_ID}/dns_records/{cname}"),
        ("PUT", f"/zones/{ZONE_ID}/rulesets/phases/{CUSTOM_PHASE}/entrypoint"),
        ("PUT", f"/zones/{ZONE_ID}/rulesets/phases/{RATELIMIT_PHASE}/entrypoint"),
        ("DELETE", f"/accounts/{ACCOUNT_ID}/cfd_tunnel/{tunnel_id}/connections"),
        ("DELETE", f"/accounts/{ACCOUNT_ID}/cfd_tunnel/{tunnel_id}"),
    ]
    assert [t["name"] for t in api.live_tunnels()] == ["someone-elses"]
    assert sorted((r["type"], r["name"]) for r in api.records) == [
        ("A", "www.example.com"),
        ("TXT", "app.example.com"),
    ]
    assert api.phases[CUSTOM_PHASE]["rules"] == [hand_made]  # untouched: same id and version
    assert api.phases[RATELIMIT_PHASE]["rules"] == []
    assert report.changes[-1] == f"deleted tunnel 'zeroport' ({tunnel_id})"


def test_a_second_destroy_finds_nothing_and_writes_nothing(
    provisioned: CloudflareApi, spec: TunnelSpec
) -> None:
    teardown(spec)
    provisioned.requests.clear()

    report = teardown(spec)

    assert provisioned.writes == []
    assert report.changes == []
    assert "ok: no tunnel named 'zeroport'" in report.lines()
    assert report.lines()[-1] == "nothing to change"


def test_a_dry_run_lists_the_removals_and_writes_nothing(
    provisioned: CloudflareApi, spec: TunnelSpec
) -> None:
    tunnel_id = next(t["id"] for t in provisioned.live_tunnels() if t["name"] == "zeroport")

    report = teardown(spec, dry_run=True)

    assert provisioned.writes == []
    assert report.lines()[:5] == [
        f"would change: delete CNAME app.example.com -> {tunnel_id}.cfargotunnel.com",
        "would change: http_request_firewall_custom: delete zeroport_block-dotfiles, "
        "zeroport_challenge-metrics",
        "would change: http_ratelimit: delete zeroport_per-ip",
        f"would change: clean up the connections of tunnel 'zeroport' ({tunnel_id})",
        f"would change: delete tunnel 'zeroport' ({tunnel_id})",
    ]
    assert "ok: 1 other DNS record(s) at app.example.com (TXT) stay" in report.lines()


def test_a_running_connector_is_disconnected_before_the_tunnel_goes(
    provisioned: CloudflareApi, spec: TunnelSpec
) -> None:
    provisioned.connect("zeroport")

    teardown(spec)

    assert [t["name"] for t in provisioned.live_tunnels()] == ["someone-elses"]


def test_a_destroy_that_failed_half_way_is_finished_by_the_next(
    provisioned: CloudflareApi, spec: TunnelSpec
) -> None:
    provisioned.fail("DELETE", r"/accounts/.*/cfd_tunnel/[^/]+", status=400, code=1022)

    with pytest.raises(ProvisionError) as caught:
        teardown(spec)
    assert caught.value.done[0].startswith("deleted CNAME app.example.com")
    assert "zeroport" in [t["name"] for t in provisioned.live_tunnels()]

    report = teardown(spec)

    assert [c.split(" (")[0] for c in report.changes] == [
        "cleaned up the connections of tunnel 'zeroport'",
        "deleted tunnel 'zeroport'",
    ]
    assert [t["name"] for t in provisioned.live_tunnels()] == ["someone-elses"]


def test_a_locally_managed_tunnel_of_the_same_name_stays(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    api.add_tunnel("zeroport", config_src="local")

    report = teardown(spec)

    assert api.writes == []
    assert [t["name"] for t in api.live_tunnels()] == ["zeroport"]
    assert any(
        "is not remotely managed, so this project did not create it" in line
        for line in report.lines()
    )


def test_a_cname_someone_else_made_at_the_hostname_stays(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    api.add_record("CNAME", "app.example.com", "elsewhere.example.net", proxied=True)

    teardown(spec)

    assert api.writes == []
    assert [r["content"] for r in api.records] == ["elsewhere.example.net"]


def test_a_connector_that_reconnects_is_named_with_the_fix(
    provisioned: CloudflareApi, spec: TunnelSpec
) -> None:
    provisioned.fail(
        "DELETE",
        r"/accounts/.*/cfd_tunnel/[^/]+",
        status=400,
        code=1022,
        message="Cannot delete a tunnel with active connections",
    )

    with pytest.raises(Conflict, match=r"stop cloudflared \(doit down mode=tunnel\) and run"):
        teardown(spec)
