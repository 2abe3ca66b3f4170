"""The stack file ``docker stack deploy`` takes, rendered from the same compose files.

Compose v2 and swarm read different dialects: swarm wants a ``version: "3.9"`` file, takes its
limits from ``deploy.resources`` and ignores (or rejects) some service keys. Rather than keep a
second stack file in step by hand, :func:`render` starts from ``docker compose config`` of the
chosen mode and rewrites it:

* limits move under ``deploy.resources.limits`` (memory, pids, cpus);
* ``deploy`` gets the replica count, a start-first rolling update that rolls back on its own
  when the new tasks fail their health checks, and the endpoint mode;
* ``security_opt`` is dropped: swarm services cannot set no-new-privileges (the engine ignores
  it with a warning). Every other measure (read-only root, no capabilities, non-root user,
  init, limits, health checks) is applied by swarm;
* published ports are dropped: swarm publishes through its routing mesh on every interface,
  never on loopback alone, so in swarm the service is reached from inside its overlay network
  (``doit verify`` runs its probe there); networks become attachable overlays for that reason.
"""

from __future__ import annotations

import logging
from typing import Any

from scripts.core.options import EndpointMode, StackOptions

logger = logging.getLogger(__name__)

STACK_VERSION = "3.9"
#: Service keys swarm does not take; each is dropped with the reason logged once.
UNSUPPORTED = {
    "security_opt": "swarm services cannot set no-new-privileges",
    "pull_policy": "swarm resolves images itself",
    "depends_on": "swarm starts services independently; app health gates traffic instead",
    "restart": "swarm restarts tasks through deploy.restart_policy",
    "ports": "swarm publishes on every interface, never on loopback alone",
    "container_name": "swarm names tasks itself",
}
LIMITS = {"mem_limit": "memory", "pids_limit": "pids", "cpus": "cpus"}
#: The app service: the one whose replicas the ``replicas`` option sets.
APP = "app"


def render(config: dict[str, Any], options: StackOptions) -> dict[str, Any]:
    """Rewrite a ``docker compose config --format json`` document into a swarm stack file."""
    stack: dict[str, Any] = {"version": STACK_VERSION, "services": {}}
    dropped: set[str] = set()
    for name, service in config["services"].items():
        stack["services"][name] = _service(name, service, options, dropped)
    for key in sorted(dropped):
        logger.warning("swarm: %s dropped (%s)", key, UNSUPPORTED[key])
    stack["networks"] = {
        name: _network(network) for name, network in (config.get("networks") or {}).items()
    }
    if config.get("secrets"):
        stack["secrets"] = {
            name: {"file": secret["file"]} for name, secret in config["secrets"].items()
        }
    return stack


def _service(
    name: str, service: dict[str, Any], options: StackOptions, dropped: set[str]
) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for key, value in service.items():
        if value is None:
            continue  # compose config writes unset keys (command, entrypoint) as null
        if key in UNSUPPORTED:
            dropped.add(key)
        elif key in LIMITS:
            limits[LIMITS[key]] = _limit(LIMITS[key], value)
        elif key in {"memswap_limit", "deploy"}:
            continue
        elif key == "networks":
            rendered["networks"] = sorted(value)
        else:
            rendered[key] = value
    deploy = dict(service.get("deploy") or {})
    deploy.pop("resources", None)
    deploy.pop("placement", None)
    if name == APP:
        deploy["replicas"] = options.replicas
    deploy.setdefault("replicas", 1)
    # "auto" is resolved by scripts.stack (it asks whether the kernel has IPVS); alone, vip.
    mode = options.endpoint_mode
    deploy["endpoint_mode"] = "vip" if mode is EndpointMode.AUTO else mode.value
    deploy["resources"] = {"limits": limits} if limits else {}
    deploy["restart_policy"] = {"condition": "any", "delay": "1s"}
    deploy["update_config"] = {
        "parallelism": 1,
        "order": "start-first",
        "failure_action": "rollback",
        "monitor": "15s",
        "delay": "2s",
    }
    deploy["rollback_config"] = {"parallelism": 1, "order": "start-first"}
    rendered["deploy"] = deploy
    return rendered


def _limit(kind: str, value: Any) -> Any:
    if kind == "memory":
        return f"{int(value)}b"
    if kind == "cpus":
        return str(value)
    return int(value)


def _network(network: dict[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = {"driver": "overlay", "attachable": True}
    if network.get("internal"):
        rendered["internal"] = True
    return rendered
