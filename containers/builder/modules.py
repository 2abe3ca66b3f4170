"""Which standard-library modules the runtime must carry.

Two sources, combined, because neither is enough alone:

* a static import analysis (the ``import`` statements, read with ``ast``) of the app and
  its dependencies sees every ``import`` statement, including those in code paths no run
  exercised (an error handler, a route the smoke test forgot), but not imports made by name
  at run time;
* a trace (the set of ``sys.modules`` after the smoke test drove every route and error path
  through a real server) sees the imports made by name (``importlib.import_module``, codec
  lookups, ``__import__`` in a library) but only on the paths that ran.

The union is what ships. The smoke test then runs again against the assembled runtime, where
any ``ImportError`` fails the build.
"""

from __future__ import annotations

import ast
import logging
import sys
from collections.abc import Iterable
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    ModuleSpec,
    SourceFileLoader,
    SourcelessFileLoader,
)
from pathlib import Path

logger = logging.getLogger(__name__)

#: Parts of the standard library a server in production never runs, cut even where a library
#: imports them on a path the service cannot take (static analysis reaches many of them through
#: Werkzeug's interactive debugger, Click's terminal helpers and unittest/doctest hooks). If one
#: is in fact imported, the smoke test against the assembled runtime fails the build.
EXCLUDED_PACKAGES = frozenset(
    {
        # GUI toolkits, test suites, installers, demos
        "__phello__",
        "ensurepip",
        "idlelib",
        "lib2to3",
        "test",
        "tkinter",
        "turtle",
        "turtledemo",
        "venv",
        # interactive use: debuggers, the REPL, help browsers, test runners, profilers
        "_pyrepl",
        "bdb",
        "cmd",
        "code",
        "codeop",
        "cProfile",
        "doctest",
        "pdb",
        "profile",
        "pstats",
        "pydoc",
        "pydoc_data",
        "readline",
        "rlcompleter",
        "timeit",
        "unittest",
        "webbrowser",
        # other operating systems
        "_aix_support",
        "_ios_support",
        "_osx_support",
        "_winapi",
        "msvcrt",
        "nturl2path",
        "winreg",
    }
)
#: Submodules for other operating systems inside packages the service does use.
EXCLUDED_MODULES = frozenset(
    {
        "asyncio.windows_events",
        "asyncio.windows_utils",
        "ctypes.wintypes",
        "ctypes._aix",
        "encodings.mbcs",
        "encodings.oem",
        "multiprocessing.popen_spawn_win32",
    }
)

#: Modules the standard library imports only inside ``try: ... except ImportError`` (checked in
#: rlcompleter, pdb, cmd and code of 3.13): dropped even when the trace saw them, since CPython
#: runs without them by design. readline alone pulls in libreadline and libtinfo.
OPTIONAL = frozenset({"readline"})

#: Pure-Python twins of C modules: the standard library imports one only when its C module is
#: missing (``try: from _decimal import * except ImportError: from _pydecimal import *``), so
#: it never ships beside the C module.
TWINS = {"_pydecimal": "_decimal", "_pydatetime": "_datetime", "_pyio": "_io"}

#: Codecs looked up by name (``str.encode("idna")``) that no static analysis can see.
ALWAYS = frozenset(
    {
        "encodings.aliases",
        "encodings.ascii",
        "encodings.idna",
        "encodings.latin_1",
        "encodings.punycode",
        "encodings.raw_unicode_escape",
        "encodings.unicode_escape",
        "encodings.utf_8",
        "encodings.utf_8_sig",
        "stringprep",
    }
)


def excluded(name: str) -> bool:
    """True for a module the runtime never carries."""
    return name in EXCLUDED_MODULES or name.split(".", 1)[0] in EXCLUDED_PACKAGES


def static_imports(entry_modules: Iterable[str], search_path: list[str]) -> set[str]:
    """Every module that ``entry_modules`` can import, found by reading their code.

    Follows ``import`` statements wherever they are (functions, ``try`` blocks, ``if``
    branches), resolving names on ``search_path`` without importing anything.
    """
    found: set[str] = set()
    queue = list(entry_modules)
    while queue:
        name = queue.pop()
        if name in found or excluded(name):
            continue
        spec = find_spec(name, search_path)
        if spec is None:
            continue
        found.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            queue.append(parent)
        origin = spec.origin
        if origin and origin.endswith(".py"):
            package = name if spec.submodule_search_locations is not None else parent
            queue.extend(imports_in(Path(origin), package))
    logger.info("static analysis: %d modules", len(found))
    return found


_LOADERS = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (SourceFileLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)


def find_spec(name: str, search_path: list[str]) -> ModuleSpec | None:
    """Locate ``name`` on ``search_path`` without importing it or its parents."""
    if name in sys.builtin_module_names:
        return ModuleSpec(name, None, origin="built-in")
    path = search_path
    spec = None
    parts = name.split(".")
    for depth in range(len(parts)):
        spec = _find_in(".".join(parts[: depth + 1]), path)
        if spec is None:
            return None
        if depth < len(parts) - 1:
            if spec.submodule_search_locations is None:
                return None
            path = list(spec.submodule_search_locations)
    return spec


def _find_in(fullname: str, path: list[str]) -> ModuleSpec | None:
    # FileFinder per entry rather than PathFinder: PathFinder builds a namespace package's path
    # from its parent in sys.modules, which is empty here.
    portions: list[str] = []
    for entry in path:
        spec = FileFinder(entry, *_LOADERS).find_spec(fullname)
        if spec is None:
            continue
        if spec.loader is not None:
            return spec
        portions.extend(spec.submodule_search_locations or [])
    if not portions:
        return None
    namespace = ModuleSpec(fullname, None, is_package=True)
    namespace.submodule_search_locations = portions
    return namespace


def imports_in(source: Path, package: str) -> list[str]:
    """Module names imported by the code in ``source`` (``package``: its package, for dots)."""
    try:
        tree = ast.parse(source.read_bytes(), filename=str(source))
    except SyntaxError:
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - node.level + 1]
                base = ".".join(part for part in [*base_parts, node.module or ""] if part)
            else:
                base = node.module or ""
            if base:
                names.append(base)
                # ``from package import name`` may name a submodule.
                names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def included_modules(names: Iterable[str], search_path: list[str]) -> set[str]:
    """``names`` (modules and packages) with every submodule of the packages among them.

    Raises ValueError naming the first name that is on none of ``search_path``.
    """
    found: set[str] = set()
    for name in names:
        spec = find_spec(name, search_path)
        if spec is None:
            raise ValueError(
                f"[tool.zeroport.image] include names {name!r}, which is neither in the "
                "standard library nor in the locked dependencies; fix the name, or add its "
                "distribution to [project] dependencies in pyproject.toml and run doit lock"
            )
        found.add(name)
        for location in spec.submodule_search_locations or []:
            found |= _submodules(name, Path(location))
    return found


def _submodules(package: str, directory: Path) -> set[str]:
    names = set()
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if "__pycache__" in relative.parts or path.suffix not in {".py", ".so"}:
            continue
        parts = [part for part in relative.parts[:-1] if part.isidentifier()]
        if len(parts) != len(relative.parts) - 1:
            continue  # under a directory that cannot be a package (data, tests with dashes)
        stem = path.name.split(".", 1)[0]
        if stem != "__init__":
            parts.append(stem)
        if all(part.isidentifier() for part in parts):
            names.add(".".join([package, *parts]))
    return names


def traced_imports(trace_file: Path) -> set[str]:
    """The module names recorded by a traced run (one per line)."""
    return {line.strip() for line in trace_file.read_text().splitlines() if line.strip()}


def stdlib_modules(
    static: Iterable[str], traced: Iterable[str], stdlib: Path, include: Iterable[str] = ()
) -> list[str]:
    """The standard-library modules to ship: the traced ones, and the static ones not excluded.

    A module the trace saw imported ships even if it is on the excluded list (the service
    really imports it), except the OPTIONAL ones, which the standard library imports only
    under ``try/except ImportError``. ``include`` (pyproject's ``[tool.zeroport.image]``)
    ships whatever the lists say. Builtin modules (compiled into the interpreter) need no
    file, and a pure-Python twin (TWINS) none when its C module ships.
    """
    traced_set = set(traced)
    forced = set(include)
    kept = sorted(
        name for name in traced_set - OPTIONAL if excluded(name) and _in_stdlib(name, stdlib)
    )
    if kept:
        logger.info("kept because the service imports them: %s", ", ".join(kept))
    candidates = (
        (traced_set | {name for name in static if not excluded(name)} | ALWAYS) - OPTIONAL
    ) | forced
    builtin = set(sys.builtin_module_names)
    chosen = {name for name in candidates if name not in builtin and _in_stdlib(name, stdlib)}
    chosen -= {
        twin
        for twin, c_module in TWINS.items()
        if twin not in forced and (c_module in builtin or c_module in chosen)
    }
    # A module needs every package above it.
    for name in list(chosen):
        parts = name.split(".")
        for depth in range(1, len(parts)):
            chosen.add(".".join(parts[:depth]))
    return sorted(chosen)


def _in_stdlib(name: str, stdlib: Path) -> bool:
    relative = Path(*name.split("."))
    return (
        (stdlib / relative / "__init__.py").is_file()
        or (stdlib / relative).with_suffix(".py").is_file()
        or any((stdlib / "lib-dynload").glob(f"{name}.cpython-*.so"))
    )
