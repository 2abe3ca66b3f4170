"""Byte-code without docstrings: smaller, the same code otherwise, the same bytes every time."""

from __future__ import annotations

import importlib.util
import marshal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from builder.bytecode import UNCHECKED_HASH, compile_module

SOURCE = textwrap.dedent(
    '''
    """The module's docstring."""
    from __future__ import annotations


    class Thing:
        """A class's docstring."""


    def only_a_docstring():
        """Nothing else in here."""


    def checked(value):
        """Refuses negative values."""
        assert value >= 0, "negative"
        return value * 2


    def where():
        raise ValueError("here")
    '''
)


def _load(pyc: Path, name: str = "mod") -> dict[str, object]:
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH
    namespace: dict[str, object] = {"__name__": name}
    code = marshal.loads(data[16:])  # noqa: S302 - byte-code compiled by the test itself
    exec(code, namespace)  # noqa: S102
    return namespace


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    return path


def test_without_docstrings_the_code_is_smaller_and_behaves_the_same(
    source: Path, tmp_path: Path
) -> None:
    kept, stripped = tmp_path / "kept.pyc", tmp_path / "stripped.pyc"
    compile_module(source, kept, "/opt/app/mod.py")
    compile_module(source, stripped, "/opt/app/mod.py", docstrings=False)

    assert stripped.stat().st_size < kept.stat().st_size
    with_docs, without = _load(kept), _load(stripped)
    assert with_docs["__doc__"] == "The module's docstring."
    assert "__doc__" not in without  # the module never sets it: None once imported
    assert without["Thing"].__doc__ is None  # type: ignore[attr-defined]
    assert without["only_a_docstring"]() is None  # type: ignore[operator]
    assert without["checked"](2) == 4  # type: ignore[operator]
    # asserts stay (python -OO would drop them)
    with pytest.raises(AssertionError, match="negative"):
        without["checked"](-1)  # type: ignore[operator]


def test_tracebacks_keep_their_file_and_line(source: Path, tmp_path: Path) -> None:
    stripped = tmp_path / "stripped.pyc"
    compile_module(source, stripped, "/opt/app/mod.py", docstrings=False)
    with pytest.raises(ValueError, match="here") as caught:
        _load(stripped)["where"]()  # type: ignore[operator]
    frame = caught.traceback[-1]
    assert str(frame.path) == "/opt/app/mod.py"
    # pytest counts lines from 0, as splitlines() indexes them
    assert frame.lineno == SOURCE.splitlines().index('    raise ValueError("here")')


def test_the_same_source_gives_the_same_bytes_in_another_process(
    source: Path, tmp_path: Path
) -> None:
    here = tmp_path / "here.pyc"
    compile_module(source, here, "/opt/app/mod.py", docstrings=False)
    there = tmp_path / "there.pyc"
    containers = Path(__file__).resolve().parents[2] / "containers"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from builder.bytecode import compile_module; "
            "compile_module(Path(sys.argv[1]), Path(sys.argv[2]), '/opt/app/mod.py', "
            "docstrings=False)",
            str(source),
            str(there),
        ],
        env={"PYTHONPATH": str(containers)},
        check=True,
        timeout=60,
    )
    assert here.read_bytes() == there.read_bytes()
