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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from scripts.core import paths
from scripts.core.errors import ParamError


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


def number_var(value: str, name: str, kind: type[float], low: float, high: float) -> float:
    """``value`` as a ``kind`` (int or float) within ``low``-``high``."""
    try:
        number = kind(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        what = "an integer" if kind is int else "a number"
        raise ParamError(name, value, f"{what} {low:g}-{high:g}")
    return number


def flag_var(variables: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable (1/0, true/false, yes/no), or ``default`` when it is not given."""
    value = variables.get(name)
    if value is None:
        return default
    if value.lower() not in {"0", "1", "true", "false", "yes", "no"}:
        raise ParamError(name, value, "1 or 0")
    return value.lower() in {"1", "true", "yes"}


def var(
    low: float = 0, high: float = 0, *, parse: Callable[[str, str], Any] | None = None
) -> dict[str, Any]:
    """Field metadata declaring a doit variable of the field's name (see :func:`read_vars`):
    a number's bounds, or ``parse(name, value)`` for a value of another kind."""
    return {"var": (low, high, parse)}


def variables_of(cls: type) -> tuple[str, ...]:
    """The doit variables a dataclass of options declares (its fields made with ``var``)."""
    return tuple(f.name for f in dataclasses.fields(cls) if "var" in f.metadata)


def read_vars(cls: type, variables: Mapping[str, str]) -> dict[str, Any]:
    """The values of ``cls``'s declared variables that ``variables`` gives, checked.

    Each is parsed by its field's type: an integer, a number, a flag (1/0), a choice of an
    enum, a path, or a tuple of integers (``1,16,64``: sorted, duplicates dropped), within the
    bounds ``var`` declared; or by the ``parse`` it declared. A :class:`ParamError` names the
    first bad one.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for declared in dataclasses.fields(cls):
        if "var" not in declared.metadata or declared.name not in variables:
            continue
        low, high, parse = declared.metadata["var"]
        kind = hints[declared.name]
        name = declared.name
        if parse is not None:
            values[name] = parse(name, variables[name])
        elif isinstance(kind, type) and issubclass(kind, enum.StrEnum):
            values[name] = choice_var(variables, name, kind, kind(str(declared.default)))
        elif kind is Path:
            values[name] = Path(variables[name])
        elif kind is bool:
            values[name] = flag_var(variables, name, bool(declared.default))
        elif kind in {int, float}:
            values[name] = number_var(variables[name], name, kind, low, high)
        else:
            values[name] = integers_var(variables, name, int(low), int(high))
    return values


def integers_var(variables: Mapping[str, str], name: str, low: int, high: int) -> tuple[int, ...]:
    """A comma-separated list of integers within ``low``-``high``: sorted, without repeats;
    ``none`` is the empty list (a phase skipped: ``workers=none``)."""
    value = variables[name]
    if value.strip().lower() == "none":
        return ()
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and low <= int(part) <= high for part in parts):
        raise ParamError(name, value, f"a comma-separated list of integers {low}-{high}, e.g. 1,16")
    return tuple(sorted({int(part) for part in parts}))


def _project(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value.lower()):
        raise ParamError("project", value, "letters, digits, '-' and '_', starting alphanumeric")
    return value.lower()


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    """Everything that decides how the stack runs."""

    mode: Mode = field(default=Mode.LOCAL, metadata=var())
    target: DeployTarget = field(default=DeployTarget.COMPOSE, metadata=var())
    replicas: int = field(default=1, metadata=var(1, 20))
    port: int = field(default=8080, metadata=var(1024, 65535))
    project: str = field(default="zeroport", metadata=var(parse=lambda _, v: _project(v)))
    endpoint_mode: EndpointMode = field(default=EndpointMode.AUTO, metadata=var())
    token_file: Path = field(default=paths.SECRETS / "tunnel-token", metadata=var())
    #: Seconds a service may take to turn healthy before the deploy gives up.
    health_timeout: int = field(default=90, metadata=var(5, 1800))

    @classmethod
    def from_vars(cls, variables: Mapping[str, str]) -> StackOptions:
        """Validate doit's command-line variables; unknown ones are left to other tasks."""
        return replace(cls(), **read_vars(cls, variables))

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


#: The doit variables the stack tasks (up, down) take: dodo.py passes exactly these.
STACK_VARIABLES = variables_of(StackOptions)
