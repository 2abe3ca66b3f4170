"""Finding secrets: in file contents, in file names, and in name=value settings.

Three questions the container audit asks of an image and its containers, answered with one set
of rules so that every place (env, labels, command line, build history, each layer's files)
is judged alike:

* does this text hold something shaped like a credential? (:func:`secret_kinds`; a private
  key block, cloud and forge tokens, a Cloudflare tunnel token, a signed JWT);
* is this file one that holds credentials by its name? (:func:`secret_file_kind`; ``.netrc``,
  ``.git-credentials``, ``id_rsa``, ``.aws/credentials`` ...);
* does this setting carry a literal secret? (:func:`secret_setting`; a name such as
  ``DB_PASSWORD`` with a value, where ``*_FILE`` pointing at a mounted secret is fine).

The rules are deliberately specific: a runtime image must hold none of these, so a hit is worth
a failed check, and a vague rule (any 40 hex characters) would fail every image for its hashes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Final

# Built from parts so that this file does not itself look like a key to a secret scanner.
_KEY_HEADER = rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"

#: Credential shapes, by name: a match in any text means a secret is there.
PATTERNS: Final[Mapping[str, re.Pattern[bytes]]] = {
    "private-key": re.compile(_KEY_HEADER + rb"\s*[A-Za-z0-9+/=]{32,}"),
    "aws-access-key-id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "github-token": re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "slack-token": re.compile(rb"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
    # A tunnel token is base64 of {"a": account, "t": tunnel, "s": secret}.
    "cloudflare-tunnel-token": re.compile(rb"\beyJhIjoi[A-Za-z0-9+/=_-]{40,}"),
    "jwt": re.compile(rb"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}

#: Setting names that announce a secret (matched anywhere in the name, case-insensitive).
_SECRET_NAME = re.compile(
    r"pass(?:word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth[_-]?key",
    re.IGNORECASE,
)
#: Suffixes that make such a name a pointer to a secret, not the secret itself.
_POINTER_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_FILES")
#: ``--password=hunter2`` or ``--token hunter2`` on a command line.
_SECRET_FLAG = re.compile(
    r"--?(?:password|passwd|token|secret|api-?key)(?:=|\s+)(?!-)\S+", re.IGNORECASE
)

#: Files that hold credentials by their very name; the value is what they usually hold.
_SECRET_FILES: Final[Mapping[str, str]] = {
    ".netrc": "netrc credentials",
    ".git-credentials": "git credentials",
    ".pypirc": "PyPI credentials",
    ".npmrc": "npm credentials",
    ".dockercfg": "registry credentials",
    ".env": "dotenv file",
    "id_rsa": "SSH private key",
    "id_dsa": "SSH private key",
    "id_ecdsa": "SSH private key",
    "id_ed25519": "SSH private key",
}
#: Files that hold credentials by name only inside a given directory.
_SECRET_FILES_IN: Final[Mapping[tuple[str, str], str]] = {
    (".aws", "credentials"): "AWS credentials",
    (".docker", "config.json"): "registry credentials",
    (".cloudflared", "cert.pem"): "cloudflared origin certificate",
}


def secret_kinds(data: bytes) -> list[str]:
    """The names of the credential shapes found in ``data`` (empty when none)."""
    return [name for name, pattern in PATTERNS.items() if pattern.search(data)]


def secret_file_kind(path: str) -> str | None:
    """What credential a file holds by its name (``root/.netrc``), or None."""
    parts = PurePosixPath(path.lstrip("./") or path).parts
    if not parts:
        return None
    name = parts[-1]
    if name in _SECRET_FILES:
        return _SECRET_FILES[name]
    if len(parts) >= 2:
        return _SECRET_FILES_IN.get((parts[-2], name))
    return None


def secret_setting(name: str, value: str) -> str | None:
    """Why ``name=value`` (an env var, a label, a build arg) carries a secret, or None."""
    kinds = secret_kinds(value.encode("utf-8", "replace"))
    if kinds:
        return f"{name} holds a {kinds[0]}"
    pointer = name.upper().endswith(_POINTER_SUFFIXES)
    if value.strip() and not pointer and _SECRET_NAME.search(name):
        return f"{name} is set to a literal value"
    return None


def secret_in_command(command: str) -> str | None:
    """Why a command line (entrypoint, cmd, a build step) carries a secret, or None."""
    kinds = secret_kinds(command.encode("utf-8", "replace"))
    if kinds:
        return f"holds a {kinds[0]}"
    flag = _SECRET_FLAG.search(command)
    if flag:
        return f"passes {flag.group(0).split('=')[0].split()[0]} on the command line"
    for match in re.finditer(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\S+)", command):
        reason = secret_setting(match.group(1), match.group(2))
        if reason:
            return reason
    return None


def redact(value: str) -> str:
    """A secret's first characters only, for evidence that must not repeat the secret."""
    return value[:4] + "…" if len(value) > 4 else "…"
