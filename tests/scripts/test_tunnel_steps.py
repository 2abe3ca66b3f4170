"""``doit tunnel_config``: the spec rendered into cloudflared's config.yml and ingress.json."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from scripts import paths, tunnel_steps
from tunnel.errors import ValidationError

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
