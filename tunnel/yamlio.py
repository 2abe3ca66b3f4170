"""Reading YAML the way cloudflared's yaml.v3 does, with one-line errors.

PyYAML speaks YAML 1.1, where ``on``, ``yes`` and ``no`` are booleans and ``2024-01-01`` a
date, and it silently keeps the last of two equal keys. cloudflared's decoder (yaml.v3) keeps
those scalars as strings and rejects duplicate keys, so this loader does the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tunnel.errors import ConfigError

__all__ = ["load_yaml_file", "load_yaml_text"]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no implicit timestamps and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} already defined", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_DROPPED_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml_text(text: str, *, source: str | None = None) -> object:
    """Parse one YAML document; ConfigError with file, line and column when it is not YAML."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(source, None, f"not valid YAML: {_describe(exc)}") from None


def load_yaml_file(path: Path) -> object:
    """Read and parse a YAML file; ConfigError when it is missing, unreadable or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), None, "no such file; check the path") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "not valid YAML: the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read the file: {exc.strerror}") from None
    return load_yaml_text(text, source=str(path))


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
