"""JSON from outside (request bodies, typed metadata, preview values), nesting bounded.

``json.loads`` recurses once per list or object inside another, so a body nested a few
thousand levels deep ends in a RecursionError (an HTTP 500) and far fewer make every later
walk over the value slow. ``load_json`` counts the nesting first, in one pass that never
recurses, and refuses what goes deeper than the limit with a JSONDecodeError, which every
caller of json.loads already catches, naming the limit and where it was passed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from registry_ui.core.limits import MAX_JSON_DEPTH

_STRUCTURE = re.compile(r'[\[\]{}"]')
_STRING_END = re.compile(r'["\\]')


class JsonNestingError(json.JSONDecodeError):
    """JSON whose lists and objects go deeper than the limit; ``limit`` is that limit."""

    def __init__(self, doc: str, pos: int, limit: int):
        self.limit = limit
        super().__init__(
            f"lists and objects are nested more than {limit} levels deep here: at most "
            f"{limit} levels are accepted",
            doc,
            pos,
        )

    def __reduce__(self):
        return type(self), (self.doc, self.pos, self.limit)


def load_json(data: str | bytes | bytearray, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(data)``, refusing nesting deeper than ``max_depth`` before parsing.

    Raises JSONDecodeError (JsonNestingError for the nesting), or UnicodeDecodeError for
    bytes that are not text, as json.loads does.
    """
    text = _as_text(data)
    position = deepest_nesting(text, max_depth)
    if position is not None:
        raise JsonNestingError(text, position, max_depth)
    return json.loads(text)


def deepest_nesting(text: str, max_depth: int) -> int | None:
    """Where the text's brackets first go deeper than max_depth (None: they never do).

    Brackets inside strings do not count; the text need not be valid JSON (json.loads says
    what else is wrong with it).
    """
    depth = 0
    position = 0
    while match := _STRUCTURE.search(text, position):
        char = match.group()
        position = match.end()
        if char == '"':
            position = _after_string(text, position)
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        else:
            depth = max(depth - 1, 0)
    return None


def _after_string(text: str, position: int) -> int:
    while match := _STRING_END.search(text, position):
        if match.group() == '"':
            return match.end()
        position = match.end() + 1  # the character after a backslash is escaped
    return len(text)


def _as_text(data: str | bytes | bytearray) -> str:
    if isinstance(data, str):
        return data
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"JSON must be str or bytes, not {type(data).__name__}")
    # What json.loads does with bytes: UTF-8, -16 or -32, told by the first bytes.
    return bytes(data).decode(json.detect_encoding(data), "surrogatepass")
