"""The local Cloudflare API itself: raw answers in the documented shapes, not the SDK's view."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from tests.tunnel.api_server import ACCOUNT_ID, API_TOKEN, ZONE_ID, CloudflareApi
from tests.tunnel.rules import CHALLENGE_BURST
from tunnel.waf import rule_to_api


@pytest.fixture
def http(api: CloudflareApi) -> httpx.Client:
    """A plain HTTP client on the server, authenticated as the SDK would be."""
    return httpx.Client(
        base_url=os.environ["CLOUDFLARE_BASE_URL"],
        headers={"authorization": f"Bearer {API_TOKEN}"},
        trust_env=False,
    )


def result(response: httpx.Response) -> Any:
    body = response.json()
    assert set(body) >= {"success", "errors", "messages", "result"}
    assert body["success"] is True, body
    return body["result"]


def test_a_created_tunnel_says_remote_config_and_no_config_src(http: httpx.Client) -> None:
    # As the docs' "Create a tunnel (API)" answer shows it.
    created = result(
        http.post(
            f"/accounts/{ACCOUNT_ID}/cfd_tunnel", json={"name": "t", "config_src": "cloudflare"}
        )
    )
    assert created["remote_config"] is True
    assert "config_src" not in created
    assert created["tun_type"] == "cfd_tunnel"
    assert set(created["credentials_file"]) == {
        "AccountTag",
        "TunnelID",
        "TunnelName",
        "TunnelSecret",
    }
    assert created["token"]
    listed = result(http.get(f"/accounts/{ACCOUNT_ID}/cfd_tunnel", params={"name": "t"}))
    assert "config_src" not in listed[0]
    assert "token" not in listed[0]


def test_a_dns_put_replaces_the_record_and_does_not_merge(http: httpx.Client) -> None:
    path = f"/zones/{ZONE_ID}/dns_records"
    record = result(
        http.post(
            path,
            json={
                "type": "CNAME",
                "name": "a.example.com",
                "content": "x.example.net",
                "proxied": True,
                "comment": "keep me?",
            },
        )
    )
    assert record["comment_modified_on"]

    replaced = result(
        http.put(
            f"{path}/{record['id']}",
            json={"type": "CNAME", "name": "a.example.com", "content": "y.example.net"},
        )
    )

    assert replaced["id"] == record["id"]
    assert replaced["content"] == "y.example.net"
    assert replaced["proxied"] is False
    assert "comment" not in replaced


def test_a_cname_beside_an_address_record_is_error_81053(http: httpx.Client) -> None:
    path = f"/zones/{ZONE_ID}/dns_records"
    result(http.post(path, json={"type": "A", "name": "a.example.com", "content": "192.0.2.1"}))

    answer = http.post(path, json={"type": "CNAME", "name": "a.example.com", "content": "b.net"})

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == 81053
    assert answer.json()["result"] is None


def test_zero_rate_limit_fields_are_left_out_of_the_answer(http: httpx.Client) -> None:
    rule = rule_to_api(CHALLENGE_BURST, ref_prefix="zp_")
    rule["ratelimit"] |= {"mitigation_timeout": 0, "requests_to_origin": False}  # the zeros
    path = f"/zones/{ZONE_ID}/rulesets/phases/http_ratelimit/entrypoint"

    stored = result(http.put(path, json={"rules": [rule]}))

    assert stored["rules"][0]["ratelimit"] == {
        "characteristics": ["cf.colo.id", "ip.src"],
        "period": 10,
        "requests_per_period": 50,
    }
    assert stored["kind"] == "zone"
    assert stored["version"] == "1"


def test_a_phase_without_an_entry_point_is_error_10003(http: httpx.Client) -> None:
    answer = http.get(f"/zones/{ZONE_ID}/rulesets/phases/http_request_firewall_custom/entrypoint")

    assert answer.status_code == 404
    assert answer.json()["errors"] == [
        {
            "code": 10003,
            "message": "could not find entrypoint ruleset in the "
            "http_request_firewall_custom phase",
        }
    ]


def test_lists_carry_result_info_and_a_wrong_token_is_refused(
    api: CloudflareApi, http: httpx.Client
) -> None:
    zones = http.get("/zones", params={"name": "example.com", "account.id": ACCOUNT_ID}).json()
    assert zones["result_info"] == {"page": 1, "per_page": 20, "count": 1, "total_count": 1}
    assert zones["result"][0]["plan"]["legacy_id"] == "free"

    refused = http.get("/zones", headers={"authorization": "Bearer wrong"})

    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == 10000


def test_faults_are_answered_the_given_number_of_times_and_writes_are_counted(
    api: CloudflareApi, http: httpx.Client
) -> None:
    api.fail("POST", r"/accounts/.*/cfd_tunnel", status=503, times=2)
    path = f"/accounts/{ACCOUNT_ID}/cfd_tunnel"

    statuses = [http.post(path, json={"name": "t"}).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert len(api.writes) == 3
    assert [t["name"] for t in api.live_tunnels()] == ["t"]
