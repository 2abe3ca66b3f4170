"""``doit up``, ``verify``, ``down``, ``rollback``, ``deploy`` and the tunnel tasks
(``tunnel_config``, ``tunnel``, ``tunnel_destroy``): running the stack (compose or swarm),
checking it as its users meet it, its release history, and the Cloudflare side."""

from scripts.deploy.stack import (
    compose_argv,
    compose_env,
    ensure_swarm,
    render,
    running,
    wait_service,
)
from scripts.deploy.swarm import render as render_swarm

__all__ = [
    "compose_argv",
    "compose_env",
    "ensure_swarm",
    "render",
    "render_swarm",
    "running",
    "wait_service",
]
