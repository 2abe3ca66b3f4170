"""Run a module the way ``python -m`` does and append the modules it imported to a file.

Usage: ``python -m builder.trace TRACE_FILE MODULE [ARGS...]``. The list is written at exit,
including an exit through ``SystemExit`` after a signal, so a server traced through its
graceful shutdown records the shutdown path's imports too.
"""

from __future__ import annotations

import atexit
import runpy
import sys


def _record(trace_file: str) -> None:
    names = sorted(name for name in list(sys.modules) if not name.startswith("builder"))
    with open(trace_file, "a") as handle:  # noqa: PTH123 - pathlib would pollute the trace
        handle.write("\n".join(names) + "\n")


def main() -> None:
    """Run ``MODULE`` as ``__main__`` with the remaining arguments."""
    trace_file, module, *args = sys.argv[1:]
    atexit.register(_record, trace_file)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
