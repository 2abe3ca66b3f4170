"""The delivery milestones as doit tasks: `doit list` shows them, `doit deploy` ships.

This file only declares. Each action is a step function in scripts/; each producing task names
its inputs (file_dep) and its output (targets, a JSON record under build/ where the result is
not a file), so a second run with nothing changed does nothing.

Options are doit command-line variables, validated by scripts.options:
    doit deploy mode=local|tunnel target=compose|swarm replicas=N port=8080
    doit image platforms=linux/amd64,linux/arm64 extras=1 loop=asyncio
    doit scan allow_unaudited=pip-audit,trivy-db severity=HIGH
"""

from __future__ import annotations

from typing import Any

from doit import get_var
from doit.tools import config_changed

from scripts.bench import run as bench
from scripts.bench.options import VARIABLES as BENCH_VARS
from scripts.build import base_image, image, lock, push, sbom
from scripts.core import paths, records
from scripts.core.cli import step
from scripts.core.options import STACK_VARIABLES as STACK_VARS
from scripts.core.settings import Settings
from scripts.deploy import rollback, stack, tunnel_steps, verify
from scripts.scan import audit
from scripts.security import run as security
from scripts.security.run import VARIABLES as SECURITY_VARS

DOIT_CONFIG = {"default_tasks": ["deploy"], "sort": "definition", "verbosity": 2}


def _vars(names: tuple[str, ...]) -> dict[str, str]:
    return {name: value for name in names if (value := get_var(name)) is not None}


def _files(*globs: str) -> list[str]:
    return sorted(
        str(path)
        for pattern in globs
        for path in paths.ROOT.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    )


IMAGE_INPUTS = [
    *map(str, paths.app_sources()),
    *_files("containers/builder/*.py", ".dockerignore"),
    str(paths.DOCKERFILE),
    # [tool.zeroport.image]: the modules the image must include, and whether OpenSSL may go
    str(paths.PYPROJECT),
    str(paths.REQUIREMENTS),
    str(paths.REQUIREMENTS_ASYNCIO),
    str(paths.REQUIREMENTS_EXTRAS),
    str(paths.BASE_RECORD),
]
COMPOSE_FILES = _files("containers/compose*.yaml")
CODE = _files("app/**/*.py", "scripts/**/*.py", "tunnel/**/*.py")


def task_base_image() -> dict[str, Any]:
    """1.2 base_image: the builder's Debian base (local, pulled by digest, or debootstrapped)"""
    return {
        "actions": [step(base_image.step)],
        "file_dep": [str(base_image.RECIPE)],
        "targets": [str(paths.BASE_RECORD)],
        "uptodate": [base_image.is_present, config_changed(Settings.from_env().base_image)],
    }


def task_image() -> dict[str, Any]:
    """1.2 image: the shell-less uid-1000 runtime (platforms=..., extras=1, loop=asyncio)"""
    options = {
        "platforms": get_var("platforms", ""),
        "extras": get_var("extras", "0"),
        "loop": get_var("loop", "uvloop"),
    }
    return {
        "actions": [(step(image.step), [options["platforms"], options["extras"], options["loop"]])],
        "file_dep": IMAGE_INPUTS,
        "targets": [str(paths.IMAGE_RECORD)],
        "uptodate": [image.is_built, config_changed(options)],
    }


def task_sbom() -> dict[str, Any]:
    """1.2 sbom: CycloneDX bill of materials read from the image, checked against trivy's"""
    allow_missing = get_var("allow_missing", "")

    def write() -> None:
        sbom.step(allow_missing=allow_missing)

    return {
        "actions": [step(write)],
        "file_dep": [str(paths.IMAGE_RECORD)],
        "targets": [str(sbom.SBOM), str(sbom.TRIVY_SBOM)],
        "uptodate": [config_changed({"allow_missing": allow_missing})],
    }


def task_up() -> dict[str, Any]:
    """2.1 up: the stack (mode=local|tunnel; target=swarm replicas=N); keeps the old on failure"""
    variables = _vars(STACK_VARS)
    return {
        "actions": [(step(stack.step_up), [variables])],
        "file_dep": [str(paths.IMAGE_RECORD), str(audit.REPORT), *COMPOSE_FILES],
        "targets": [str(records.STACK_RECORD)],
        "uptodate": [(stack.is_running, [variables])],
    }


def task_verify() -> dict[str, Any]:
    """2.1 verify: status, body, every security header, no Server header, latency"""
    return {
        "actions": [step(verify.step)],
        "file_dep": [str(records.STACK_RECORD)],
        "targets": [str(verify.VERIFY_RECORD)],
    }


def task_tunnel_config() -> dict[str, Any]:
    """2.2 tunnel_config: cloudflared config.yml and ingress JSON from tunnel.yaml, validated"""
    return {
        "actions": [step(tunnel_steps.config_step)],
        "file_dep": [str(tunnel_steps.SPEC)],
        "targets": [str(tunnel_steps.CONFIG_YML), str(tunnel_steps.INGRESS_JSON)],
    }


def task_tunnel() -> dict[str, Any]:
    """2.2 tunnel: provision tunnel, DNS, WAF and rate limits in Cloudflare (dry_run=1 plans)"""
    dry_run = get_var("dry_run", "0")
    return {
        "actions": [(step(tunnel_steps.provision_step), [dry_run])],
        "file_dep": [str(tunnel_steps.SPEC)],
        "uptodate": [False],
    }


def task_tunnel_destroy() -> dict[str, Any]:
    """2.2 tunnel_destroy: remove the tunnel, its CNAME and its rules from Cloudflare (dry_run=1)"""
    dry_run = get_var("dry_run", "0")
    return {
        "actions": [(step(tunnel_steps.destroy_step), [dry_run])],
        "file_dep": [str(tunnel_steps.SPEC)],
        "uptodate": [False],
    }


def task_lock() -> dict[str, Any]:
    """3.1 lock: uv.lock and the image's hashed requirements from pyproject.toml"""
    return {
        "actions": [(step(lock.export), [Settings.from_env()])],
        "file_dep": [str(paths.PYPROJECT)],
        "targets": [str(paths.LOCK), *map(str, lock.EXPORTS)],
    }


def task_deploy() -> dict[str, Any]:
    """3.1 deploy: image -> scan -> up -> verify, one command"""
    return {"actions": None, "task_dep": ["image", "scan", "up", "verify"]}


def task_push() -> dict[str, Any]:
    """3.1 push: every built platform to a registry under one tag (registry=127.0.0.1:5000)"""
    registry = get_var("registry", "127.0.0.1:5000")
    return {
        "actions": [(step(push.step), [registry])],
        "file_dep": [str(paths.IMAGE_RECORD)],
        "targets": [str(push.PUSH_RECORD)],
        "uptodate": [config_changed(registry)],
    }


def task_rollback() -> dict[str, Any]:
    """3.1 rollback: redeploy the release before the current one, and verify it"""
    return {"actions": [step(rollback.step)], "uptodate": [False]}


def task_down() -> dict[str, Any]:
    """3.1 down: stop and remove the stack (images and release history stay)"""
    return {"actions": [(step(stack.step_down), [_vars(STACK_VARS)])], "uptodate": [False]}


def task_scan() -> dict[str, Any]:
    """3.2 scan: trivy, hadolint, bandit, compose-lint, pip-audit; gate on HIGH"""
    options = {
        "severity": get_var("severity", "HIGH"),
        "allow_missing": get_var("allow_missing", ""),
        "allow_unaudited": get_var("allow_unaudited", ""),
    }

    def scan() -> None:
        audit.step(image=records.read_record().tag, **options)

    return {
        "actions": [step(scan)],
        "file_dep": [
            str(paths.IMAGE_RECORD),
            str(paths.DOCKERFILE),
            str(paths.REQUIREMENTS),
            str(audit.IGNORE_FILE),
            *COMPOSE_FILES,
            *CODE,
        ],
        "targets": [str(audit.REPORT)],
        "uptodate": [config_changed(options)],
    }


def task_bench() -> dict[str, Any]:
    """4.1 bench: wrk sweep against the ceiling, 10k hold, 1 vs 2 replicas; gated (accept=1)"""
    variables = _vars(BENCH_VARS)
    return {
        "actions": [(step(bench.step), [variables])],
        "file_dep": [str(paths.IMAGE_RECORD), *COMPOSE_FILES, *_files("containers/loadgen/*")],
        "targets": [str(bench.LATEST)],
        "uptodate": [config_changed(variables)],
    }


def task_security() -> dict[str, Any]:
    """4.2 security: container audit, isolation, header grade, WAF, attacks; one report"""
    variables = _vars(SECURITY_VARS)
    return {
        "actions": [(step(security.step), [variables])],
        # It tests the deployed local stack when one runs, else a throwaway one it starts.
        "file_dep": [str(paths.IMAGE_RECORD), str(security.TUNNEL_SPEC), *COMPOSE_FILES],
        "targets": [str(security.REPORT_JSON), str(security.REPORT_MD)],
        "uptodate": [config_changed(variables)],
    }
