"""The names Go accepts in ``\\p{Name}``, and how to spell each one for RE2.

Go (1.25 on) looks a name up case-insensitively, ignoring ``_``, ``-`` and spaces, and knows
the long category names (``\\p{Letter}``), ``Any``, ``ASCII``, ``Assigned``, ``LC`` and ``Cn``.
RE2 wants the exact short spelling and has no ``ASCII``, ``Assigned``, ``LC`` or ``Cn``; its
Unicode tables (15.1 in google-re2 1.1.20251105) also lack the scripts added since. So the
name is resolved here, as Go resolves it, and written back in a spelling RE2 accepts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import re2

__all__ = ["UnicodeClass", "canonical", "lookup"]

# Unicode general categories, as Go's unicode.Categories names them. (These tables are text
# blocks on purpose: as list literals they would take one line per name.)
_CATEGORIES = frozenset(
    """
    C Cc Cf Cn Co Cs L LC Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm
    So Z Zl Zp Zs
    """.split()  # noqa: SIM905
)

# Long category names (Unicode PropertyValueAliases), as Go's unicode.CategoryAliases has them.
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

# Unicode script names: Unicode 17, the version Go's unicode package carries.
_SCRIPTS = frozenset(
    """
    Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak
    Bengali Beria_Erfe Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal
    Carian Caucasian_Albanian Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot
    Cypro_Minoan Cyrillic Deseret Devanagari Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs
    Elbasan Elymaic Ethiopic Garay Georgian Glagolitic Gothic Grantha Greek Gujarati
    Gunjala_Gondi Gurmukhi Gurung_Khema Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana
    Imperial_Aramaic Inherited Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi
    Kannada Katakana Kawi Kayah_Li Kharoshthi Khitan_Small_Script Khmer Khojki Khudawadi
    Kirat_Rai Lao Latin Lepcha Limbu Linear_A Linear_B Lisu Lycian Lydian Mahajani Makasar
    Malayalam Mandaic Manichaean Marchen Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui
    Meroitic_Cursive Meroitic_Hieroglyphs Miao Modi Mongolian Mro Multani Myanmar Nabataean
    Nag_Mundari Nandinagari New_Tai_Lue Newa Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki
    Ol_Onal Old_Hungarian Old_Italic Old_North_Arabian Old_Permic Old_Persian Old_Sogdian
    Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage Osmanya Pahawh_Hmong Palmyrene
    Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic Samaritan Saurashtra Sharada
    Shavian Siddham Sidetic SignWriting Sinhala Sogdian Sora_Sompeng Soyombo Sundanese Sunuwar
    Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham Tai_Viet Tai_Yo Takri Tamil Tangsa
    Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Todhri Tolong_Siki Toto Tulu_Tigalari
    Ugaritic Vai Vithkuqi Wancho Warang_Citi Yezidi Yi Zanabazar_Square
    """.split()  # noqa: SIM905
)

# Tables RE2 lacks, written as RE2 class items: (positive, negated), where None means that
# this sign cannot be written inside a bracketed class.
_SPELLED_OUT: dict[str, tuple[str, str | None]] = {
    "ASCII": ("\\x00-\\x7F", "\\x{80}-\\x{10FFFF}"),
    "LC": ("\\p{Lu}\\p{Ll}\\p{Lt}", None),
}


def canonical(name: str) -> str:
    """Go's canonicalName: drop ``_ -`` and spaces, first letter upper, the rest lower."""
    out: list[str] = []
    for char in name:
        if char in "_- ":
            continue
        if not out:
            out.append(char.upper() if "a" <= char <= "z" else char)
        else:
            out.append(char.lower() if "A" <= char <= "Z" else char)
    return "".join(out)


_CANONICAL = (
    {canonical(name): name for name in _SCRIPTS}
    | {canonical(name): name for name in _CATEGORIES if name != "LC"}
    | {canonical(alias): actual for alias, actual in _CATEGORY_ALIASES.items()}
)


@dataclass(frozen=True, slots=True)
class UnicodeClass:
    """A ``\\p`` class Go accepts: its table and sign, and how RE2 can say the same."""

    table: str
    negated: bool

    @property
    def re2_has_table(self) -> bool:
        """Whether the installed RE2 has this table (its Unicode version may lag Go's)."""
        return _re2_knows(self.table)

    def re2_item(self, *, in_class: bool) -> str | None:
        """The class in RE2's syntax, or None when RE2 cannot match it (no such table)."""
        if self.re2_has_table:
            return ("\\P{%s}" if self.negated else "\\p{%s}") % self.table
        spelled = _SPELLED_OUT.get(self.table)
        if spelled is None:
            return None
        positive, negated = spelled
        if in_class:
            return negated if self.negated else positive
        return f"[{'^' if self.negated else ''}{positive}]"


def lookup(name: str, *, negated: bool) -> UnicodeClass | None:
    """Go's unicodeTable: the class ``\\p{name}`` (``\\P`` when negated) means, or None."""
    if name.startswith("^"):
        name, negated = name[1:], not negated
    key = canonical(name)
    special = {"Any": "Any", "Ascii": "ASCII", "Lc": "LC"}
    if key in special:
        return UnicodeClass(table=special[key], negated=negated)
    if key == "Assigned":
        return UnicodeClass(table="Cn", negated=not negated)
    if key in _CATEGORIES or key in _SCRIPTS:
        return UnicodeClass(table=key, negated=negated)
    table = _CANONICAL.get(key)
    return None if table is None else UnicodeClass(table=table, negated=negated)


@functools.cache
def _re2_knows(table: str) -> bool:
    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(f"\\p{{{table}}}", options)
    except re2.error:
        return False
    return True
