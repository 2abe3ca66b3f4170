"""The service's errors: one root, one line each, carrying what they are about."""

from __future__ import annotations

from app.errors import (
    AccessDenied,
    AppError,
    ConfigError,
    KeysUnavailable,
    MissingExtra,
    StartupError,
)


def test_config_errors_carry_the_variable_value_and_what_is_allowed() -> None:
    error = ConfigError("APP_PORT", "abc", "an integer 1-65535")

    assert (error.name, error.value, error.allowed) == ("APP_PORT", "abc", "an integer 1-65535")
    assert str(error) == "APP_PORT must be an integer 1-65535, got 'abc'"
    assert isinstance(error, StartupError)


def test_a_missing_extra_says_which_and_how_to_get_it() -> None:
    error = MissingExtra("APP_ACCESS_TEAM", "access", "pyjwt[crypto]", "unset APP_ACCESS_TEAM")

    assert str(error) == (
        "APP_ACCESS_TEAM needs the `access` extra (pyjwt[crypto]), which is not installed; "
        "build the image with the extras (`doit image extras=1`), or for a local run install "
        "it into the venv (`uv sync --extra access`), or unset APP_ACCESS_TEAM"
    )
    assert isinstance(error, StartupError)


def test_every_error_shares_the_root() -> None:
    for error in (
        ConfigError("A", 1, "b"),
        MissingExtra("a", "b", "c", "d"),
        AccessDenied("why"),
        KeysUnavailable("why"),
    ):
        assert isinstance(error, AppError)
    assert AccessDenied("token expired").reason == "token expired"
