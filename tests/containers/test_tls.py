"""Whether an image needs OpenSSL: from the import statements of the app and its dependencies."""

from __future__ import annotations

import importlib.metadata
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from builder import modules
from builder.tls import SERVER_SIDE, server_side, tls_users

STDLIB = sysconfig.get_path("stdlib")
ROOT = Path(__file__).resolve().parents[2]


def _runtime_packages() -> list[str]:
    """The import names of the default image's dependencies (containers/requirements.txt)."""
    required = {
        line.split("==", 1)[0].lower().replace("_", "-")
        for line in (ROOT / "containers" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    }
    return sorted(
        name
        for name, distributions in importlib.metadata.packages_distributions().items()
        if name.isidentifier()
        and any(dist.lower().replace("_", "-") in required for dist in distributions)
    )


def _project(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    _project(
        tmp_path,
        {
            "client/__init__.py": "from . import fetch\n",
            "client/fetch.py": "import ssl\n",
            "quiet/__init__.py": "import json\n",
            "lazy.py": "def get():\n    from ssl import create_default_context\n",
            "hypercorn/__init__.py": "",
            "hypercorn/config.py": "from ssl import SSLContext\n",
            "relative/__init__.py": "from . import _ssl\n",
            "relative/_ssl.py": "",
        },
    )
    return tmp_path


def test_a_module_importing_ssl_anywhere_needs_tls(site: Path) -> None:
    shipped = {
        "client",
        "client.fetch",
        "quiet",
        "lazy",
        "hypercorn",
        "hypercorn.config",
        "relative",
        "relative._ssl",
        "json",
        "http.client",
    }
    users = tls_users(shipped, [str(site), STDLIB], Path(STDLIB))
    # client.fetch at module level, lazy inside a function; json and http.client are the
    # standard library's (TLS only for their callers); hypercorn is server-side; a module
    # of its own called _ssl is not the standard library's _ssl
    assert users == ["client.fetch", "lazy"]


def test_server_side_names_cover_their_submodules_only() -> None:
    assert server_side("hypercorn")
    assert server_side("hypercorn.asyncio.run")
    assert not server_side("hypercornish")
    assert server_side("prometheus_client.exposition")
    assert not server_side("prometheus_client")
    assert all(reason for reason in SERVER_SIDE.values())


def test_this_app_and_its_runtime_dependencies_need_no_tls() -> None:
    # Every module of the app and of the default image's packages (more than the image ships:
    # all of them, not only those the app reaches), from the dev environment, which has them.
    search_path = [str(ROOT), *sys.path]
    packages = _runtime_packages()
    assert {"hypercorn", "quart", "uvloop", "prometheus_client"} <= set(packages)
    every_module = modules.included_modules(["app", *packages], search_path)
    assert tls_users(every_module, search_path, Path(STDLIB)) == []
    # The Access extra's PyJWT fetches its keys over https: that one needs OpenSSL.
    with_access = modules.included_modules(["app", *packages, "jwt"], search_path)
    assert tls_users(with_access, search_path, Path(STDLIB)) == ["jwt.jwks_client"]
