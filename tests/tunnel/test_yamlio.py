"""YAML read as cloudflared's decoder reads it, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunnel.errors import ConfigError
from tunnel.yamlio import load_yaml_file, load_yaml_text


def test_yaml_1_1_words_stay_strings() -> None:
    data = load_yaml_text("a: yes\nb: on\nc: no\nd: 2024-01-01\ne: true\n")
    assert data == {"a": "yes", "b": "on", "c": "no", "d": "2024-01-01", "e": True}


def test_duplicate_keys_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"x\.yml: not valid YAML: line 2, column 1: .*'a'"):
        load_yaml_text("a: 1\na: 2\n", source="x.yml")


def test_not_yaml_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("ingress: [\n  - service: x\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid YAML: line ")
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml_file(tmp_path / "absent.yml")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml_file(path)
