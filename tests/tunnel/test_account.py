"""Reading the account: how a tunnel is told remotely from locally managed, and the reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tunnel.api_server import CloudflareApi
from tunnel.account import Tunnel, read_state
from tunnel.cfapi import Api, make_client
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec
from tunnel.waf import CUSTOM_PHASE


@pytest.mark.parametrize(
    ("fields", "managed"),
    [
        ({"remote_config": True}, "remote"),  # the docs' create answer: no config_src
        ({"remote_config": False}, "local"),
        ({"config_src": "cloudflare"}, "remote"),
        ({"config_src": "local"}, "local"),
        ({"config_src": "cloudflare", "remote_config": False}, "local"),
        ({"config_src": "local", "remote_config": True}, "local"),
        ({}, "unknown"),
    ],
)
def test_either_field_saying_local_makes_a_tunnel_local(
    fields: dict[str, Any], managed: str
) -> None:
    tunnel = Tunnel.from_api({"id": "t1", "name": "zeroport", **fields})
    assert tunnel.managed == managed
    assert tunnel.cname_target == "t1.cfargotunnel.com"


def test_read_state_reads_zone_plan_tunnel_records_and_phases_and_writes_nothing(
    api: CloudflareApi, spec: TunnelSpec
) -> None:
    api.plan = "business"
    api.add_tunnel("zeroport")
    api.add_record("TXT", "app.example.com", "hello")
    api.add_rule(CUSTOM_PHASE, {"expression": "true", "action": "block", "description": "x"})
    api.requests.clear()
    settings = CloudflareSettings.from_env()

    state = read_state(Api(make_client(settings), settings.account_id), spec)

    assert api.writes == []
    assert (state.plan, state.plan_name) == ("business", "Business Website")
    assert state.tunnel is not None
    assert state.tunnel.managed == "remote"
    assert [r["type"] for r in state.records] == ["TXT"]
    assert len(state.rules(CUSTOM_PHASE)) == 1
    assert state.phases["http_ratelimit"] == {}
