"""Provisioning against a fake Cloudflare API at the HTTP layer (the SDK's httpx client)."""

from __future__ import annotations

import copy
import json
import logging
import stat
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tunnel.errors import (
    ApiUnavailable,
    Conflict,
    PermissionDenied,
    ProvisionError,
    RateLimited,
    ZoneNotFound,
)
from tunnel.provision import make_client, provision, write_secret
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec, load_spec
from tunnel.waf import CUSTOM_PHASE, RATELIMIT_PHASE

ACCOUNT = "0123456789abcdef0123456789abcdef"
ZONE = "fedcba9876543210fedcba9876543210"
API_TOKEN = "A" * 20 + "b" * 20
TUNNEL_TOKEN = "eyJhIjoiMDEyMzQ1NiIsInQiOiJzZWNyZXQtdHVubmVsLXRva2VuIn0="
BASE = "/client/v4"
SPEC_FILE = Path(__file__).resolve().parents[2] / "tunnel.yaml"


def envelope(result: object, status: int = 200, **extra: object) -> httpx.Response:
    body = {"success": True, "errors": [], "messages": [], "result": result, **extra}
    return httpx.Response(status, json=body)


def failure(status: int, code: int, message: str) -> httpx.Response:
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": []}
    return httpx.Response(status, json=body, headers={"retry-after": "0"})


def page(items: list[dict[str, Any]]) -> httpx.Response:
    info = {"page": 1, "per_page": 20, "count": len(items), "total_count": len(items)}
    return envelope(items, result_info=info)


class FakeCloudflare:
    """Just enough of the v4 API, with its real paths and envelope, kept in memory."""

    def __init__(self) -> None:
        self.zones = [{"id": ZONE, "name": "example.com", "status": "active"}]
        self.tunnels: list[dict[str, Any]] = []
        self.configs: dict[str, dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []
        self.phases: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.failures: dict[tuple[str, str], httpx.Response] = {}

    @property
    def writes(self) -> list[tuple[str, str, Any]]:
        return [(m, p, body) for m, p, _, body in self.requests if m != "GET"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(BASE)
        body = json.loads(request.content) if request.content else None
        params = dict(request.url.params)
        self.requests.append((request.method, path, params, body))
        for (method, prefix), response in self.failures.items():
            if request.method == method and path.startswith(prefix):
                return response
        return self.route(request.method, path.strip("/").split("/"), params, body)

    def route(
        self, method: str, parts: list[str], params: dict[str, str], body: Any
    ) -> httpx.Response:
        match method, parts:
            case "GET", ["zones"]:
                return page([z for z in self.zones if z["name"] == params.get("name")])
            case "GET", ["accounts", _, "cfd_tunnel"]:
                found = [t for t in self.tunnels if t["name"] == params.get("name")]
                return page(found)
            case "POST", ["accounts", _, "cfd_tunnel"]:
                tunnel = {
                    "id": str(uuid.uuid4()),
                    "name": body["name"],
                    "config_src": body.get("config_src", "local"),
                    "created_at": "2026-01-01T00:00:00Z",
                    "deleted_at": None,
                    "status": "inactive",
                }
                self.tunnels.append(tunnel)
                return envelope(tunnel)
            case "GET", ["accounts", _, "cfd_tunnel", tunnel_id, "configurations"]:
                return envelope(self.configs.get(tunnel_id, {"tunnel_id": tunnel_id, "version": 0}))
            case "PUT", ["accounts", _, "cfd_tunnel", tunnel_id, "configurations"]:
                version = self.configs.get(tunnel_id, {}).get("version", 0) + 1
                stored = {
                    "tunnel_id": tunnel_id,
                    "version": version,
                    "config": body["config"],
                    "source": "cloudflare",
                }
                self.configs[tunnel_id] = stored
                return envelope(stored)
            case "GET", ["accounts", _, "cfd_tunnel", _, "token"]:
                return envelope(TUNNEL_TOKEN)
            case "GET", ["zones", _, "dns_records"]:
                return page([r for r in self.records if r["name"] == params.get("name.exact")])
            case "POST", ["zones", _, "dns_records"]:
                record = {"id": uuid.uuid4().hex, **body}
                self.records.append(record)
                return envelope(record)
            case "PUT", ["zones", _, "dns_records", record_id]:
                record = next(r for r in self.records if r["id"] == record_id)
                record.update(body)
                return envelope(record)
            case "GET", ["zones", _, "rulesets", "phases", phase, "entrypoint"]:
                if phase not in self.phases:
                    return failure(
                        404, 10003, f"could not find entrypoint ruleset in the {phase} phase"
                    )
                return envelope(self.phases[phase])
            case "PUT", ["zones", _, "rulesets", "phases", phase, "entrypoint"]:
                previous = self.phases.get(phase, {"id": uuid.uuid4().hex, "version": "0"})
                rules = []
                for rule in body["rules"]:
                    stored = {"id": rule.get("id") or uuid.uuid4().hex, "version": "1", **rule}
                    rules.append(stored)
                self.phases[phase] = {
                    "id": previous["id"],
                    "kind": "zone",
                    "name": "default",
                    "phase": phase,
                    "version": str(int(previous["version"]) + 1),
                    "rules": rules,
                }
                return envelope(self.phases[phase])
        return failure(400, 7003, f"no route for {method} /{'/'.join(parts)}")


@pytest.fixture
def spec() -> TunnelSpec:
    return load_spec(SPEC_FILE)


@pytest.fixture
def fake() -> FakeCloudflare:
    return FakeCloudflare()


def run(spec: TunnelSpec, fake: FakeCloudflare, **kwargs: Any) -> Any:
    settings = CloudflareSettings(api_token=API_TOKEN, account_id=ACCOUNT, max_retries=0)
    client = make_client(settings, http_client=httpx.Client(transport=httpx.MockTransport(fake)))
    return provision(spec, settings, client=client, **kwargs)


def test_first_run_sends_exactly_these_requests(
    spec: TunnelSpec, fake: FakeCloudflare, tmp_path: Path
) -> None:
    report = run(spec, fake, token_file=tmp_path / "secrets" / "tunnel-token")

    tunnel_id = fake.tunnels[0]["id"]
    calls = [(method, path) for method, path, _, _ in fake.requests]
    assert calls == [
        ("GET", "/zones"),
        ("GET", f"/accounts/{ACCOUNT}/cfd_tunnel"),
        ("GET", f"/zones/{ZONE}/dns_records"),
        ("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM_PHASE}/entrypoint"),
        ("GET", f"/zones/{ZONE}/rulesets/phases/{RATELIMIT_PHASE}/entrypoint"),
        ("POST", f"/accounts/{ACCOUNT}/cfd_tunnel"),
        ("PUT", f"/accounts/{ACCOUNT}/cfd_tunnel/{tunnel_id}/configurations"),
        ("POST", f"/zones/{ZONE}/dns_records"),
        ("PUT", f"/zones/{ZONE}/rulesets/phases/{CUSTOM_PHASE}/entrypoint"),
        ("PUT", f"/zones/{ZONE}/rulesets/phases/{RATELIMIT_PHASE}/entrypoint"),
        ("GET", f"/accounts/{ACCOUNT}/cfd_tunnel/{tunnel_id}/token"),
    ]
    queries = [params for _, _, params, _ in fake.requests[:3]]
    assert queries[0] == {"name": "example.com", "account.id": ACCOUNT}
    assert queries[1] == {"name": "zeroport", "is_deleted": "false"}
    assert queries[2] == {"name.exact": "app.example.com"}
    bodies = [body for _, _, body in fake.writes]
    assert bodies[0] == {"name": "zeroport", "config_src": "cloudflare"}
    assert bodies[1] == {
        "config": {
            "ingress": [
                {
                    "hostname": "app.example.com",
                    "service": "http://app:8080",
                    "originRequest": {"connectTimeout": 10, "keepAliveTimeout": 90},
                },
                {"service": "http_status:404"},
            ],
        }
    }
    assert bodies[2] == {
        "type": "CNAME",
        "name": "app.example.com",
        "content": f"{tunnel_id}.cfargotunnel.com",
        "proxied": True,
        "ttl": 1,
        "comment": "zeroport: tunnel zeroport",
    }
    assert [rule["ref"] for rule in bodies[3]["rules"]] == [
        "zeroport_block-dotfiles",
        "zeroport_challenge-metrics",
    ]
    assert bodies[3]["rules"][0] == {
        "ref": "zeroport_block-dotfiles",
        "description": "Block requests for dotfiles such as /.env and /.git/config",
        "expression": (
            '(http.host eq "app.example.com" and starts_with(http.request.uri.path, "/."))'
        ),
        "action": "block",
        "enabled": True,
    }
    assert bodies[4]["rules"] == [
        {
            "ref": "zeroport_api-per-ip",
            "description": (
                "At most 100 API requests per minute from one IP, then block for 10 minutes"
            ),
            "expression": (
                '(http.host eq "app.example.com" and starts_with(http.request.uri.path, "/api/"))'
            ),
            "action": "block",
            "enabled": True,
            "ratelimit": {
                "characteristics": ["cf.colo.id", "ip.src"],
                "period": 60,
                "requests_per_period": 100,
                "mitigation_timeout": 600,
            },
        }
    ]
    assert report.tunnel_id == tunnel_id
    assert len(report.changes) == 6


def test_second_run_writes_nothing(spec: TunnelSpec, fake: FakeCloudflare, tmp_path: Path) -> None:
    token_file = tmp_path / "tunnel-token"
    run(spec, fake, token_file=token_file)
    fake.requests.clear()

    report = run(spec, fake, token_file=token_file)

    assert fake.writes == []
    assert report.changes == []
    assert report.lines()[-1] == "nothing to change"


def test_dry_run_prints_the_plan_and_writes_nothing(
    spec: TunnelSpec, fake: FakeCloudflare, tmp_path: Path
) -> None:
    token_file = tmp_path / "tunnel-token"

    report = run(spec, fake, dry_run=True, token_file=token_file)

    assert fake.writes == []
    assert not token_file.exists()
    assert report.lines() == [
        "would change: create tunnel 'zeroport' (remotely managed)",
        "would change: put remote ingress of 'zeroport': app.example.com -> http://app:8080, "
        "else http_status:404",
        "would change: create proxied CNAME app.example.com -> <new tunnel id>.cfargotunnel.com",
        "would change: http_request_firewall_custom: add zeroport_block-dotfiles (block): "
        "Block requests for dotfiles such as /.env and /.git/config",
        "would change: http_request_firewall_custom: add zeroport_challenge-metrics "
        "(managed_challenge): Challenge anyone outside the office network who asks for /metrics",
        "would change: http_ratelimit: add zeroport_api-per-ip (block): At most 100 API "
        "requests per minute from one IP, then block for 10 minutes",
    ]


def test_rules_the_spec_does_not_own_are_kept_in_place(
    spec: TunnelSpec, fake: FakeCloudflare
) -> None:
    foreign = {
        "id": "f1",
        "ref": "f1",
        "version": "3",
        "last_updated": "2026-01-01T00:00:00Z",
        "description": "someone else's rule",
        "expression": "ip.src eq 198.51.100.7",
        "action": "block",
        "enabled": True,
    }
    stale = {
        "id": "s1",
        "ref": "zeroport_old-rule",
        "version": "1",
        "description": "a rule the spec dropped",
        "expression": "true",
        "action": "log",
        "enabled": True,
    }
    fake.phases[CUSTOM_PHASE] = {"id": "r1", "version": "7", "rules": [foreign, stale]}

    report = run(spec, fake, dry_run=True)
    assert (
        "would change: http_request_firewall_custom: remove zeroport_old-rule "
        "(no longer in the spec)" in report.lines()
    )
    assert (
        "would change: http_request_firewall_custom: keep 1 rules this spec does not own"
        in report.lines()
    )

    run(spec, fake)
    put = next(body for m, p, body in fake.writes if p.endswith(f"{CUSTOM_PHASE}/entrypoint"))
    refs = [rule["ref"] for rule in put["rules"]]
    assert refs == ["f1", "zeroport_block-dotfiles", "zeroport_challenge-metrics"]
    assert put["rules"][0] == {
        k: v for k, v in foreign.items() if k not in ("version", "last_updated")
    }


def test_changed_rule_is_updated_with_its_id(spec: TunnelSpec, fake: FakeCloudflare) -> None:
    run(spec, fake)
    ruleset = fake.phases[CUSTOM_PHASE]
    ruleset["rules"][0]["expression"] = "true"
    rule_id = ruleset["rules"][0]["id"]
    fake.requests.clear()

    report = run(spec, fake)

    assert report.changes[0].startswith(
        "replaced the http_request_firewall_custom rules (http_request_firewall_custom: "
        "update zeroport_block-dotfiles: expression"
    )
    put = fake.writes[0][2]
    assert put["rules"][0]["id"] == rule_id
    assert put["rules"][0]["expression"].startswith('(http.host eq "app.example.com"')


def test_wrong_cname_is_corrected(spec: TunnelSpec, fake: FakeCloudflare) -> None:
    run(spec, fake)
    record = fake.records[0]
    record["content"] = "elsewhere.example.net"
    fake.requests.clear()

    report = run(spec, fake)

    tunnel_id = fake.tunnels[0]["id"]
    assert fake.writes == [
        (
            "PUT",
            f"/zones/{ZONE}/dns_records/{record['id']}",
            {
                "type": "CNAME",
                "name": "app.example.com",
                "content": f"{tunnel_id}.cfargotunnel.com",
                "proxied": True,
                "ttl": 1,
                "comment": "zeroport: tunnel zeroport",
            },
        )
    ]
    assert report.changes == [
        f"changed CNAME app.example.com from elsewhere.example.net (proxied=True) to "
        f"{tunnel_id}.cfargotunnel.com (proxied=True)"
    ]


def test_403_names_the_permissions_and_changes_nothing(
    spec: TunnelSpec, fake: FakeCloudflare
) -> None:
    fake.failures[("GET", "/zones")] = failure(403, 10000, "Authentication error")

    with pytest.raises(PermissionDenied) as caught:
        run(spec, fake)

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


def test_429_says_to_wait(spec: TunnelSpec, fake: FakeCloudflare) -> None:
    fake.failures[("GET", f"/accounts/{ACCOUNT}/cfd_tunnel")] = failure(429, 971, "Please wait")

    with pytest.raises(RateLimited, match=r"HTTP 429\); wait a few minutes"):
        run(spec, fake)


def test_5xx_is_api_unavailable(spec: TunnelSpec, fake: FakeCloudflare) -> None:
    fake.failures[("GET", f"/zones/{ZONE}/dns_records")] = failure(502, 1000, "Bad gateway")

    with pytest.raises(ApiUnavailable, match="HTTP 502"):
        run(spec, fake)
    assert fake.writes == []


def test_missing_zone_is_reported_before_any_write(spec: TunnelSpec, fake: FakeCloudflare) -> None:
    fake.zones = []

    with pytest.raises(ZoneNotFound, match=r"zone 'example\.com' was not found in account"):
        run(spec, fake)
    assert fake.writes == []


def test_conflicting_a_record_stops_before_any_write(
    spec: TunnelSpec, fake: FakeCloudflare
) -> None:
    fake.records.append(
        {"id": "a1", "type": "A", "name": "app.example.com", "content": "192.0.2.1"}
    )

    with pytest.raises(Conflict, match="already has a DNS A record"):
        run(spec, fake)
    assert fake.writes == []


def test_locally_managed_tunnel_of_that_name_is_a_conflict(
    spec: TunnelSpec, fake: FakeCloudflare
) -> None:
    fake.tunnels.append(
        {"id": "t-local", "name": "zeroport", "config_src": "local", "deleted_at": None}
    )

    with pytest.raises(Conflict, match="is locally managed"):
        run(spec, fake)


def test_failure_midway_says_exactly_what_was_changed(
    spec: TunnelSpec, fake: FakeCloudflare
) -> None:
    fake.failures[("POST", f"/zones/{ZONE}/dns_records")] = failure(403, 10000, "not allowed")

    with pytest.raises(ProvisionError) as caught:
        run(spec, fake)

    tunnel_id = fake.tunnels[0]["id"]
    assert caught.value.done == [
        f"created tunnel 'zeroport' ({tunnel_id}); to undo, delete it in the Zero Trust dashboard",
        "set the remote ingress of the new tunnel 'zeroport'",
    ]
    assert "already changed, in order: created tunnel 'zeroport'" in str(caught.value)
    assert not any(path.endswith("/entrypoint") for _, path, _ in fake.writes)


def test_token_file_is_0600_and_the_token_is_never_printed_or_logged(
    spec: TunnelSpec, fake: FakeCloudflare, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "secrets" / "tunnel-token"

    report = run(spec, fake, token_file=token_file)

    assert token_file.read_text() == TUNNEL_TOKEN
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert TUNNEL_TOKEN not in "\n".join(report.lines())
    assert TUNNEL_TOKEN not in repr(report)
    assert TUNNEL_TOKEN not in caplog.text
    assert API_TOKEN not in caplog.text
    assert "wrote the tunnel token to" in report.lines()[-1]


def test_the_api_token_goes_only_into_the_authorization_header(
    spec: TunnelSpec, fake: FakeCloudflare, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "global-key-from-env")
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "someone@example.com")
    seen: list[httpx.Request] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fake(request)

    settings = CloudflareSettings(api_token=API_TOKEN, account_id=ACCOUNT, max_retries=0)
    client = make_client(settings, http_client=httpx.Client(transport=httpx.MockTransport(spy)))
    provision(spec, settings, client=client, dry_run=True)

    assert all(r.headers["authorization"] == f"Bearer {API_TOKEN}" for r in seen)
    assert not any("x-auth-key" in r.headers or "x-auth-email" in r.headers for r in seen)


def test_write_secret_tightens_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "token"
    target.write_text("same")
    target.chmod(0o644)

    assert write_secret(target, "same") is False
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert write_secret(target, "new") is True
    assert target.read_text() == "new"


def test_spec_without_rules_removes_the_owned_ones(spec: TunnelSpec, fake: FakeCloudflare) -> None:
    run(spec, fake)
    fake.requests.clear()

    report = run(replace(spec, custom_rules=()), fake)

    put = fake.writes[0]
    assert put[1].endswith(f"{CUSTOM_PHASE}/entrypoint")
    assert put[2] == {"rules": []}
    assert "remove zeroport_block-dotfiles" in report.changes[0]
    assert copy.deepcopy(fake.phases[CUSTOM_PHASE]["rules"]) == []


def test_changed_service_replaces_the_remote_ingress(
    spec: TunnelSpec, fake: FakeCloudflare
) -> None:
    run(spec, fake)
    fake.requests.clear()

    report = run(replace(spec, service="http://app:9090"), fake)

    tunnel_id = fake.tunnels[0]["id"]
    assert [(m, p) for m, p, _ in fake.writes] == [
        ("PUT", f"/accounts/{ACCOUNT}/cfd_tunnel/{tunnel_id}/configurations")
    ]
    assert fake.writes[0][2]["config"]["ingress"][0]["service"] == "http://app:9090"
    assert report.changes[0].startswith(
        "replaced the remote ingress of tunnel 'zeroport' (previous version 1, was {'ingress': "
    )


def test_empty_settings_the_api_echoes_back_do_not_count_as_changes(
    spec: TunnelSpec, fake: FakeCloudflare
) -> None:
    run(spec, fake)
    stored = fake.configs[fake.tunnels[0]["id"]]["config"]
    stored["ingress"][1]["originRequest"] = {}
    stored["warp-routing"] = {"enabled": False}
    fake.requests.clear()

    run(spec, fake)

    assert fake.writes == []
