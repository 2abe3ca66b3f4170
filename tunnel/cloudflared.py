"""Asking a local ``cloudflared`` for its own verdict on a config file, when it is installed.

Only the offline subcommand is used: ``cloudflared tunnel --config FILE ingress validate``.
(``--config`` belongs before ``ingress``: after ``validate`` cloudflared prints a usage error
and still exits 0, so success is read from its "OK" line, not from the exit code alone.)
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CloudflaredVerdict", "find_cloudflared", "validate_with_cloudflared"]

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class CloudflaredVerdict:
    """What cloudflared said about a config file."""

    ok: bool
    message: str


def find_cloudflared() -> str | None:
    """Path of ``cloudflared`` on PATH, or None."""
    return shutil.which("cloudflared")


def validate_with_cloudflared(
    path: Path, *, binary: str, timeout: float = TIMEOUT_SECONDS
) -> CloudflaredVerdict:
    """Run ``cloudflared tunnel --config PATH ingress validate`` and read its verdict."""
    argv = [binary, "tunnel", "--config", str(path), "ingress", "validate"]
    try:
        result = subprocess.run(  # noqa: S603 - argv list, no shell
            argv, capture_output=True, text=True, timeout=timeout, env={}, check=False
        )
    except subprocess.TimeoutExpired:
        return CloudflaredVerdict(ok=False, message=f"did not finish within {timeout:g} s")
    except OSError as exc:
        return CloudflaredVerdict(ok=False, message=f"could not run {binary}: {exc.strerror}")
    stdout_lines = result.stdout.splitlines()
    if result.returncode == 0 and "OK" in stdout_lines:
        return CloudflaredVerdict(ok=True, message="OK")
    if result.returncode == 0 and any(line.startswith("Warning") for line in stdout_lines):
        return CloudflaredVerdict(ok=True, message="OK with warnings (unused keys)")
    lines = [line for line in result.stderr.splitlines() if line.strip()] or stdout_lines
    detail = lines[-1] if lines else f"exited {result.returncode}"
    return CloudflaredVerdict(ok=False, message=detail)
