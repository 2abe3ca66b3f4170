"""``doit tunnel_config``, ``tunnel`` and ``tunnel_destroy`` (against the local Cloudflare API)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scripts.core import paths
from scripts.core.errors import ParamError
from scripts.deploy import tunnel_steps
from tests.tunnel.api_server import CloudflareApi
from tests.tunnel.local_api import local_cloudflare
from tunnel.errors import PlanRefused, ValidationError

#: The checkout's own spec (paths.ROOT is moved to a temporary directory in these tests).
COMMITTED_SPEC = paths.ROOT / "tunnel.yaml"
SPEC = """\
tunnel: zeroport
zone: example.com
hostname: app.example.com
service: http://app:8080
originRequest:
  connectTimeout: 10s
"""


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The step's outputs moved from build/tunnel into a temporary checkout."""
    out = tmp_path / "build" / "tunnel"
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(tunnel_steps, "TUNNEL_DIR", out)
    monkeypatch.setattr(tunnel_steps, "CONFIG_YML", out / "config.yml")
    monkeypatch.setattr(tunnel_steps, "INGRESS_JSON", out / "ingress.json")
    return out


def test_config_step_writes_both_forms_of_the_ingress(outputs: Path, tmp_path: Path) -> None:
    spec = tmp_path / "tunnel.yaml"
    spec.write_text(SPEC)
    tunnel_steps.config_step(spec)
    config = yaml.safe_load((outputs / "config.yml").read_text())
    rules = config["ingress"]
    assert rules[0]["hostname"] == "app.example.com"
    assert rules[0]["service"] == "http://app:8080"
    assert rules[0]["originRequest"]["connectTimeout"] == "10s"
    assert rules[-1] == {"service": "http_status:404"}
    remote = json.loads((outputs / "ingress.json").read_text())
    assert remote["config"]["ingress"][0]["hostname"] == "app.example.com"
    assert remote["config"]["ingress"][0]["originRequest"]["connectTimeout"] == 10
    assert remote["config"]["ingress"][-1] == {"service": "http_status:404"}


def test_the_committed_spec_renders(outputs: Path) -> None:
    tunnel_steps.config_step(COMMITTED_SPEC)
    assert (outputs / "config.yml").is_file()
    assert (outputs / "ingress.json").is_file()


def test_an_invalid_spec_names_the_rule_and_writes_nothing(outputs: Path, tmp_path: Path) -> None:
    spec = tmp_path / "tunnel.yaml"
    spec.write_text(SPEC + textwrap.dedent('path: "(unclosed"\n'))
    with pytest.raises(ValidationError) as caught:
        tunnel_steps.config_step(spec)
    message = str(caught.value)
    assert message.startswith(f"{spec}: rule #1: path '(unclosed' is not a valid Go regexp")
    assert not outputs.exists()


@pytest.fixture
def cloudflare_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareApi]:
    """The local Cloudflare API (tests/tunnel/api_server.py), reached as a user would."""
    with local_cloudflare(monkeypatch) as state:
        yield state


def test_tunnel_then_tunnel_destroy_leave_the_account_as_it_was(
    cloudflare_api: CloudflareApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "secrets" / "tunnel-token"
    monkeypatch.setattr(tunnel_steps, "TOKEN_FILE", token_file)
    before = cloudflare_api.snapshot()

    tunnel_steps.provision_step("0", COMMITTED_SPEC)
    assert token_file.read_text() == cloudflare_api.token_of("zeroport")
    assert [t["name"] for t in cloudflare_api.live_tunnels()] == ["zeroport"]

    cloudflare_api.requests.clear()
    tunnel_steps.destroy_step("1", COMMITTED_SPEC)
    assert cloudflare_api.writes == []

    tunnel_steps.destroy_step("0", COMMITTED_SPEC)
    after = cloudflare_api.snapshot()
    assert after["tunnels"] == before["tunnels"] == []
    assert after["records"] == before["records"] == []
    assert all(rules == [] for rules in after["phases"].values())


def test_a_bad_dry_run_value_fails_before_any_request(
    cloudflare_api: CloudflareApi,
) -> None:
    with pytest.raises(ParamError, match=r"^dry_run must be"):
        tunnel_steps.destroy_step("maybe", COMMITTED_SPEC)
    assert cloudflare_api.requests == []


def test_doit_tunnel_logs_every_plan_refusal_and_writes_nothing(
    cloudflare_api: CloudflareApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paid = tmp_path / "tunnel.yaml"
    paid.write_text(COMMITTED_SPEC.read_text().replace("      period: 10\n", "      period: 60\n"))

    with pytest.raises(PlanRefused):
        tunnel_steps.provision_step("0", paid)

    assert [r.levelname for r in caplog.records if "Free plan" in r.message] == ["ERROR"]
    assert cloudflare_api.writes == []
