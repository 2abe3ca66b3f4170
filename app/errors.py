"""The service's exceptions: one root, one short class per way start-up or a request can fail.

Every message is one line an operator can act on: what was wrong, what was allowed, what to do.
``python -m app`` prints ``str(error)`` for a :class:`StartupError` and exits 2.

    AppError
    ├── StartupError           the service cannot start as configured (exit code 2)
    │   ├── ConfigError        an APP_* variable has a value outside what is allowed
    │   └── MissingExtra       a configured feature needs an optional extra that is not installed
    └── AccessDenied           a request lacks a valid Cloudflare Access token (answered 403)
        └── KeysUnavailable    the team's signing keys could not be fetched or read
"""

from __future__ import annotations


class AppError(Exception):
    """Root of every error the service raises on purpose."""


class StartupError(AppError):
    """The service cannot start as configured; ``python -m app`` exits 2."""


class ConfigError(StartupError):
    """An ``APP_*`` environment variable has a value outside what is allowed."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name} must be {allowed}, got {value!r}")


class MissingExtra(StartupError):
    """A configured feature needs an optional dependency that is not installed."""

    def __init__(self, feature: str, extra: str, module: str, remedy: str) -> None:
        self.feature = feature
        self.extra = extra
        self.module = module
        super().__init__(
            f"{feature} needs the `{extra}` extra ({module}), which is not installed; "
            "build the image with the extras (`doit image extras=1`), or for a local run "
            f"install it into the venv (`uv sync --extra {extra}`), or {remedy}"
        )


class AccessDenied(AppError):
    """A request carries no valid Cloudflare Access token; the reason is logged, not sent."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class KeysUnavailable(AccessDenied):
    """The team's JWKS could not be fetched or parsed, so no token can be checked."""
