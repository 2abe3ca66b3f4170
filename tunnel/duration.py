"""Go's ``time.Duration`` as cloudflared reads and writes it.

In ``config.yml`` a duration is a Go duration string (``30s``, ``1m30s``, ``1.5s``), parsed by
``time.ParseDuration``; a bare number is an error there. In the remote (API) configuration it
is a whole number of seconds. :class:`Duration` holds nanoseconds like Go and converts both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Duration", "DurationError"]

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_LIMIT = 1 << 63  # Go checks overflow against 1<<63 while parsing


class DurationError(ValueError):
    """Not a Go duration string; the message is Go's."""


@dataclass(frozen=True, order=True)
class Duration:
    """A span of time in nanoseconds, printed and parsed the way Go does."""

    nanoseconds: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse like Go's ``time.ParseDuration`` (``"1h30m"``, ``"1.5s"``, ``"-2ms"``, ``"0"``)."""
        original = text
        s = text
        negative = False
        if s and s[0] in "+-":
            negative = s[0] == "-"
            s = s[1:]
        if s == "0":
            return cls(0)
        if not s:
            raise DurationError(f"time: invalid duration {_quote(original)}")
        total = 0
        while s:
            if not (s[0] == "." or (s[0].isascii() and s[0].isdigit())):
                raise DurationError(f"time: invalid duration {_quote(original)}")
            whole, s = _leading_digits(s)
            if whole and int(whole) > _LIMIT:
                raise DurationError(f"time: invalid duration {_quote(original)}")
            fraction = ""
            if s.startswith("."):
                fraction, s = _leading_digits(s[1:])
                if not whole and not fraction:
                    raise DurationError(f"time: invalid duration {_quote(original)}")
            end = 0
            while end < len(s) and not (s[end] == "." or (s[end].isascii() and s[end].isdigit())):
                end += 1
            if end == 0:
                raise DurationError(f"time: missing unit in duration {_quote(original)}")
            unit_name, s = s[:end], s[end:]
            unit = _UNITS.get(unit_name)
            if unit is None:
                raise DurationError(
                    f"time: unknown unit {_quote(unit_name)} in duration {_quote(original)}"
                )
            value = int(whole or "0") * unit
            if fraction:
                # Go scales the fraction in floating point; this keeps the same truncation.
                value += int(int(fraction) * (unit / 10 ** len(fraction)))
            total += value
            if value > _LIMIT or total > _LIMIT:
                raise DurationError(f"time: invalid duration {_quote(original)}")
        if not negative and total > _LIMIT - 1:
            raise DurationError(f"time: invalid duration {_quote(original)}")
        return cls(-total if negative else total)

    @classmethod
    def of(cls, *, hours: int = 0, minutes: int = 0, seconds: float = 0) -> Duration:
        """A duration from hours, minutes and seconds."""
        return cls(hours * HOUR + minutes * MINUTE + round(seconds * SECOND))

    @property
    def whole_seconds(self) -> int:
        """The duration in seconds, as the remote config needs; ValueError if not whole."""
        seconds, rest = divmod(self.nanoseconds, SECOND)
        if rest:
            raise ValueError(f"{self} is not a whole number of seconds")
        return seconds

    def __str__(self) -> str:
        """Go's ``Duration.String``: ``1h0m0s``, ``1m30s``, ``1.5s``, ``500ms``, ``0s``."""
        u = abs(self.nanoseconds)
        sign = "-" if self.nanoseconds < 0 else ""
        if u == 0:
            return "0s"
        if u < SECOND:
            if u < MICROSECOND:
                return f"{sign}{u}ns"
            if u < MILLISECOND:
                return f"{sign}{_frac(u, MICROSECOND)}\u00b5s"
            return f"{sign}{_frac(u, MILLISECOND)}ms"
        seconds = _frac(u % MINUTE, SECOND) + "s"
        minutes, hours = (u // MINUTE) % 60, u // HOUR
        if u < MINUTE:
            return f"{sign}{seconds}"
        if u < HOUR:
            return f"{sign}{minutes}m{seconds}"
        return f"{sign}{hours}h{minutes}m{seconds}"


def _leading_digits(s: str) -> tuple[str, str]:
    end = 0
    while end < len(s) and s[end].isascii() and s[end].isdigit():
        end += 1
    return s[:end], s[end:]


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
