"""Which standard-library modules the runtime carries: static analysis, trace, and the rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from builder.modules import (
    ALWAYS,
    TWINS,
    excluded,
    included_modules,
    static_imports,
    stdlib_modules,
    traced_imports,
)

STDLIB = sysconfig.get_path("stdlib")
HOST_PATH = [STDLIB, f"{STDLIB}/lib-dynload"]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """What static analysis finds from a package importing in every way it must follow (and a
    namespace package), against this interpreter's real standard library; and what it imported.
    """
    project = tmp_path_factory.mktemp("project")
    _write(
        project,
        {
            "mypkg/__init__.py": """
                import json
                from . import sub
                from .sub import helper
                try:
                    import not_installed_anywhere
                except ImportError:
                    pass
                def handler():
                    import csv
                if False:
                    import pdb
                import unittest.mock
                import asyncio.windows_events
            """,
            "mypkg/sub.py": """
                from mypkg.deep import *
                def helper():
                    import email.mime.text
            """,
            "mypkg/deep/__init__.py": "",
            "mypkg/deep/leaf.py": "from ..sub import helper\nimport colorsys\n",
            "mypkg/broken.py": "this is not python(\n",
            # nsp has no __init__: a namespace package, split over two directories below.
            "nsp/inner/mod.py": "import mypkg.broken\nimport mypkg.deep.leaf\n",
        },
    )
    # In a fresh interpreter: CPython 3.11.7 can raise a spurious SystemError from ast.parse
    # after an unrelated RecursionError earlier in the same process (gh-106905), and the
    # builder always runs this analysis in a process of its own.
    script = (
        "import json, sys\n"
        "from builder.modules import static_imports\n"
        "before = set(sys.modules)\n"
        f"found = static_imports(['mypkg', 'nsp.inner.mod'], {[str(project), *HOST_PATH]!r})\n"
        "print(json.dumps([sorted(found), sorted(set(sys.modules) - before)]))\n"
    )
    containers = str(Path(__file__).resolve().parents[2] / "containers")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PYTHONPATH": containers, "PATH": os.defpath},
    )
    found, imported = json.loads(result.stdout)
    return set(found), set(imported)


def test_static_analysis_follows_every_kind_of_import(analysed: tuple[set[str], set[str]]) -> None:
    found, _ = analysed
    # absolute, relative (one and two dots), inside functions, try blocks and if branches
    for name in ("mypkg", "mypkg.sub", "mypkg.deep", "mypkg.deep.leaf", "mypkg.broken"):
        assert name in found
    for name in ("json", "json.decoder", "csv", "email", "email.mime", "email.mime.text"):
        assert name in found
    assert "colorsys" in found  # reached only through the namespace package's module
    assert {"nsp", "nsp.inner", "nsp.inner.mod"} <= found


def test_static_analysis_skips_what_cannot_ship(analysed: tuple[set[str], set[str]]) -> None:
    found, _ = analysed
    assert "not_installed_anywhere" not in found
    assert "mypkg.sub.helper" not in found  # a function, not a module
    assert "pdb" not in found
    assert "unittest" not in found
    assert "unittest.mock" not in found
    assert "asyncio.windows_events" not in found


def test_static_analysis_imports_nothing(analysed: tuple[set[str], set[str]]) -> None:
    _, imported = analysed
    assert not {"mypkg", "nsp", "colorsys"} & imported


def test_a_namespace_package_split_over_two_path_entries_is_followed(tmp_path: Path) -> None:
    _write(tmp_path / "one", {"ns/a.py": "import ns.b\n", "lib_one.py": ""})
    _write(tmp_path / "two", {"ns/b.py": "from . import c\nimport lib_one\n", "ns/c.py": ""})
    path = [str(tmp_path / "one"), str(tmp_path / "two")]
    assert static_imports(["ns.a"], path) == {"ns", "ns.a", "ns.b", "ns.c", "lib_one"}


def test_excluded_names_whole_packages_and_single_modules() -> None:
    assert excluded("tkinter")
    assert excluded("tkinter.ttk")
    assert excluded("asyncio.windows_events")
    assert not excluded("asyncio")
    assert not excluded("asyncio.events")
    assert not excluded("testing")  # a prefix of "test" is not "test"


def test_traced_imports_reads_one_name_a_line(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("json\n\n  asyncio.events  \njson\n")
    assert traced_imports(trace) == {"json", "asyncio.events"}


@pytest.fixture
def stdlib(tmp_path: Path) -> Path:
    """A target standard library: a few packages, modules and lib-dynload extensions."""
    root = tmp_path / "python3.13"
    files = [
        "json/__init__.py",
        "json/decoder.py",
        "email/__init__.py",
        "email/mime/__init__.py",
        "email/mime/text.py",
        "pdb.py",
        "unittest/__init__.py",
        "unittest/mock.py",
        "encodings/__init__.py",
        "encodings/utf_8.py",
        "encodings/idna.py",
        "stringprep.py",
        "asyncio/__init__.py",
        "asyncio/windows_events.py",
        "lib-dynload/_json.cpython-313-x86_64-linux-gnu.so",
        "lib-dynload/readline.cpython-313-x86_64-linux-gnu.so",
        "lib-dynload/_decimal.cpython-313-x86_64-linux-gnu.so",
        "lib-dynload/_datetime.cpython-313-x86_64-linux-gnu.so",
        "decimal.py",
        "_pydecimal.py",
        "_pydatetime.py",
        "datetime.py",
    ]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    return root


def test_stdlib_modules_unites_static_and_traced_under_the_rules(stdlib: Path) -> None:
    static = {"json", "json.decoder", "email.mime.text", "pdb", "asyncio.windows_events", "yaml"}
    traced = {"unittest", "readline", "_json", "sys", "asyncio"}
    chosen = stdlib_modules(static, traced, stdlib)
    assert chosen == sorted(chosen)
    assert {"json", "json.decoder", "_json"} <= set(chosen)
    # a module needs its packages
    assert {"email", "email.mime", "email.mime.text"} <= set(chosen)
    # excluded, seen only by static analysis: cut
    assert "pdb" not in chosen
    assert "asyncio.windows_events" not in chosen
    # excluded but really imported by the service: shipped
    assert "unittest" in chosen
    assert "unittest.mock" not in chosen
    # optional by design, even when traced
    assert "readline" not in chosen
    # builtins need no file; third-party modules are not the standard library's
    assert "sys" not in chosen
    assert "yaml" not in chosen


def test_codecs_looked_up_by_name_always_ship_when_the_target_has_them(stdlib: Path) -> None:
    chosen = set(stdlib_modules(set(), set(), stdlib))
    # the rest of ALWAYS (encodings.aliases, ...) is not in this small stdlib: nothing invented
    assert chosen == {"encodings", "encodings.idna", "encodings.utf_8", "stringprep"}
    assert {"encodings.idna", "encodings.utf_8", "stringprep"} <= ALWAYS


def test_included_modules_ship_whatever_the_lists_say(stdlib: Path) -> None:
    chosen = set(stdlib_modules(set(), set(), stdlib, include={"pdb", "readline", "email.mime"}))
    # excluded (pdb), optional (readline): shipped because pyproject.toml asks for them
    assert {"pdb", "readline", "email", "email.mime"} <= chosen


def test_a_pure_python_twin_never_ships_beside_its_c_module(stdlib: Path) -> None:
    static = {"decimal", "_pydecimal", "datetime", "_pydatetime", "_datetime"}
    chosen = set(stdlib_modules(static, {"_decimal"}, stdlib))
    # decimal imports _pydecimal only when _decimal is missing (_datetime: built in on Debian)
    assert {"decimal", "_decimal", "datetime"} <= chosen
    assert not {"_pydecimal", "_pydatetime"} & chosen
    # asked for by name, a twin ships
    assert "_pydecimal" in stdlib_modules(static, {"_decimal"}, stdlib, include={"_pydecimal"})
    assert TWINS["_pydecimal"] == "_decimal"


def test_an_included_package_brings_its_submodules(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/one.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/two.py": "",
            "pkg/data-files/not_a_module.py": "",
            "pkg/notes.txt": "",
            "single.py": "",
        },
    )
    found = included_modules(["pkg", "single", "json.decoder"], [str(tmp_path), *HOST_PATH])
    assert found == {"pkg", "pkg.one", "pkg.sub", "pkg.sub.two", "single", "json.decoder"}


def test_an_unknown_included_name_fails_naming_it_and_the_remedy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="include names 'no_such_module'") as caught:
        included_modules(["json", "no_such_module"], [str(tmp_path), *HOST_PATH])
    assert "[project] dependencies" in str(caught.value)
