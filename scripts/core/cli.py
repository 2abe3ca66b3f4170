"""What every doit action shares: logging on the terminal and one-line failures.

``dodo.py`` wraps each step in :func:`step`, so a :class:`~scripts.errors.WorkflowError` (or the
tunnel package's :class:`~tunnel.errors.TunnelError`) ends the task with doit's ``TaskFailed``
and the error's one line, not a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import ParamSpec

from doit.exceptions import TaskFailed
from rich.console import Console
from rich.logging import RichHandler

from scripts.core.errors import WorkflowError
from tunnel.errors import TunnelError

P = ParamSpec("P")
_configured = False


def setup_logging(level: int = logging.INFO) -> None:
    """Log the pipeline's progress to the terminal, once per process."""
    global _configured  # noqa: PLW0603 - logging is configured once per process by design
    if _configured:
        return
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    handler = RichHandler(
        console=console, show_path=False, show_time=False, markup=False, rich_tracebacks=False
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("scripts", "tunnel"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
    _configured = True


def step(func: Callable[P, object]) -> Callable[P, TaskFailed | None]:
    """A doit python-action running ``func``: None on success, TaskFailed(one line) on failure."""

    @functools.wraps(func)
    def action(*args: P.args, **kwargs: P.kwargs) -> TaskFailed | None:
        setup_logging()
        try:
            func(*args, **kwargs)
        except (WorkflowError, TunnelError) as exc:
            return TaskFailed(str(exc))
        return None

    return action
