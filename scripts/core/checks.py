"""One checked property with its evidence: the unit every ``doit security`` report is made of.

The container audit, the network isolation check, the header grade, the WAF check and the
attack simulation each return :class:`Check` values; :mod:`scripts.security.run` groups them into
sections, writes them out and gates on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True, kw_only=True)
class Check:
    """One property that holds (``ok``) or not, and what was seen."""

    #: Stable identifier, e.g. ``IMG-USER`` or ``ATK-SMUGGLE-CL-TE``.
    id: str
    #: What should hold, in a few words.
    title: str
    ok: bool
    #: What was seen: a value, a list of files, a status line.
    evidence: str

    def to_json(self) -> dict[str, object]:
        """The check as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Check:
        """Read a check written by :meth:`to_json`."""
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            ok=bool(data["ok"]),
            evidence=str(data["evidence"]),
        )


def failed(checks: Iterable[Check]) -> list[Check]:
    """The checks that did not hold."""
    return [check for check in checks if not check.ok]


def listing(items: Iterable[str], limit: int = 8) -> str:
    """``a, b, c (+N more)``: evidence that names what was found without flooding the report."""
    shown = list(items)
    if not shown:
        return "none"
    head = ", ".join(shown[:limit])
    return head + (f" (+{len(shown) - limit} more)" if len(shown) > limit else "")
