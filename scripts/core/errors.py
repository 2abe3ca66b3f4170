"""The pipeline's exceptions: one root, one short class per way a step can fail.

Every message is one line a user can act on: what was wrong, what was expected, what to do.
``dodo.py`` prints ``str(error)`` and exits non-zero; nothing catches ``WorkflowError`` to
carry on.

    WorkflowError
    ├── ParamError             a doit param or setting has a value outside what is allowed
    ├── ToolError
    │   ├── ToolMissing        an external program is not installed (names how to install it)
    │   ├── ToolFailed         it ran and exited non-zero (carries argv, exit code, output tail)
    │   │   └── DatabaseUnavailable  trivy could not get its vulnerability database
    │   └── ToolTimeout        it did not finish within its time limit
    ├── EngineError            the Docker engine is missing, stopped or lacks a feature
    ├── BuildError             an image could not be built or does not meet its checks
    ├── DeployError            a stack could not be brought up; the previous release still runs
    │   ├── PortInUse          the loopback port the stack needs is taken
    │   └── Unhealthy          a service did not turn healthy in time
    ├── VerifyError            a running stack answered wrongly
    ├── ReleaseError           no release to roll back to, or the release file is unreadable
    ├── AuditError             an audit could not run or its report could not be read
    ├── GateFailed             a scan, bench or security check found what it gates on
    └── ReportError            a result file has the wrong shape
"""

from __future__ import annotations

from collections.abc import Sequence


class WorkflowError(Exception):
    """Root of every error the pipeline raises on purpose."""


class ParamError(WorkflowError):
    """A doit param or setting has a value outside what is allowed."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name} must be {allowed}, got {value!r}")


class ToolError(WorkflowError):
    """An external program could not do its job."""


class ToolMissing(ToolError):
    """An external program is not installed."""

    def __init__(self, tool: str, install: str) -> None:
        self.tool = tool
        self.install = install
        super().__init__(f"{tool} is not installed or not on PATH; install it: {install}")


class ToolFailed(ToolError):
    """An external program exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str, hint: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        tail = _last_line(output)
        message = f"{argv[0]} exited {returncode}"
        if tail:
            message += f": {tail}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class DatabaseUnavailable(ToolFailed):
    """trivy ran, but could not download (or find) its vulnerability database."""


class ToolTimeout(ToolError):
    """An external program did not finish within its time limit."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        super().__init__(
            f"{argv[0]} did not finish within {timeout:g} s ({' '.join(argv[:4])} ...); "
            "check that it is not waiting on the network, or raise its timeout"
        )


class EngineError(WorkflowError):
    """The Docker engine is missing, not running, or lacks a feature the step needs."""


class BuildError(WorkflowError):
    """An image could not be built, or the built image fails its own checks."""


class DeployError(WorkflowError):
    """A stack could not be brought up; whatever ran before still runs."""


class PortInUse(DeployError):
    """The loopback port the stack publishes on is already taken."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"{host}:{port} is already in use; stop what listens there "
            f"or deploy on another port (doit deploy port=NNNN)"
        )


class Unhealthy(DeployError):
    """A service did not report healthy within its time limit."""


class VerifyError(WorkflowError):
    """A running stack answered, but not as it should."""


class ReleaseError(WorkflowError):
    """The release history is unreadable, or holds nothing to roll back to."""


class AuditError(WorkflowError):
    """An audit tool could not run, or its report could not be read."""


class GateFailed(WorkflowError):
    """A scan, benchmark or security check found what it gates on."""


class ReportError(WorkflowError):
    """A result or report file does not have the shape the reader expects."""


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
