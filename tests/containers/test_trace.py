"""``python -m builder.trace``: run a module as ``python -m`` would, record what it imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONTAINERS = Path(__file__).resolve().parents[2] / "containers"


def _trace(tmp_path: Path, trace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CONTAINERS), str(tmp_path)])}
    return subprocess.run(
        [sys.executable, "-m", "builder.trace", str(trace), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_module_runs_as_main_with_its_arguments_and_its_imports_are_recorded(
    tmp_path: Path,
) -> None:
    (tmp_path / "service.py").write_text(
        "import sys\n"
        "if __name__ == '__main__':\n"
        "    import colorsys\n"
        "    print(sys.argv[1:])\n"
        "    raise SystemExit(3)\n"
    )
    trace = tmp_path / "trace.txt"
    result = _trace(tmp_path, trace, "service", "--port", "8080")
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "['--port', '8080']"
    names = trace.read_text().splitlines()
    assert "colorsys" in names
    assert "__main__" in names
    assert names == sorted(names)
    # the tracer itself is not part of what the service needs
    assert not [name for name in names if name.startswith("builder")]


def test_a_second_run_appends_to_the_trace(tmp_path: Path) -> None:
    (tmp_path / "first.py").write_text("import fractions\n")
    (tmp_path / "second.py").write_text("import colorsys\n")
    trace = tmp_path / "trace.txt"
    assert _trace(tmp_path, trace, "first").returncode == 0
    assert _trace(tmp_path, trace, "second").returncode == 0
    names = trace.read_text().splitlines()
    assert "fractions" in names
    assert "colorsys" in names
