"""[tool.zeroport.image] in pyproject.toml: what it may say, and what a mistake reads like."""

from __future__ import annotations

from pathlib import Path

import pytest
from builder.project import ImageSettings, ProjectError

ROOT = Path(__file__).resolve().parents[2]


def _pyproject(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n' + table)
    return path


def test_no_file_or_no_table_gives_the_defaults(tmp_path: Path) -> None:
    assert ImageSettings.load(None) == ImageSettings()
    assert ImageSettings.load(_pyproject(tmp_path, "")) == ImageSettings(
        include=(), openssl="auto", docstrings="strip"
    )


def test_the_table_is_read(tmp_path: Path) -> None:
    path = _pyproject(
        tmp_path,
        '[tool.zeroport.image]\ninclude = ["xml.etree.ElementTree", "email", "email"]\n'
        'openssl = "keep"\ndocstrings = "keep"\n',
    )
    assert ImageSettings.load(path) == ImageSettings(
        include=("xml.etree.ElementTree", "email"), openssl="keep", docstrings="keep"
    )


def test_this_projects_pyproject_is_valid() -> None:
    settings = ImageSettings.load(ROOT / "pyproject.toml")
    assert settings.openssl == "auto"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('include = "email"', "include must be a list of dotted module names"),
        ('include = ["xml/etree"]', "include must be a list of dotted module names"),
        ('openssl = "never"', "openssl must be one of auto, keep, got 'never'"),
        ('docstrings = "drop"', "docstrings must be one of strip, keep, got 'drop'"),
        ('includes = ["email"]', "unknown keys includes; expected include, openssl"),
    ],
)
def test_a_mistake_names_the_key_and_what_is_allowed(
    tmp_path: Path, table: str, message: str
) -> None:
    path = _pyproject(tmp_path, f"[tool.zeroport.image]\n{table}\n")
    with pytest.raises(ProjectError, match=message) as caught:
        ImageSettings.load(path)
    assert "[tool.zeroport.image] in pyproject.toml" in str(caught.value)


def test_broken_toml_is_reported_as_such(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, "[tool.zeroport.image\n")
    with pytest.raises(ProjectError, match="is not valid TOML"):
        ImageSettings.load(path)
