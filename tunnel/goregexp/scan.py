"""One pass over a pattern the way Go's parser reads it, for what RE2 does not see as Go does.

google-re2 parses and matches the pattern. Its parser and Go's agree on almost every verdict
(ADR 0017 has the measurements); the scanner covers the rest:

* Go rejects, RE2 accepts: ``\\C`` (any byte, outside a class), capture names outside
  ``[A-Za-z0-9_]``, repeat counts of a billion or more (RE2 reads the brace as a literal),
  a parse tree taller than 1000 (RE2 has no depth limit), a lone surrogate (Go: invalid UTF-8).
* Go accepts, RE2 rejects: ``\\p`` names as Go 1.25+ spells them (:mod:`.names`), and
  patterns under Go's size limit whose program outgrows RE2's memory budget.
* Both reject, in other words: Go reports ``(?<=`` as a bad named capture (RE2: a bad Perl
  operator) and a bad repeat count before a stacked repetition operator (RE2 the reverse).

So the scanner finds the first of those errors, with Go's message, and rewrites the ``\\p``
names RE2 spells differently. Everything else it copies for RE2 to judge. Go's limits on
height and size are measured on a model of Go's parse tree: exact for nested groups and
repetitions, which is what the limits are for; Go's factoring of alternations can make its
tree smaller than the model near the limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tunnel.errors import RegexError
from tunnel.goregexp import names
from tunnel.goregexp.wording import (
    INVALID_CHAR_RANGE,
    INVALID_ESCAPE,
    INVALID_NAMED_CAPTURE,
    INVALID_REPEAT_SIZE,
    INVALID_UTF8,
    LARGE,
    NESTING_DEPTH,
)

__all__ = ["Finding", "Scan", "scan"]

# Go's limits: repeat counts, parse-tree height, and the compiled size in instructions.
MAX_REPEAT = 1000
MAX_HEIGHT = 1000
MAX_SIZE = (128 << 20) // 40

_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(,(0|[1-9][0-9]*)?)?\}")
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"
MAX_RUNE = 0x10FFFF
_PERL_CLASSES = "dDsSwW"
_FLAGS = "imsU"


@dataclass(frozen=True, slots=True)
class Finding:
    """An error Go reports that RE2 would not, or would word differently.

    Go reports it unless the pattern has an earlier error: ``re2_prefix`` is the text RE2
    must accept for this one to be Go's first.
    """

    error: RegexError
    re2_prefix: str


@dataclass(frozen=True, slots=True)
class Scan:
    """What the scanner found in one pattern."""

    re2_pattern: str
    finding: Finding | None = None
    #: Why RE2 cannot match what Go would (a Unicode table RE2 lacks), or None.
    unmatchable: str | None = None
    #: Where an unclosed ``[`` starts: Go quotes the pattern from there in "missing closing ]".
    open_class: int | None = None


@dataclass(frozen=True, slots=True)
class _Node:
    """A node of Go's parse tree, as far as Go's limits look at it."""

    height: int
    size: int
    char: bool = False  # a single literal character: Go merges neighbouring ones into one node


_CHAR = _Node(1, 1, char=True)
_ATOM = _Node(1, 1)


@dataclass
class _Frame:
    """An open group (the whole pattern is the bottom one): its branches so far."""

    capture: bool
    branches: list[_Node] = field(default_factory=list)
    items: list[_Node] = field(default_factory=list)

    def end_branch(self) -> None:
        self.branches.append(_concat(self.items))
        self.items = []

    def close(self) -> _Node:
        self.end_branch()
        node = self.branches[0]
        if len(self.branches) > 1:
            node = _Node(
                1 + max(b.height for b in self.branches),
                sum(b.size for b in self.branches) + len(self.branches) - 1,
            )
        return _Node(1 + node.height, 2 + node.size) if self.capture else node


def _concat(items: list[_Node]) -> _Node:
    nodes: list[_Node] = []
    run = 0
    for item in [*items, _ATOM]:  # the sentinel flushes the last run of characters
        if item.char:
            run += 1
            continue
        if run:
            nodes.append(_Node(1, run))
            run = 0
        nodes.append(item)
    nodes.pop()
    if not nodes:
        return _ATOM  # Go's empty match
    if len(nodes) == 1:
        return nodes[0]
    return _Node(1 + max(n.height for n in nodes), sum(n.size for n in nodes))


def _repeated(sub: _Node, op: str, lo: int, hi: int) -> _Node:
    """Go's size estimate (calcSize) of ``sub`` under a repetition operator."""
    if op == "*":
        size = 2 + sub.size
    elif op in "+?":
        size = 1 + sub.size
    elif hi == -1:
        size = 2 + sub.size if lo == 0 else 1 + lo * sub.size
    else:
        size = hi * sub.size + (hi - lo)
    return _Node(1 + sub.height, max(1, size))


def _count(digits: str) -> int:
    # Any count past MAX_REPEAT is refused alike; do not parse a thousand digits to learn that.
    return int(digits) if len(digits) <= 4 else MAX_REPEAT + 1


def _valid_capture_name(name: str) -> bool:
    """Go's isValidCaptureName: ``[A-Za-z0-9_]+`` (RE2 also allows non-ASCII letters)."""
    return bool(name) and all(c == "_" or (c.isascii() and c.isalnum()) for c in name)


def _flag_group_end(src: str, pos: int) -> tuple[int, bool] | None:
    """Go's parsePerlFlags for ``(?flags)`` or ``(?flags:`` at ``pos``: (end, opens a group)."""
    sign = 1
    saw_flag = False
    for i in range(pos + 2, len(src)):
        c = src[i]
        if c in _FLAGS:
            saw_flag = True
        elif c == "-" and sign > 0:
            sign, saw_flag = -1, False
        elif c in ":)" and (sign > 0 or saw_flag):
            return i + 1, c == ":"
        else:
            return None
    return None


class _Scanner:
    """Walks a pattern token by token as Go's parser does, building the pattern for RE2."""

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0
        self.out: list[str] = []
        self.frames = [_Frame(capture=False)]
        self.finding: Finding | None = None
        self.unmatchable: str | None = None
        self.open_class: int | None = None
        self.handed_over = False

    def run(self) -> Scan:
        for i, char in enumerate(self.src):
            if 0xD800 <= ord(char) <= 0xDFFF:
                # Go reads UTF-8; a lone surrogate is what invalid UTF-8 decodes to here.
                self._fail(INVALID_UTF8, self.src[i:])
                return Scan(re2_pattern="", finding=self.finding)
        while self.pos < len(self.src) and self.finding is None:
            self._step()
        if self.finding is None and not self.handed_over and len(self.frames) == 1:
            self._check_limits(self.frames[0].close())
        return Scan(
            re2_pattern="".join(self.out),
            finding=self.finding,
            unmatchable=self.unmatchable,
            open_class=self.open_class,
        )

    # Bookkeeping.

    def _at(self, offset: int) -> str:
        """The character ``offset`` places after ``pos``, or "" past the end."""
        return self.src[self.pos + offset : self.pos + offset + 1]

    def _fail(self, code: str, fragment: str) -> None:
        """Go stops here with this error (unless RE2 finds one before it)."""
        self.finding = Finding(RegexError(code, fragment), re2_prefix="".join(self.out))

    def _hand_over(self) -> None:
        """RE2 rejects the rest as Go does: copy it and stop reading."""
        self.out.append(self.src[self.pos :])
        self.pos = len(self.src)
        self.handed_over = True

    def _copy_to(self, end: int, node: _Node | None = None) -> None:
        self.out.append(self.src[self.pos : end])
        self.pos = end
        if node is not None:
            self.frames[-1].items.append(node)

    def _check_limits(self, node: _Node) -> None:
        if node.size > MAX_SIZE:
            self._fail(LARGE, self.src)
        elif node.height > MAX_HEIGHT:
            self._fail(NESTING_DEPTH, self.src)

    # Tokens.

    def _step(self) -> None:
        c = self.src[self.pos]
        if c == "(":
            self._open()
        elif c == ")":
            self._close()
        elif c == "|":
            self.frames[-1].end_branch()
            self._copy_to(self.pos + 1)
        elif c == "[":
            self._class()
        elif c in "*+?":
            self._repeat(c, self.pos + 1, lo=0, hi=0)
        elif c == "{":
            self._brace()
        elif c == "\\":
            self._escape()
        elif c in "^$.":
            self._copy_to(self.pos + 1, _ATOM)
        else:
            self._copy_to(self.pos + 1, _CHAR)

    def _open(self) -> None:
        if self._at(1) != "?":
            self._copy_to(self.pos + 1)
            self.frames.append(_Frame(capture=True))
            return
        python_name = self._at(2) == "P" and self._at(3) == "<" and self._at(4) != ""
        if python_name or (self._at(2) == "<" and self._at(3) != ""):
            # Go takes (?<= and (?<! for named captures too, and reports them as such.
            end = self.src.find(">", self.pos)
            if end < 0:
                self._fail(INVALID_NAMED_CAPTURE, self.src[self.pos :])
                return
            if not _valid_capture_name(self.src[self.pos + (4 if python_name else 3) : end]):
                self._fail(INVALID_NAMED_CAPTURE, self.src[self.pos : end + 1])
                return
            self._copy_to(end + 1)
            self.frames.append(_Frame(capture=True))
            return
        flags = _flag_group_end(self.src, self.pos)
        if flags is None:
            self._hand_over()  # RE2 rejects the flags as Go does
            return
        end, opens_group = flags
        self._copy_to(end)
        if opens_group:
            self.frames.append(_Frame(capture=False))

    def _close(self) -> None:
        if len(self.frames) < 2:
            self._hand_over()  # RE2 reports the unexpected ) as Go does
            return
        node = self.frames.pop().close()
        self._copy_to(self.pos + 1, node)
        self._check_limits(node)

    def _brace(self) -> None:
        match = _REPEAT.match(self.src, self.pos)
        if match is None:
            self._copy_to(self.pos + 1, _CHAR)  # not a repetition: a literal brace
            return
        lo = _count(match[1])
        hi = lo if match[2] is None else -1 if match[3] is None else _count(match[3])
        if lo > MAX_REPEAT or hi > MAX_REPEAT or (hi != -1 and lo > hi):
            # Go checks the count before anything else about the operator; RE2 reads a
            # count of ten digits or more as literal text.
            self._fail(INVALID_REPEAT_SIZE, match[0])
            return
        self._repeat("{", match.end(), lo=lo, hi=hi)

    def _repeat(self, op: str, end: int, *, lo: int, hi: int) -> None:
        if self.src.startswith("?", end):
            end += 1  # non-greedy
        items = self.frames[-1].items
        self._copy_to(end)
        if not items:
            return  # RE2 reports the missing argument as Go does
        node = _repeated(items[-1], op, lo, hi)
        items[-1] = node
        self._check_limits(node)

    def _escape(self) -> None:
        c = self._at(1)
        if c and c in "AbBz":
            self._copy_to(self.pos + 2, _ATOM)
        elif c == "C":
            self._fail(INVALID_ESCAPE, "\\C")
        elif c == "Q":
            quote_end = self.src.find("\\E", self.pos + 2)  # \Q...\E: all literals
            literal_end = len(self.src) if quote_end < 0 else quote_end
            self.frames[-1].items.extend([_CHAR] * (literal_end - self.pos - 2))
            self._copy_to(len(self.src) if quote_end < 0 else quote_end + 2)
        elif c and c in "pP":
            self._unicode_class(in_class=False)
        elif c and c in _PERL_CLASSES:
            self._copy_to(self.pos + 2, _ATOM)
        else:
            end = self._escape_end(self.pos)
            if end is not None:
                self._copy_to(end, _CHAR)
            elif self.finding is None:
                self._hand_over()  # a trailing backslash: RE2 reports it as Go does

    def _escape_end(self, at: int) -> int | None:
        """End of the single-character escape at ``at``; None when it is an error."""
        c = self.src[at + 1 : at + 2]
        if not c:
            return None
        if c == "x" and self.src.startswith("{", at + 2):
            close = self.src.find("}", at)
            if close < 0:
                self._unclosed_hex(at)
                return None
            return close + 1  # RE2 judges the digits as Go does
        if c == "x":
            return at + 4
        end = at + 2
        if c == "0" or (c in _OCTAL[1:] and _is_octal(self.src[end : end + 1])):
            # Up to three octal digits (a lone \1-\7 would be a backreference: refused).
            while end < at + 4 and _is_octal(self.src[end : end + 1]):
                end += 1
        return end

    def _unclosed_hex(self, at: int) -> None:
        """Go's error for a ``\\x{`` at ``at`` with no ``}`` after it.

        RE2 rejects it too, but when the digits run to the end of the pattern it calls that
        invalid UTF-8; Go quotes the escape up to the first character it cannot use.
        """
        value = 0
        end = at + 3
        while end < len(self.src):
            char = self.src[end]
            end += 1
            if char not in _HEX:
                break
            value = value * 16 + int(char, 16)
            if value > MAX_RUNE:
                break
        self._fail(INVALID_ESCAPE, self.src[at:end])

    def _unicode_class(self, *, in_class: bool) -> None:
        """Go's parseUnicodeClass at ``pos``: check the name, respell it for RE2 if needed."""
        if self._at(2) != "{":
            end = min(self.pos + 3, len(self.src))
            name = self.src[self.pos + 2 : end]
        else:
            close = self.src.find("}", self.pos)
            if close < 0:
                self._fail(INVALID_CHAR_RANGE, self.src[self.pos :])
                return
            end = close + 1
            name = self.src[self.pos + 3 : close]
        seq = self.src[self.pos : end]
        unicode_class = names.lookup(name, negated=self._at(1) == "P")
        if unicode_class is None:
            self._fail(INVALID_CHAR_RANGE, seq)
            return
        if unicode_class.re2_has_table and name.removeprefix("^") == unicode_class.table:
            item: str | None = seq  # RE2 spells it as Go does
        else:
            item = unicode_class.re2_item(in_class=in_class)
        if item is None:
            self.unmatchable = self.unmatchable or (
                f"google-re2 has no Unicode table for {seq} ({unicode_class.table})"
            )
            # Same syntax, so RE2 still gives the verdict on the rest.
            item = "\\P{Any}" if unicode_class.negated else "\\p{Any}"
        self.out.append(item)
        self.pos = end
        if not in_class:
            self.frames[-1].items.append(_ATOM)

    def _class(self) -> None:
        """Go's parseClass: find the end, and the ``\\p`` names inside."""
        start = self.pos
        self._copy_to(self.pos + (2 if self._at(1) == "^" else 1))
        first = True
        while first or self._at(0) != "]":
            first = False
            c, after = self._at(0), self._at(1)
            posix_end = self.src.find(":]", self.pos + 2) if c + after == "[:" else -1
            if not c:
                self.open_class = start
                self._hand_over()  # RE2 reports the missing ] as Go does
                return
            if posix_end >= 0 and self._at(2):
                self._copy_to(posix_end + 2)  # RE2 checks the name as Go does
            elif c == "\\" and after and after in "pP":
                self._unicode_class(in_class=True)
            elif c == "\\" and after and after in _PERL_CLASSES:
                self._copy_to(self.pos + 2)
            else:
                self._class_range()
            if self.finding is not None or self.handed_over:
                return
        self._copy_to(self.pos + 1, _ATOM)

    def _class_range(self) -> None:
        """The character or the range ``lo-hi`` at ``pos`` in a class."""
        end = self._class_char(self.pos)
        if (
            end is not None
            and self.src[end : end + 1] == "-"
            and self.src[end + 1 : end + 2] not in ("", "]")
        ):
            end = self._class_char(end + 1)
        if end is not None:
            self._copy_to(end)
        elif self.finding is None:
            self._hand_over()  # a trailing backslash: RE2 reports it as Go does

    def _class_char(self, at: int) -> int | None:
        """End of the class character at ``at``; None when it is an error."""
        return self._escape_end(at) if self.src.startswith("\\", at) else at + 1


def _is_octal(char: str) -> bool:
    return len(char) == 1 and char in _OCTAL


def scan(pattern: str) -> Scan:
    """Read ``pattern`` as Go's parser would; see the module docstring for what it reports."""
    return _Scanner(pattern).run()
