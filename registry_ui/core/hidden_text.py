"""Characters in a template that a reader cannot see, or that change the order text is shown in.

"Trojan Source" (CVE-2021-42574): bidirectional controls reorder what a page or a diff shows,
so ``== RLO LRI admin PDI LRI ZWSP {user} ZWSP`` reads as ``== {user}  admin`` while the model
is sent the characters in their real order; zero-width characters hide text or split words
without a trace. Validation warns about each one at line:column (a setting can refuse them),
and every page that shows template text shows them as visible ``<U+202E>`` badges instead.

Emoji sequences join with ZERO WIDTH JOINER and end flags with tag characters: those are
what they look like and are left alone.

Pure Python: no Django, no MLflow.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from registry_ui.core.template import TemplateError

# Bidirectional formatting characters (Unicode's Bidi_Control, and the marks).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Characters that take no room: zero-width spaces and joiners, invisible operators, the BOM,
# the soft hyphen, the Mongolian vowel separator, Hangul fillers, and the tag characters.
INVISIBLE = frozenset(
    "\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u115f\u1160\u3164\uffa0"
)
_TAGS = range(0xE0000, 0xE0080)
_ZWJ = "\u200d"
_WAVING_BLACK_FLAG = "\U0001f3f4"  # a subdivision flag: 🏴 then tag characters, then U+E007F
_EXTENDED_PICTOGRAPHIC_START = 0x1F000
_CANDIDATES = re.compile(
    "[" + "".join(sorted(BIDI_CONTROLS | INVISIBLE)) + "\U000e0000-\U000e007f]"
)

CODE = "hidden-character"


@dataclass(frozen=True)
class HiddenCharacter:
    """One character a reader cannot see, or that reorders the text; offset in characters."""

    char: str
    offset: int
    line: int
    column: int

    @property
    def codepoint(self) -> str:
        return f"U+{ord(self.char):04X}"

    @property
    def name(self) -> str:
        return unicodedata.name(self.char, "UNNAMED CHARACTER")

    @property
    def reorders(self) -> bool:
        return self.char in BIDI_CONTROLS

    @property
    def message(self) -> str:
        where = f"{self.line}:{self.column}"
        if self.reorders:
            effect = (
                "changes the order in which the text around it is shown, so what a reader "
                "sees is not what the model is sent"
            )
        else:
            effect = "cannot be seen, so a reader does not know it is there"
        return (
            f"{self.codepoint} {self.name} at {where} {effect}: remove it unless it is meant "
            "(pages show it as a badge)"
        )


def hidden_characters(text: str) -> list[HiddenCharacter]:
    """Every hidden or reordering character of ``text``, in order, with line and column."""
    found = []
    line_starts: list[int] | None = None
    for match in _CANDIDATES.finditer(text):
        offset = match.start()
        if _part_of_emoji(text, offset):
            continue
        if line_starts is None:
            line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        line = bisect.bisect_right(line_starts, offset)
        found.append(
            HiddenCharacter(match.group(), offset, line, offset - line_starts[line - 1] + 1)
        )
    return found


def hidden_character_warnings(text: str) -> list[TemplateError]:
    """A warning at line:column for each hidden character (code "hidden-character")."""
    return [TemplateError(CODE, h.message, h.line, h.column) for h in hidden_characters(text)]


def has_hidden_characters(text: str) -> bool:
    return any(not _part_of_emoji(text, m.start()) for m in _CANDIDATES.finditer(text or ""))


def pieces(text: str) -> Iterator[tuple[str, HiddenCharacter | None]]:
    """The text as (plain text, None) and ("", hidden character) pieces, in order."""
    position = 0
    for hidden in hidden_characters(text):
        if hidden.offset > position:
            yield text[position : hidden.offset], None
        yield "", hidden
        position = hidden.offset + 1
    if position < len(text):
        yield text[position:], None


def _part_of_emoji(text: str, offset: int) -> bool:
    char = text[offset]
    if char == _ZWJ:
        # 👩‍💻: a joiner between two pictographs (a variation selector may stand before it).
        before = text[offset - 1] if offset else ""
        if before == "\ufe0f" and offset >= 2:
            before = text[offset - 2]
        after = text[offset + 1] if offset + 1 < len(text) else ""
        return _pictographic(before) and _pictographic(after)
    if ord(char) in _TAGS:
        # 🏴󠁧󠁢󠁳󠁣󠁴󠁿: the flag, then tag characters up to the cancel tag.
        start = offset
        while start > 0 and ord(text[start - 1]) in _TAGS:
            start -= 1
        return start > 0 and text[start - 1] == _WAVING_BLACK_FLAG
    return False


def _pictographic(char: str) -> bool:
    if not char:
        return False
    return ord(char) >= _EXTENDED_PICTOGRAPHIC_START or unicodedata.category(char) == "So"
