"""The image settings a project keeps in its pyproject.toml, under ``[tool.zeroport.image]``.

    [tool.zeroport.image]
    include = ["xml.etree.ElementTree", "email"]
    openssl = "auto"
    docstrings = "strip"

``include``  modules and packages the image must carry although the build cannot see them
             imported: imported by name (``importlib.import_module``) on a route with
             parameters or a body, which the build's smoke test does not request. A package
             brings all its submodules. Standard-library names, or modules of the locked
             dependencies (which ship whole anyway; their standard-library imports follow).
``openssl``  ``"auto"`` (the default) leaves OpenSSL out unless something in the image can
             speak TLS (:mod:`builder.tls`); ``"keep"`` always ships it.
``docstrings``  ``"strip"`` (the default) compiles the standard library and the dependencies
             without their docstrings (:mod:`builder.bytecode`); ``"keep"`` keeps them, for
             a dependency that reads ``__doc__`` at run time. The app's own code keeps them.

Both are optional; a pyproject.toml without the table gets the defaults.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

OPENSSL_CHOICES = ("auto", "keep")
DOCSTRINGS_CHOICES = ("strip", "keep")
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_WHERE = "[tool.zeroport.image] in pyproject.toml"


class ProjectError(ValueError):
    """pyproject.toml's image settings are malformed."""


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """What ``[tool.zeroport.image]`` says, with its defaults."""

    include: tuple[str, ...] = ()
    openssl: str = "auto"
    docstrings: str = "strip"

    @classmethod
    def load(cls, path: Path | None) -> ImageSettings:
        """Read ``path`` (a pyproject.toml); the defaults when it is None or has no table."""
        if path is None:
            return cls()
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"{path} is not valid TOML: {exc}") from None
        table = data.get("tool", {}).get("zeroport", {}).get("image", {})
        if not isinstance(table, dict):
            raise ProjectError(f"{_WHERE} must be a table, got {table!r}")
        unknown = sorted(set(table) - {"include", "openssl", "docstrings"})
        if unknown:
            raise ProjectError(
                f"{_WHERE} has unknown keys {', '.join(unknown)}; "
                "expected include, openssl and docstrings"
            )
        include = table.get("include", [])
        if not isinstance(include, list) or not all(
            isinstance(name, str) and _MODULE_NAME.fullmatch(name) for name in include
        ):
            raise ProjectError(
                f"{_WHERE}: include must be a list of dotted module names such as "
                f'"xml.etree.ElementTree", got {include!r}'
            )
        openssl = table.get("openssl", "auto")
        if openssl not in OPENSSL_CHOICES:
            raise ProjectError(
                f"{_WHERE}: openssl must be one of {', '.join(OPENSSL_CHOICES)}, got {openssl!r}"
            )
        docstrings = table.get("docstrings", "strip")
        if docstrings not in DOCSTRINGS_CHOICES:
            raise ProjectError(
                f"{_WHERE}: docstrings must be one of {', '.join(DOCSTRINGS_CHOICES)}, "
                f"got {docstrings!r}"
            )
        return cls(include=tuple(dict.fromkeys(include)), openssl=openssl, docstrings=docstrings)
