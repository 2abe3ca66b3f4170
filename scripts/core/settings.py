"""The pipeline's settings: the one place that reads the environment.

Everything the steps need from outside the repository (which engine, which base image, which
PATH the external tools come from) is read once here by :meth:`Settings.from_env`; steps take a
``Settings`` and never call ``os.environ`` themselves.
"""

from __future__ import annotations

import os
import platform
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from scripts.core.errors import ParamError

# Variables passed through to external tools. Everything else stays out of their environment,
# so a secret exported in the user's shell never reaches docker, trivy or a build.
_PASSTHROUGH = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "TRIVY_CACHE_DIR",
    "TRIVY_DB_REPOSITORY",
    "PYENV_VERSION",
    "PYENV_ROOT",
)

SECONDS = 1.0
MINUTES = 60 * SECONDS


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the pipeline needs to know about the machine it runs on."""

    #: Name (repository part) of the project's image.
    image_name: str = "zeroport"
    #: The builder's base: Debian 13 slim, i.e. Python 3.13 as in distroless python3.
    base_image: str = "debian:trixie-slim"
    #: Debian mirror for the no-registry fallback, overriding containers/base/recipe.toml's.
    debian_mirror: str | None = None
    #: Extra CA bundle handed to builds as a BuildKit secret (intercepting TLS proxies).
    ca_bundle: str | None = None
    #: Docker CLI to use for BuildKit builds, when the one on PATH cannot do them.
    docker_cli: str | None = None
    #: True under CI: nothing may be skipped for want of a tool.
    ci: bool = False
    #: Host CPU architecture as Docker names it (amd64, arm64).
    host_arch: str = "amd64"
    #: Operating system (Linux, Darwin): picks the platform-specific steps.
    system: str = "Linux"
    #: Environment handed to external tools (see _PASSTHROUGH).
    tool_environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Seconds a docker build may take before it is stopped.
    build_timeout: float = 20 * MINUTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        ca = env.get("ZEROPORT_CA_BUNDLE")
        if ca is None:
            default_ca = "/etc/ssl/certs/ca-certificates.crt"
            ca = env.get("SSL_CERT_FILE") or (default_ca if Path(default_ca).exists() else None)
        timeout = env.get("ZEROPORT_BUILD_TIMEOUT", "")
        build_timeout = 20 * MINUTES
        if timeout:
            try:
                build_timeout = float(timeout)
            except ValueError:
                build_timeout = 0
            if build_timeout <= 0:
                raise ParamError("ZEROPORT_BUILD_TIMEOUT", timeout, "a number of seconds above 0")
        return cls(
            image_name=env.get("ZEROPORT_IMAGE", cls.image_name),
            base_image=env.get("ZEROPORT_BASE_IMAGE", cls.base_image),
            debian_mirror=env.get("ZEROPORT_DEBIAN_MIRROR") or None,
            ca_bundle=ca or None,
            docker_cli=env.get("ZEROPORT_DOCKER_CLI") or None,
            ci=env.get("CI", "").lower() in {"1", "true", "yes"},
            host_arch=docker_arch(platform.machine()),
            system=platform.system(),
            tool_environ=MappingProxyType(_tool_environ(env)),
            build_timeout=build_timeout,
        )

    def tool_env(self, **extra: str) -> dict[str, str]:
        """The environment for an external tool: the passthrough set plus ``extra``."""
        return {**self.tool_environ, **extra}


def _tool_environ(env: Mapping[str, str]) -> dict[str, str]:
    """The passthrough set, with this interpreter's scripts directory last on PATH.

    The tools the project installs itself (trivy, hadolint, bandit, compose-lint, pip-audit,
    from the audit group) live beside the interpreter running the pipeline, which is not on
    PATH when the virtualenv is not activated (``.venv/bin/doit``).
    """
    passed = {k: env[k] for k in _PASSTHROUGH if k in env}
    own = sysconfig.get_path("scripts")
    path = passed.get("PATH", os.defpath)
    if own not in path.split(os.pathsep):
        passed["PATH"] = os.pathsep.join([path, own])
    return passed


def docker_arch(machine: str) -> str:
    """Docker's name for a CPU architecture as ``platform.machine()`` reports it."""
    names = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    return names.get(machine.lower(), machine.lower())
