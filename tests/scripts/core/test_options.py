"""The deploy options (``doit deploy mode=... replicas=...``): defaults, validation, messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.core import paths
from scripts.core.errors import ParamError
from scripts.core.options import STACK_VARIABLES, DeployTarget, EndpointMode, Mode, StackOptions


def test_no_variables_give_a_local_compose_stack_on_8080() -> None:
    options = StackOptions.from_vars({})
    assert options == StackOptions()
    assert (options.mode, options.target, options.replicas) == (Mode.LOCAL, DeployTarget.COMPOSE, 1)
    assert options.port == 8080
    assert options.project == "zeroport"
    assert options.endpoint_mode is EndpointMode.AUTO
    assert options.token_file == paths.SECRETS / "tunnel-token"
    assert options.health_timeout == 90.0


def test_every_variable_is_read() -> None:
    options = StackOptions.from_vars(
        {
            "mode": "tunnel",
            "target": "swarm",
            "replicas": "3",
            "port": "9090",
            "project": "Staging-2",
            "endpoint_mode": "dnsrr",
            "token_file": "/run/token",
            "health_timeout": "30",
            "platforms": "linux/arm64",  # another task's variable: ignored here
        }
    )
    assert options.mode is Mode.TUNNEL
    assert options.target is DeployTarget.SWARM
    assert options.replicas == 3
    assert options.port == 9090
    assert options.project == "staging-2"  # compose wants lower case
    assert options.endpoint_mode is EndpointMode.DNSRR
    assert options.token_file == Path("/run/token")
    assert options.health_timeout == 30.0


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"mode": "cloud"}, "mode must be one of local, tunnel, got 'cloud'"),
        ({"target": "k8s"}, "target must be one of compose, swarm, got 'k8s'"),
        ({"endpoint_mode": "ipvs"}, "endpoint_mode must be one of auto, vip, dnsrr, got 'ipvs'"),
        ({"replicas": "0"}, "replicas must be an integer 1-20, got '0'"),
        ({"replicas": "21", "target": "swarm"}, "replicas must be an integer 1-20, got '21'"),
        ({"replicas": "two"}, "replicas must be an integer 1-20, got 'two'"),
        ({"port": "80"}, "port must be an integer 1024-65535, got '80'"),
        ({"port": "65536"}, "port must be an integer 1024-65535, got '65536'"),
        ({"health_timeout": "4"}, "health_timeout must be an integer 5-1800, got '4'"),
        (
            {"project": "-x"},
            "project must be letters, digits, '-' and '_', starting alphanumeric, got '-x'",
        ),
        (
            {"project": "my project"},
            "project must be letters, digits, '-' and '_', starting alphanumeric, got 'my project'",
        ),
        ({"project": ""}, "project must be letters, digits, '-' and '_', starting alphanumeric"),
    ],
)
def test_a_bad_value_names_the_variable_what_is_allowed_and_what_was_given(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(ParamError) as caught:
        StackOptions.from_vars(variables)
    assert str(caught.value).startswith(message)


def test_a_project_name_compose_would_refuse_is_refused_here() -> None:
    # docker compose: "must consist only of lowercase alphanumeric characters, hyphens, and
    # underscores" -- a non-ASCII letter passes str.isalnum but fails compose later.
    with pytest.raises(ParamError, match="project"):
        StackOptions.from_vars({"project": "café"})


def test_replicas_in_local_compose_mode_are_refused_with_the_way_out() -> None:
    with pytest.raises(ParamError) as caught:
        StackOptions.from_vars({"replicas": "3"})
    message = str(caught.value)
    assert message.startswith("replicas must be 1 in local compose mode")
    assert "target=swarm" in message
    with pytest.raises(ParamError):
        StackOptions(replicas=2)


@pytest.mark.parametrize(
    "variables",
    [
        {"replicas": "3", "target": "swarm"},
        {"replicas": "3", "mode": "tunnel"},
        {"replicas": "3", "mode": "tunnel", "target": "swarm"},
    ],
)
def test_replicas_are_allowed_wherever_they_do_not_share_a_loopback_port(
    variables: dict[str, str],
) -> None:
    assert StackOptions.from_vars(variables).replicas == 3


def test_as_vars_round_trips() -> None:
    options = StackOptions.from_vars(
        {"mode": "tunnel", "target": "swarm", "replicas": "4", "port": "9000", "project": "p1"}
    )
    assert StackOptions.from_vars(options.as_vars()) == options
    assert options.as_vars()["replicas"] == "4"


def test_every_stack_variable_is_declared_once_and_read() -> None:
    # dodo.py hands the stack tasks exactly these names; each must reach the options.
    assert STACK_VARIABLES == (
        "mode",
        "target",
        "replicas",
        "port",
        "project",
        "endpoint_mode",
        "token_file",
        "health_timeout",
    )
    given = StackOptions.from_vars(
        {
            "mode": "tunnel",
            "target": "swarm",
            "replicas": "3",
            "port": "18080",
            "project": "Demo",
            "endpoint_mode": "dnsrr",
            "token_file": "/run/t",
            "health_timeout": "30",
        }
    )
    assert given == StackOptions(
        mode=Mode.TUNNEL,
        target=DeployTarget.SWARM,
        replicas=3,
        port=18080,
        project="demo",
        endpoint_mode=EndpointMode.DNSRR,
        token_file=Path("/run/t"),
        health_timeout=30,
    )
