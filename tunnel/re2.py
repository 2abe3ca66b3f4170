"""Go's regexp syntax (RE2) in Python: reject what Go rejects, match what Go matches.

cloudflared compiles an ingress rule's ``path`` with Go's ``regexp.Compile`` (Perl flags) and
tests it with ``MatchString``: an unanchored search. Python's ``re`` accepts a different
language: look-arounds, backreferences, possessive and atomic groups, conditionals, ``\\Z``
and comments, none of which Go has; and it lacks Go's ``\\pL``, ``[[:alpha:]]``, ``\\Q..\\E``,
``\\z`` and ``(?U)``. So this module parses the pattern the way Go's ``regexp/syntax`` parser
does, raising :class:`~tunnel.errors.RegexError` with Go's own message, and while parsing
writes an equivalent Python pattern for matching.

Equivalence notes: ``\\d \\s \\w \\b`` and the POSIX classes are ASCII as in Go; ``$`` is end of
text (Python's ``\\Z``) unless ``(?m)``; Unicode categories come from Python's
``unicodedata``, whose Unicode version may lag Go's; case folding is Python's, which differs
from Go's only for rare characters. Unicode *scripts* (``\\p{Greek}``) are accepted as Go
accepts them but cannot be matched here (:class:`~tunnel.errors.RegexUnsupported`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from tunnel.errors import RegexError, RegexUnsupported

__all__ = ["GoRegexp", "check", "compile_go"]

# Go's error codes (regexp/syntax ErrorCode strings).
_INVALID_CHAR_CLASS = "invalid character class"
_INVALID_CHAR_RANGE = "invalid character class range"
_INVALID_ESCAPE = "invalid escape sequence"
_INVALID_NAMED_CAPTURE = "invalid named capture"
_INVALID_PERL_OP = "invalid or unsupported Perl syntax"
_INVALID_REPEAT_OP = "invalid nested repetition operator"
_INVALID_REPEAT_SIZE = "invalid repeat count"
_INVALID_UTF8 = "invalid UTF-8"
_MISSING_BRACKET = "missing closing ]"
_MISSING_PAREN = "missing closing )"
_MISSING_REPEAT_ARGUMENT = "missing argument to repetition operator"
_TRAILING_BACKSLASH = "trailing backslash at end of expression"
_UNEXPECTED_PAREN = "unexpected )"
_NESTING_DEPTH = "expression nests too deeply"
_LARGE = "expression too large"

# Go's limits: repeat counts, parse-tree height, compiled size in instructions.
_MAX_REPEAT = 1000
_MAX_HEIGHT = 1000
_MAX_SIZE = (128 << 20) // 40
_MAX_RUNE = 0x10FFFF

# Parser flags (Go's FoldCase, OneLine, DotNL, NonGreedy).
_FOLD = 1
_ONE_LINE = 2
_DOT_NL = 4
_NON_GREEDY = 8

_Ranges = list[tuple[int, int]]
_HEX = "0123456789abcdefABCDEF"
# Go's \B, spelled out: Python's \B never matches in an empty string before 3.14.
_NOT_WORD_BOUNDARY = "(?a:(?<=\\w)(?=\\w)|(?<!\\w)(?!\\w))"

_DIGIT: _Ranges = [(0x30, 0x39)]
_SPACE: _Ranges = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]
_WORD: _Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_PERL_GROUPS: dict[str, tuple[int, _Ranges]] = {
    "\\d": (1, _DIGIT),
    "\\D": (-1, _DIGIT),
    "\\s": (1, _SPACE),
    "\\S": (-1, _SPACE),
    "\\w": (1, _WORD),
    "\\W": (-1, _WORD),
}
_POSIX_CLASSES: dict[str, _Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_POSIX_GROUPS: dict[str, tuple[int, _Ranges]] = {
    **{f"[:{name}:]": (1, ranges) for name, ranges in _POSIX_CLASSES.items()},
    **{f"[:^{name}:]": (-1, ranges) for name, ranges in _POSIX_CLASSES.items()},
}

# Unicode general categories and their long names (Unicode PropertyValueAliases), as Go's
# unicode.Categories / unicode.CategoryAliases spell them.
_CATEGORIES = [
    "C",
    "Cc",
    "Cf",
    "Cn",
    "Co",
    "Cs",
    "L",
    "LC",
    "Ll",
    "Lm",
    "Lo",
    "Lt",
    "Lu",
    "M",
    "Mc",
    "Me",
    "Mn",
    "N",
    "Nd",
    "Nl",
    "No",
    "P",
    "Pc",
    "Pd",
    "Pe",
    "Pf",
    "Pi",
    "Po",
    "Ps",
    "S",
    "Sc",
    "Sk",
    "Sm",
    "So",
    "Z",
    "Zl",
    "Zp",
    "Zs",
]
_CATEGORY_ALIASES = {
    "Cased_Letter": "LC",
    "Close_Punctuation": "Pe",
    "Combining_Mark": "M",
    "Connector_Punctuation": "Pc",
    "Control": "Cc",
    "Currency_Symbol": "Sc",
    "Dash_Punctuation": "Pd",
    "Decimal_Number": "Nd",
    "Enclosing_Mark": "Me",
    "Final_Punctuation": "Pf",
    "Format": "Cf",
    "Initial_Punctuation": "Pi",
    "Letter": "L",
    "Letter_Number": "Nl",
    "Line_Separator": "Zl",
    "Lowercase_Letter": "Ll",
    "Mark": "M",
    "Math_Symbol": "Sm",
    "Modifier_Letter": "Lm",
    "Modifier_Symbol": "Sk",
    "Nonspacing_Mark": "Mn",
    "Number": "N",
    "Open_Punctuation": "Ps",
    "Other": "C",
    "Other_Letter": "Lo",
    "Other_Number": "No",
    "Other_Punctuation": "Po",
    "Other_Symbol": "So",
    "Paragraph_Separator": "Zp",
    "Private_Use": "Co",
    "Punctuation": "P",
    "Separator": "Z",
    "Space_Separator": "Zs",
    "Spacing_Mark": "Mc",
    "Surrogate": "Cs",
    "Symbol": "S",
    "Titlecase_Letter": "Lt",
    "Unassigned": "Cn",
    "Uppercase_Letter": "Lu",
    "cntrl": "Cc",
    "digit": "Nd",
    "punct": "P",
}
# Unicode script names (Unicode 17, the version Go's unicode package carries).
_SCRIPTS = [
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Beria_Erfe",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cypro_Minoan",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Garay",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Gurung_Khema",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Kirat_Rai",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nag_Mundari",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Ol_Onal",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Old_Uyghur",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "Sidetic",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Sunuwar",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Tai_Yo",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Todhri",
    "Tolong_Siki",
    "Toto",
    "Tulu_Tigalari",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
]


def _canonical(name: str) -> str:
    """Go's canonicalName: drop ``_ -`` and spaces, first letter upper, the rest lower."""
    out = []
    first = True
    for c in name:
        if c in "_- ":
            continue
        if first:
            out.append(c.upper() if "a" <= c <= "z" else c)
            first = False
        else:
            out.append(c.lower() if "A" <= c <= "Z" else c)
    return "".join(out)


_CANONICAL_CATEGORIES = {_canonical(c): c for c in _CATEGORIES if c != "LC"} | {
    _canonical(alias): actual for alias, actual in _CATEGORY_ALIASES.items()
}
_CANONICAL_SCRIPTS = {_canonical(s): s for s in _SCRIPTS}


def _unicode_table(name: str) -> tuple[str, int] | None:
    """(table key, sign) for a ``\\p`` name as Go resolves it, or None when Go rejects it."""
    canonical = _canonical(name)
    special = {"Any": ("Any", 1), "Assigned": ("Cn", -1), "Ascii": ("ASCII", 1), "Lc": ("LC", 1)}
    if canonical in special:
        return special[canonical]
    if canonical in _CATEGORIES:
        return canonical, 1
    if canonical in _SCRIPTS:
        return "script:" + canonical, 1
    if canonical in _CANONICAL_CATEGORIES:
        return _CANONICAL_CATEGORIES[canonical], 1
    if canonical in _CANONICAL_SCRIPTS:
        return "script:" + _CANONICAL_SCRIPTS[canonical], 1
    return None


@functools.cache
def _category_table() -> dict[str, tuple[tuple[int, int], ...]]:
    """Ranges of every two-letter general category, from Python's unicodedata (built once)."""
    ranges: dict[str, list[list[int]]] = {}
    for cp in range(_MAX_RUNE + 1):
        cat = unicodedata.category(chr(cp))
        bucket = ranges.setdefault(cat, [])
        if bucket and bucket[-1][1] == cp - 1:
            bucket[-1][1] = cp
        else:
            bucket.append([cp, cp])
    return {cat: tuple((lo, hi) for lo, hi in spans) for cat, spans in ranges.items()}


def _table_ranges(key: str) -> _Ranges:
    if key == "Any":
        return [(0, _MAX_RUNE)]
    if key == "ASCII":
        return [(0, 0x7F)]
    table = _category_table()
    if key == "LC":
        members = ["Lu", "Ll", "Lt"]
    elif len(key) == 1:
        members = [cat for cat in table if cat.startswith(key)]
    else:
        members = [key]
    out: _Ranges = []
    for member in members:
        out.extend(table.get(member, ()))
    return _clean(out)


def _clean(ranges: Iterable[tuple[int, int]]) -> _Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    out: _Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _negate(ranges: _Ranges) -> _Ranges:
    out: _Ranges = []
    nxt = 0
    for lo, hi in _clean(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_RUNE:
        out.append((nxt, _MAX_RUNE))
    return out


def _esc(cp: int) -> str:
    char = chr(cp)
    if char.isascii() and char.isalnum():
        return char
    return f"\\U{cp:08x}"


@dataclass(frozen=True, slots=True)
class _Node:
    """One node of the parse tree: its Python equivalent plus what Go's limits look at."""

    op: str
    py: str
    subs: tuple[_Node, ...] = ()
    size: int = 1
    height: int = 1
    min: int = 0
    max: int = 0


def _leaf(op: str, py: str, size: int = 1) -> _Node:
    return _Node(op=op, py=py, size=size)


def _concat(items: list[_Node]) -> _Node:
    if not items:
        return _leaf("empty", "")
    if len(items) == 1:
        return items[0]
    return _Node(
        op="concat",
        py="".join(item.py for item in items),
        subs=tuple(items),
        size=max(1, sum(item.size for item in items)),
        height=1 + max(item.height for item in items),
    )


def _alternate(branches: list[_Node]) -> _Node:
    if len(branches) == 1:
        return branches[0]
    return _Node(
        op="alt",
        py="(?:" + "|".join(b.py for b in branches) + ")",
        subs=tuple(branches),
        size=sum(b.size for b in branches) + len(branches) - 1,
        height=1 + max(b.height for b in branches),
    )


def _repeat_is_valid(node: _Node, n: int) -> bool:
    """Go's repeatIsValid: nested counted repeats may not multiply past ``n`` copies."""
    stack = [(node, n)]
    while stack:
        current, budget = stack.pop()
        if current.op == "repeat":
            m = current.max
            if m == 0:
                continue
            if m < 0:
                m = current.min
            if m > budget:
                return False
            if m > 0:
                budget //= m
        stack.extend((sub, budget) for sub in current.subs)
    return True


@dataclass
class _Frame:
    """An open group on the parse stack (the whole pattern is the bottom frame)."""

    flags: int
    capture: bool
    branches: list[_Node] = field(default_factory=list)
    items: list[_Node] = field(default_factory=list)


class _Parser:
    """A left-to-right parser that raises the first error Go's parser would raise."""

    def __init__(self, pattern: str, *, build: bool) -> None:
        self.whole = pattern
        self.build = build
        self.flags = _ONE_LINE  # Go's regexp.Compile uses syntax.Perl: OneLine on.
        self.unsupported: str | None = None

    def parse(self) -> _Node:
        """The parse tree of the whole pattern; RegexError at Go's first error."""
        for i, char in enumerate(self.whole):
            if 0xD800 <= ord(char) <= 0xDFFF:
                raise RegexError(_INVALID_UTF8, self.whole[i:])
        stack = [_Frame(flags=self.flags, capture=False)]
        last_repeat = ""
        t = self.whole
        while t:
            # Go forbids stacking repetition operators: remember whether this step was one.
            t, last_repeat = self._step(t, stack, last_repeat)
        if len(stack) != 1:
            raise RegexError(_MISSING_PAREN, self.whole)
        root = self._close(stack[0])
        if root.height > _MAX_HEIGHT:
            raise RegexError(_NESTING_DEPTH, self.whole)
        if root.size > _MAX_SIZE:
            raise RegexError(_LARGE, self.whole)
        return root

    def _step(self, t: str, stack: list[_Frame], last_repeat: str) -> tuple[str, str]:
        """Consume one token of ``t``; returns the rest and the repeat operator it was, if any."""
        frame = stack[-1]
        c = t[0]
        if c == "(":
            if t.startswith("(?"):
                return self._perl_flags(t, stack), ""
            stack.append(_Frame(flags=self.flags, capture=True))
        elif c == "|":
            frame.branches.append(_concat(frame.items))
            frame.items = []
        elif c == ")":
            if len(stack) < 2:
                raise RegexError(_UNEXPECTED_PAREN, self.whole)
            stack.pop()
            stack[-1].items.append(self._close(frame))
            self.flags = frame.flags
        elif c in "^$":
            multi_line = {"^": "(?m:^)", "$": "(?m:$)"}
            one_line = {"^": "\\A", "$": "\\Z"}
            py = one_line[c] if self.flags & _ONE_LINE else multi_line[c]
            frame.items.append(_leaf("assert", py))
        elif c == ".":
            frame.items.append(_leaf("any", "(?s:.)" if self.flags & _DOT_NL else "."))
        elif c == "[":
            node, rest = self._class(t)
            frame.items.append(node)
            return rest, ""
        elif c in "*+?":
            return self._repeat(frame, t, t[1:], last_repeat=last_repeat, op=c, lo=0, hi=0), t
        elif c == "{":
            parsed = self._parse_repeat(t)
            if parsed is not None:
                lo, hi, after = parsed
                if lo < 0 or lo > _MAX_REPEAT or hi > _MAX_REPEAT or (hi >= 0 and lo > hi):
                    raise RegexError(_INVALID_REPEAT_SIZE, t[: len(t) - len(after)])
                return self._repeat(
                    frame, t, after, last_repeat=last_repeat, op="{", lo=lo, hi=hi
                ), t
            frame.items.append(self._literal(ord("{")))  # not a repeat: a literal brace
        elif c == "\\":
            return self._backslash(t, frame), ""
        else:
            frame.items.append(self._literal(ord(c)))
        return t[1:], ""

    def _close(self, frame: _Frame) -> _Node:
        branches = [*frame.branches, _concat(frame.items)]
        node = _alternate(branches)
        if not frame.capture:
            return node
        return _Node(
            op="capture",
            py=f"(?:{node.py})",
            subs=(node,),
            size=2 + node.size,
            height=1 + node.height,
        )

    def _literal(self, cp: int) -> _Node:
        if self.flags & _FOLD and chr(cp).lower() != chr(cp).upper():
            return _leaf("lit", f"(?i:{_esc(cp)})")
        return _leaf("lit", _esc(cp))

    def _repeat(
        self, frame: _Frame, before: str, after: str, *, last_repeat: str, op: str, lo: int, hi: int
    ) -> str:
        flags = self.flags
        if after.startswith("?"):
            after = after[1:]
            flags ^= _NON_GREEDY
        if last_repeat:
            raise RegexError(_INVALID_REPEAT_OP, last_repeat[: len(last_repeat) - len(after)])
        if not frame.items:
            raise RegexError(_MISSING_REPEAT_ARGUMENT, before[: len(before) - len(after)])
        sub = frame.items[-1]
        lazy = "?" if flags & _NON_GREEDY else ""
        atom = f"(?:{sub.py})"
        if op == "*":
            node = _Node(op="star", py=atom + "*" + lazy, subs=(sub,), size=2 + sub.size)
        elif op == "+":
            node = _Node(op="plus", py=atom + "+" + lazy, subs=(sub,), size=1 + sub.size)
        elif op == "?":
            node = _Node(op="quest", py=atom + "?" + lazy, subs=(sub,), size=1 + sub.size)
        else:
            if hi == -1:
                count = f"{{{lo},}}"
                size = 2 + sub.size if lo == 0 else 1 + lo * sub.size
            else:
                count = f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"
                size = hi * sub.size + (hi - lo)
            node = _Node(
                op="repeat",
                py=atom + count + lazy,
                subs=(sub,),
                size=max(1, size),
                min=lo,
                max=hi,
            )
        node = _Node(
            op=node.op,
            py=node.py,
            subs=node.subs,
            size=node.size,
            height=1 + sub.height,
            min=node.min,
            max=node.max,
        )
        frame.items[-1] = node
        if node.size > _MAX_SIZE:
            raise RegexError(_LARGE, self.whole)
        if op == "{" and (lo >= 2 or hi >= 2) and not _repeat_is_valid(node, _MAX_REPEAT):
            raise RegexError(_INVALID_REPEAT_SIZE, before[: len(before) - len(after)])
        return after

    @staticmethod
    def _parse_int(s: str) -> tuple[int, str] | None:
        if not s or not "0" <= s[0] <= "9":
            return None
        if len(s) >= 2 and s[0] == "0" and "0" <= s[1] <= "9":
            return None  # Go disallows leading zeros
        end = 0
        while end < len(s) and "0" <= s[end] <= "9":
            end += 1
        digits = s[:end]
        # Go stops counting past 10**8 and reports the number as too big (-1).
        value = int(digits) if len(digits) <= 9 else -1
        return value, s[end:]

    def _parse_repeat(self, s: str) -> tuple[int, int, str] | None:
        """Go's parseRepeat: ``{n}``, ``{n,}``, ``{n,m}``, or None when ``{`` is a literal."""
        s = s[1:]
        first = self._parse_int(s)
        if first is None:
            return None
        lo, s = first
        if not s:
            return None
        if s[0] != ",":
            hi = lo
        else:
            s = s[1:]
            if not s:
                return None
            if s[0] == "}":
                hi = -1
            else:
                second = self._parse_int(s)
                if second is None:
                    return None
                hi, s = second
                if hi < 0:
                    lo = -1
        if not s or s[0] != "}":
            return None
        return lo, hi, s[1:]

    def _perl_flags(self, s: str, stack: list[_Frame]) -> str:
        t = s
        starts_with_p = len(t) > 4 and t[2] == "P" and t[3] == "<"
        starts_with_name = len(t) > 3 and t[2] == "<"
        if starts_with_p or starts_with_name:
            expr_start = 4 if starts_with_p else 3
            end = t.find(">")
            if end < 0:
                raise RegexError(_INVALID_NAMED_CAPTURE, s)
            capture = t[: end + 1]
            name = t[expr_start:end]
            if not name or not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name):
                raise RegexError(_INVALID_NAMED_CAPTURE, capture)
            stack.append(_Frame(flags=self.flags, capture=True))
            return t[end + 1 :]

        t = t[2:]
        flags = self.flags
        sign = 1
        saw_flag = False
        while t:
            c, t = t[0], t[1:]
            if c == "i":
                flags = flags | _FOLD if sign > 0 else flags & ~_FOLD
                saw_flag = True
            elif c == "m":
                flags = flags & ~_ONE_LINE if sign > 0 else flags | _ONE_LINE
                saw_flag = True
            elif c == "s":
                flags = flags | _DOT_NL if sign > 0 else flags & ~_DOT_NL
                saw_flag = True
            elif c == "U":
                flags = flags | _NON_GREEDY if sign > 0 else flags & ~_NON_GREEDY
                saw_flag = True
            elif c == "-":
                if sign < 0:
                    break
                sign = -1
                saw_flag = False
            elif c in ":)":
                if sign < 0 and not saw_flag:
                    break
                if c == ":":
                    stack.append(_Frame(flags=self.flags, capture=False))
                self.flags = flags
                return t
            else:
                break
        raise RegexError(_INVALID_PERL_OP, s[: len(s) - len(t)])

    def _backslash(self, t: str, frame: _Frame) -> str:
        if len(t) >= 2:
            c = t[1]
            simple = {"A": "\\A", "b": "(?a:\\b)", "B": _NOT_WORD_BOUNDARY, "z": "\\Z"}
            if c in simple:
                frame.items.append(_leaf("assert", simple[c]))
                return t[2:]
            if c == "C":
                raise RegexError(_INVALID_ESCAPE, t[:2])
            if c == "Q":
                lit, _, rest = t[2:].partition("\\E")
                frame.items.extend(self._literal(ord(ch)) for ch in lit)
                return rest
            if c in "pP":
                ranges, rest = self._unicode_class(t)
                frame.items.append(self._class_node(ranges))
                return rest
            group = _PERL_GROUPS.get(t[:2])
            if group is not None:
                frame.items.append(self._class_node(self._group(group)))
                return t[2:]
        cp, rest = self._escape(t)
        frame.items.append(self._literal(cp))
        return rest

    def _escape(self, s: str) -> tuple[int, str]:
        """Go's parseEscape: one escaped character, as a code point."""
        t = s[1:]
        if not t:
            raise RegexError(_TRAILING_BACKSLASH, "")
        c, t = t[0], t[1:]
        controls = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if c.isascii() and not c.isalnum():
            return ord(c), t
        if c in controls:
            return controls[c], t
        # A lone \1-\7 would be a backreference, which Go does not support.
        if c == "0" or (c in "1234567" and t and "0" <= t[0] <= "7"):
            value = int(c)
            for _ in range(2):
                if not t or not "0" <= t[0] <= "7":
                    break
                value = value * 8 + int(t[0])
                t = t[1:]
            return value, t
        if c == "x" and t:
            c, t = t[0], t[1:]
            if c == "{":
                value = 0
                digits = 0
                while t:
                    c, t = t[0], t[1:]
                    if c == "}":
                        if digits:
                            return value, t
                        break
                    if c not in _HEX:
                        break
                    value = value * 16 + int(c, 16)
                    if value > _MAX_RUNE:
                        break
                    digits += 1
            else:
                second, t = (t[0], t[1:]) if t else ("", "")
                if c in _HEX and second and second in _HEX:
                    return int(c + second, 16), t
        raise RegexError(_INVALID_ESCAPE, s[: len(s) - len(t)])

    def _group(self, group: tuple[int, _Ranges]) -> tuple[int, _Ranges]:
        sign, ranges = group
        return sign, list(ranges)

    def _unicode_class(self, s: str) -> tuple[tuple[int, _Ranges], str]:
        """Go's parseUnicodeClass for ``\\pN``, ``\\p{Name}``, ``\\PN``, ``\\p{^Name}``."""
        sign = -1 if s[1] == "P" else 1
        t = s[2:]
        if not t or t[0] != "{":
            seq = s[: 3 if t else 2]
            name = seq[2:]
            rest = t[1:]
        else:
            end = s.find("}")
            if end < 0:
                raise RegexError(_INVALID_CHAR_RANGE, s)
            seq, rest = s[: end + 1], s[end + 1 :]
            name = s[3:end]
        if name.startswith("^"):
            sign = -sign
            name = name[1:]
        table = _unicode_table(name)
        if table is None:
            raise RegexError(_INVALID_CHAR_RANGE, seq)
        key, table_sign = table
        sign *= table_sign
        if key.startswith("script:"):
            self.unsupported = self.unsupported or f"Unicode script class {seq}"
            return (sign, []), rest
        if not self.build:
            return (sign, []), rest
        return (sign, _table_ranges(key)), rest

    def _class(self, s: str) -> tuple[_Node, str]:
        """Go's parseClass: a bracketed class, checked as Go checks it."""
        t = s[1:]
        negated = False
        if t.startswith("^"):
            negated = True
            t = t[1:]
        ranges: _Ranges = []
        first = True
        while not t or t[0] != "]" or first:
            first = False
            if len(t) > 2 and t[0] == "[" and t[1] == ":":
                end = t.find(":]", 2)
                if end >= 0:
                    name = t[: end + 2]
                    group = _POSIX_GROUPS.get(name)
                    if group is None:
                        raise RegexError(_INVALID_CHAR_RANGE, name)
                    ranges.extend(self._signed(group))
                    t = t[end + 2 :]
                    continue
            if len(t) >= 2 and t[0] == "\\" and t[1] in "pP":
                group, t = self._unicode_class(t)
                ranges.extend(self._signed(group))
                continue
            perl = _PERL_GROUPS.get(t[:2])
            if perl is not None:
                ranges.extend(self._signed(perl))
                t = t[2:]
                continue
            rng = t
            lo, t = self._class_char(t, s)
            hi = lo
            if len(t) >= 2 and t[0] == "-" and t[1] != "]":
                t = t[1:]
                hi, t = self._class_char(t, s)
                if hi < lo:
                    raise RegexError(_INVALID_CHAR_RANGE, rng[: len(rng) - len(t)])
            ranges.append((lo, hi))
        t = t[1:]
        return self._class_node((-1 if negated else 1, ranges)), t

    def _class_char(self, s: str, whole: str) -> tuple[int, str]:
        if not s:
            raise RegexError(_MISSING_BRACKET, whole)
        if s[0] == "\\":
            return self._escape(s)
        return ord(s[0]), s[1:]

    def _signed(self, group: tuple[int, _Ranges]) -> _Ranges:
        sign, ranges = group
        if not self.build:
            return []
        return _negate(ranges) if sign < 0 else list(ranges)

    def _class_node(self, group: tuple[int, _Ranges]) -> _Node:
        sign, ranges = group
        if not self.build:
            return _leaf("class", "")
        final = _negate(ranges) if sign < 0 else _clean(ranges)
        if self.flags & _FOLD:
            # Python folds a negated class after negating, as Go does: keep the sign.
            body = "".join(_range_py(lo, hi) for lo, hi in _clean(ranges))
            if not body:
                return _leaf("class", "(?s:.)" if sign < 0 else "(?!)")
            return _leaf("class", f"(?i:[{'^' if sign < 0 else ''}{body}])")
        if not final:
            return _leaf("class", "(?!)")
        return _leaf("class", "[" + "".join(_range_py(lo, hi) for lo, hi in final) + "]")


def _range_py(lo: int, hi: int) -> str:
    if lo == hi:
        return f"\\U{lo:08x}"
    return f"\\U{lo:08x}-\\U{hi:08x}"


def check(pattern: str) -> None:
    """Raise :class:`RegexError` exactly when Go's ``regexp.Compile(pattern)`` fails."""
    _Parser(pattern, build=False).parse()


@dataclass(frozen=True)
class GoRegexp:
    """A Go regexp compiled to an equivalent Python one."""

    pattern: str
    python: re.Pattern[str]

    def search(self, text: str) -> bool:
        """Go's ``MatchString``: does the pattern match anywhere in ``text``?"""
        return self.python.search(text) is not None


@functools.lru_cache(maxsize=256)
def compile_go(pattern: str) -> GoRegexp:
    """Compile a Go regexp for matching; RegexError as Go, RegexUnsupported where Python can't."""
    parser = _Parser(pattern, build=True)
    root = parser.parse()
    if parser.unsupported:
        raise RegexUnsupported(pattern, f"{parser.unsupported} needs Unicode script data")
    try:
        python = re.compile(root.py)
    except (re.error, RecursionError, OverflowError) as exc:
        raise RegexUnsupported(
            pattern, f"Python's re cannot compile its translation ({exc})"
        ) from None
    return GoRegexp(pattern=pattern, python=python)
