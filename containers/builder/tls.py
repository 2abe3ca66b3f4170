"""Whether the runtime needs OpenSSL: only when something in it can speak TLS.

OpenSSL (libcrypto, libssl and the libzstd libcrypto needs) is 8.4 MB of a 25 MB image, and
the service does not speak TLS: cloudflared ends it (docs/adr/0004, 0006). Yet Hypercorn and
uvloop import ``ssl`` at import time. So the builder decides from the import statements of
what the image ships (docs/adr/0014):

* a module of the app or of a dependency that imports ``ssl`` (or ``_ssl``) needs TLS, unless
  it is one of :data:`SERVER_SIDE`, which import it only for TLS that this service never
  turns on (Hypercorn's own certificates, a development server, a push gateway);
* ``[tool.zeroport.image] openssl = "keep"`` in pyproject.toml keeps OpenSSL regardless.

Anything else gets the runtime without OpenSSL, where ``ssl`` is :mod:`builder.nossl`'s
stand-in: imports work, and any use of TLS raises, naming the setting above.

What this cannot see, and the stand-in then refuses at run time: an ``https://`` URL fetched
through the standard library's clients (``urllib.request``, ``http.client``) by code that
does not import ``ssl`` itself, and ``ssl`` imported by a compiled extension module. A
parameter-free GET route doing either fails the build's smoke test instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from builder import modules

logger = logging.getLogger(__name__)

#: The standard-library modules that exist only for OpenSSL; they leave with it. hashlib and
#: hmac fall back to the interpreter's built-in hashes (_sha2, _blake2, ...).
OPENSSL_MODULES = frozenset({"ssl", "_ssl", "_hashlib"})
#: Modules that import ssl only for TLS the service never turns on, and why.
SERVER_SIDE = {
    "hypercorn": "Hypercorn's own TLS (certfile/keyfile); app/server.py serves plain HTTP",
    "uvloop": "TLS transports, made only when a caller passes ssl=",
    "werkzeug.serving": "Werkzeug's development server",
    "flask.cli": "flask run --cert, the development server",
    "prometheus_client.exposition": "its own HTTP server and push gateway; the service "
    "serves /metrics itself (app/metrics.py)",
}


def server_side(name: str) -> bool:
    """True for a module of :data:`SERVER_SIDE` (or inside a package named there)."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in SERVER_SIDE)


def tls_users(shipped: Iterable[str], search_path: list[str], stdlib: Path) -> list[str]:
    """The modules in ``shipped`` (app and dependencies) that import ssl for TLS of their own.

    ``search_path`` finds them as the static analysis did; modules under ``stdlib`` are the
    standard library's, which imports ssl only to offer TLS to its callers.
    """
    users = []
    for name in sorted(shipped):
        if server_side(name):
            continue
        spec = modules.find_spec(name, search_path)
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith(".py") or Path(origin).is_relative_to(stdlib):
            continue
        is_package = spec is not None and spec.submodule_search_locations is not None
        package = name if is_package else name.rpartition(".")[0]
        if OPENSSL_MODULES & set(modules.imports_in(Path(origin), package)):
            users.append(name)
    return users
