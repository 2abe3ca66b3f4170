"""Go's error messages, and RE2's rejections told in Go's words.

Go's parser was ported from RE2's, so both stop at the same first error and most of the time
name the same fragment of the pattern; they word the error differently (RE2 ``missing ]``, Go
``missing closing ]``). :func:`to_go` rewords RE2's message, and points the fragment back at
the user's pattern where RE2 saw a respelled one (``\\p`` names, see :mod:`.names`).
"""

from __future__ import annotations

from tunnel.errors import RegexError

__all__ = [
    "INVALID_CHAR_RANGE",
    "INVALID_ESCAPE",
    "INVALID_NAMED_CAPTURE",
    "INVALID_REPEAT_SIZE",
    "INVALID_UTF8",
    "LARGE",
    "NESTING_DEPTH",
    "is_cut_short",
    "is_too_large",
    "to_go",
]

# Go's error codes (regexp/syntax ErrorCode), for the errors this package raises itself.
INVALID_CHAR_RANGE = "invalid character class range"
INVALID_ESCAPE = "invalid escape sequence"
INVALID_NAMED_CAPTURE = "invalid named capture"
INVALID_REPEAT_SIZE = "invalid repeat count"
INVALID_UTF8 = "invalid UTF-8"
NESTING_DEPTH = "expression nests too deeply"
LARGE = "expression too large"

# RE2's error texts (RE2::ErrorCode, regexp.cc) and Go's names for the same errors.
_GO_CODES = {
    "invalid escape sequence": INVALID_ESCAPE,
    "invalid character class": "invalid character class",
    "invalid character class range": INVALID_CHAR_RANGE,
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": INVALID_REPEAT_SIZE,
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid UTF-8": INVALID_UTF8,
    "invalid named capture group": INVALID_NAMED_CAPTURE,
}
# Go names the whole pattern for these, whatever RE2 quotes.
_WHOLE_PATTERN = frozenset({"missing )", "unexpected )"})
# What RE2 says about a pattern cut short (the part before an error only Go sees): not errors.
_CUT_SHORT = frozenset({"missing )", "missing ]"})
# RE2 parsed the pattern but its program outgrew the memory budget (not a syntax error).
_TOO_LARGE = "pattern too large"


def _split(message: str) -> tuple[str, str]:
    code, _, fragment = message.partition(": ")
    return code, fragment


def is_too_large(message: str) -> bool:
    """Whether RE2 parsed the pattern and only its compiled program was over budget."""
    return message.startswith(_TOO_LARGE)


def is_cut_short(message: str) -> bool:
    """Whether RE2's complaint about a pattern's prefix only says that the prefix is cut short."""
    return _split(message)[0] in _CUT_SHORT


def to_go(message: str, pattern: str, *, open_class: int | None) -> RegexError:
    """RE2's error ``message`` about ``pattern`` as the error Go reports.

    ``open_class`` is where the pattern's unclosed ``[`` starts, if it has one: Go quotes the
    pattern from there on when the ``]`` is missing.
    """
    code, fragment = _split(message)
    go_code = _GO_CODES.get(code)
    if go_code is None:
        # A message this table has not seen (a newer google-re2): keep RE2's words.
        return RegexError(code, fragment)
    if code in _WHOLE_PATTERN:
        fragment = pattern
    elif code == "missing ]" and open_class is not None:
        fragment = pattern[open_class:]
    elif code == "trailing \\":
        fragment = ""
    return RegexError(go_code, fragment)
