"""The rooms of docs/architecture.md and which may import which, checked on the source.

Arrows run one way: ``dodo.py -> scripts -> tunnel``; ``app`` stands alone (it ships alone in
the image), the builder has only the standard library and the app, and a stage of
``scripts/`` reaches another stage only through that stage's package (its ``__init__``), never
into its modules. No module grows past MAX_LINES.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("build", "scan", "deploy", "bench", "security")
MAX_LINES = 610


def modules(room: str) -> list[Path]:
    return sorted(p for p in (ROOT / room).rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, absolute names only (relative imports stay inside)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def offences(room: str, allowed: Callable[[Path, str], bool]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(room)
        for name in imported(path)
        if name.split(".")[0] in {"app", "scripts", "tunnel", "builder", "dodo"}
        and not allowed(path, name)
    ]


def test_the_app_imports_nothing_of_the_pipeline() -> None:
    assert offences("app", lambda _, name: name.startswith("app")) == []


def test_tunnel_imports_neither_the_pipeline_nor_the_app() -> None:
    assert offences("tunnel", lambda _, name: name.startswith("tunnel")) == []


def test_the_builder_has_only_itself_and_the_standard_library() -> None:
    assert offences("containers/builder", lambda _, name: name.startswith("builder")) == []


def test_core_imports_no_stage() -> None:
    def allowed(_: Path, name: str) -> bool:
        return name == "scripts" or name.startswith(("scripts.core", "tunnel"))

    assert offences("scripts/core", allowed) == []


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_reaches_another_only_through_its_package(stage: str) -> None:
    def allowed(_: Path, name: str) -> bool:
        parts = name.split(".")
        if parts[0] != "scripts" or len(parts) == 1:
            return parts[0] in {"scripts", "tunnel"}
        return parts[1] in {"core", stage} or len(parts) == 2

    assert offences(f"scripts/{stage}", allowed) == []


def test_every_stage_of_doit_list_has_its_package() -> None:
    packages = {p.name for p in (ROOT / "scripts").iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"core", *STAGES}
    assert sorted(p.name for p in (ROOT / "scripts").glob("*.py")) == ["__init__.py"]


def test_no_module_is_longer_than_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for room in ("app", "scripts", "tunnel", "containers/builder")
        for path in modules(room)
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
