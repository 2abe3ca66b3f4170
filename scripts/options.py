"""The deploy options a user passes on the command line (``doit deploy mode=tunnel ...``).

doit hands ``key=value`` arguments to every task as command-line variables; this module reads
and validates them (its ``*_var`` helpers serve the other steps too), so a bad value stops
the run with one line.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from scripts import paths
from scripts.errors import ParamError


class Mode(enum.StrEnum):
    """Where the service is reachable from."""

    LOCAL = "local"  #: 127.0.0.1 only; no Cloudflare account needed
    TUNNEL = "tunnel"  #: through cloudflared; no port open at all


class DeployTarget(enum.StrEnum):
    """Which engine feature runs the stack."""

    COMPOSE = "compose"
    SWARM = "swarm"


class EndpointMode(enum.StrEnum):
    """How swarm spreads requests over replicas."""

    AUTO = "auto"  #: vip where the kernel has IPVS, else dnsrr (the default)
    VIP = "vip"  #: one virtual IP balanced by the kernel's IPVS
    DNSRR = "dnsrr"  #: the name resolves to every replica (kernels without IPVS)


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    """Everything that decides how the stack runs."""

    mode: Mode = Mode.LOCAL
    target: DeployTarget = DeployTarget.COMPOSE
    replicas: int = 1
    port: int = 8080
    project: str = "zeroport"
    endpoint_mode: EndpointMode = EndpointMode.AUTO
    token_file: Path = paths.SECRETS / "tunnel-token"
    #: Seconds a service may take to turn healthy before the deploy gives up.
    health_timeout: float = 90.0

    @classmethod
    def from_vars(cls, variables: Mapping[str, str]) -> StackOptions:
        """Validate doit's command-line variables; unknown ones are left to other tasks."""
        defaults = cls()
        return cls(
            mode=choice_var(variables, "mode", Mode, defaults.mode),
            target=choice_var(variables, "target", DeployTarget, defaults.target),
            replicas=integer_var(variables, "replicas", defaults.replicas, 1, 20),
            port=integer_var(variables, "port", defaults.port, 1024, 65535),
            project=_project(variables.get("project", defaults.project)),
            endpoint_mode=choice_var(
                variables, "endpoint_mode", EndpointMode, defaults.endpoint_mode
            ),
            token_file=Path(variables.get("token_file", str(defaults.token_file))),
            health_timeout=float(
                integer_var(variables, "health_timeout", int(defaults.health_timeout), 5, 1800)
            ),
        )

    def __post_init__(self) -> None:
        if self.mode is Mode.LOCAL and self.target is DeployTarget.COMPOSE and self.replicas > 1:
            raise ParamError(
                "replicas",
                self.replicas,
                "1 in local compose mode (every replica would publish the same loopback port); "
                "use target=swarm for replicas",
            )

    def as_vars(self) -> dict[str, str]:
        """The options as doit variables: what decides whether ``up`` must run again."""
        return {
            "mode": self.mode.value,
            "target": self.target.value,
            "replicas": str(self.replicas),
            "port": str(self.port),
            "project": self.project,
            "endpoint_mode": self.endpoint_mode.value,
            "token_file": str(self.token_file),
        }


E = TypeVar("E", bound=enum.StrEnum)


def choice_var(variables: Mapping[str, str], name: str, kind: type[E], default: E) -> E:
    """A variable naming a member of ``kind``, or ``default`` when it is not given."""
    value = variables.get(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = "one of " + ", ".join(member.value for member in kind)
        raise ParamError(name, value, allowed) from None


def integer_var(variables: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer variable within ``low``-``high``, or ``default`` when it is not given."""
    value = variables.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ParamError(name, value, f"an integer {low}-{high}")
    return number


def number_var(
    variables: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    """A number variable within ``low``-``high``, or ``default`` when it is not given."""
    value = variables.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ParamError(name, value, f"a number {low:g}-{high:g}")
    return number


def flag_var(variables: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable (1/0, true/false, yes/no), or ``default`` when it is not given."""
    value = variables.get(name)
    if value is None:
        return default
    if value.lower() not in {"0", "1", "true", "false", "yes", "no"}:
        raise ParamError(name, value, "1 or 0")
    return value.lower() in {"1", "true", "yes"}


def var(low: float, high: float) -> dict[str, tuple[float, float]]:
    """Field metadata declaring a doit variable of that name and its bounds (see read_vars)."""
    return {"var": (low, high)}


def variables_of(cls: type) -> tuple[str, ...]:
    """The doit variables a dataclass of options declares (its fields made with ``var``)."""
    return tuple(f.name for f in dataclasses.fields(cls) if "var" in f.metadata)


def read_vars(cls: type, variables: Mapping[str, str]) -> dict[str, Any]:
    """The values of ``cls``'s declared variables that ``variables`` gives, checked.

    Each is parsed by its field's type: an integer, a number, a flag (1/0), or a tuple of
    integers (``1,16,64``: sorted, duplicates dropped), within the bounds ``var`` declared.
    A :class:`ParamError` names the first bad one.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if "var" not in field.metadata or field.name not in variables:
            continue
        low, high = field.metadata["var"]
        kind = hints[field.name]
        name = field.name
        if kind is bool:
            values[name] = flag_var(variables, name, bool(field.default))
        elif kind is int:
            values[name] = integer_var(variables, name, 0, int(low), int(high))
        elif kind is float:
            values[name] = number_var(variables, name, 0.0, low, high)
        else:
            values[name] = integers_var(variables, name, int(low), int(high))
    return values


def integers_var(variables: Mapping[str, str], name: str, low: int, high: int) -> tuple[int, ...]:
    """A comma-separated list of integers within ``low``-``high``: sorted, without repeats."""
    value = variables[name]
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and low <= int(part) <= high for part in parts):
        raise ParamError(name, value, f"a comma-separated list of integers {low}-{high}, e.g. 1,16")
    return tuple(sorted({int(part) for part in parts}))


def _project(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value.lower()):
        raise ParamError("project", value, "letters, digits, '-' and '_', starting alphanumeric")
    return value.lower()
