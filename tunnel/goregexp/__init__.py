"""Go's regexp (RE2 syntax) in Python: reject what Go rejects, match what Go matches.

cloudflared compiles an ingress rule's ``path`` with Go's ``regexp.Compile`` and tests it with
``MatchString``, an unanchored search. google-re2 (the C++ RE2 that Go's ``regexp/syntax``
was ported from) parses and matches the pattern here; :mod:`.scan` covers the few places where
Go's parser and RE2's disagree, and :mod:`.wording` tells RE2's rejections in Go's words, so
the validator shows Go's own ``error parsing regexp: <code>: `<fragment>```. ADR 0017 has the
measured agreement and the list of differences.

Matching is RE2's: linear in the text, Unicode tables and case folding as RE2 has them (Go's
tables may be newer: a ``\\p`` class RE2 has no table for raises
:class:`~tunnel.errors.RegexUnsupported`, as does a pattern Go accepts whose program
outgrows RE2's memory budget).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Protocol

import re2

from tunnel.errors import RegexUnsupported
from tunnel.goregexp import wording
from tunnel.goregexp.scan import Scan, scan

__all__ = ["GoRegexp", "check", "compile_go"]

logger = logging.getLogger(__name__)

# RE2's memory budget for a compiled pattern. Checking only needs RE2's parser (its "too
# large" comes after a successful parse), so it keeps RE2's default; matching gets room for
# patterns near Go's own size limit, such as \pL{1000} (1.2 million RE2 instructions).
_CHECK_MEMORY = 8 << 20
_MATCH_MEMORY = 64 << 20


class _Compiled(Protocol):
    """The part of google-re2's compiled pattern used here."""

    @property
    def reverseprogramsize(self) -> int: ...

    def search(self, text: bytes) -> object | None: ...


@dataclass(frozen=True)
class GoRegexp:
    """A Go regexp compiled by RE2."""

    pattern: str
    compiled: _Compiled = field(repr=False)

    def search(self, text: str) -> bool:
        """Go's ``MatchString``: does the pattern match anywhere in ``text``?"""
        # RE2 reads UTF-8 as Go does; surrogatepass keeps a stray surrogate from raising.
        return self.compiled.search(text.encode("utf-8", "surrogatepass")) is not None


def check(pattern: str) -> None:
    """Raise :class:`RegexError` exactly when Go's ``regexp.Compile(pattern)`` fails."""
    _compile(pattern, memory=_CHECK_MEMORY)


@functools.lru_cache(maxsize=256)
def compile_go(pattern: str) -> GoRegexp:
    """Compile a Go regexp for matching; RegexError as Go, RegexUnsupported where RE2 can't."""
    found, compiled = _compile(pattern, memory=_MATCH_MEMORY)
    if found.unmatchable:
        raise RegexUnsupported(pattern, found.unmatchable)
    # RE2 builds its reverse program (to find where a match starts) on first use, with the
    # budget's remaining third; should that fail, a search would quietly find nothing.
    if compiled is None or compiled.reverseprogramsize < 0:
        raise RegexUnsupported(
            pattern, f"its compiled program needs more than RE2's {_MATCH_MEMORY >> 20} MiB"
        )
    return GoRegexp(pattern=pattern, compiled=compiled)


def _compile(pattern: str, *, memory: int) -> tuple[Scan, _Compiled | None]:
    """Go's verdict on ``pattern`` (RegexError), and RE2's program when it fits ``memory``."""
    found = scan(pattern)
    if found.finding is not None:
        # Go reports the scanner's error unless RE2 finds one earlier in the pattern.
        earlier = _re2_error(found.finding.re2_prefix)
        if earlier and not wording.is_cut_short(earlier):
            raise wording.to_go(earlier, pattern, open_class=found.open_class)
        raise found.finding.error
    try:
        return found, re2.compile(found.re2_pattern, _options(memory))
    except re2.error as exc:
        message = _message(exc)
        if wording.is_too_large(message):
            logger.debug("RE2 ran out of its %d bytes compiling %r", memory, pattern)
            return found, None
        raise wording.to_go(message, pattern, open_class=found.open_class) from None


def _re2_error(pattern: str) -> str:
    """RE2's complaint about ``pattern``'s syntax, or "" when it has none."""
    try:
        re2.compile(pattern, _options(_CHECK_MEMORY))
    except re2.error as exc:
        message = _message(exc)
        return "" if wording.is_too_large(message) else message
    return ""


def _options(memory: int) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print each rejected pattern to stderr
    options.max_mem = memory
    return options


def _message(exc: re2.error) -> str:
    # google-re2 raises its error with RE2's message as bytes.
    message = exc.args[0] if exc.args else ""
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
