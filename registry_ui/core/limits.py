"""Size limits, each said once: the library, the file loader and the dashboard use these.

MLflow keeps a tag value up to 100,000 characters (its tag limit, which holds a template's
text and its metadata as JSON); free text written by people (justifications, comments,
reasons) and error texts kept on rows are cut or refused at 5,000 characters.

``InputLimits`` bounds the work that what people write can make the server do: format specs
that would build gigabytes, rendered texts, test case runs, YAML aliases, hidden characters.
Each has a variable: the format limits are read here (the core renders with them on its own),
the others by registry_ui/settings.py ("Input limits (security)") into settings.INPUT_LIMITS.
docs/security.md, "Limits on input", lists them all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


def _env_int(name: str, default: int) -> int:
    """A limit a deployment may change through the environment (docs/security.md)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name}={text!r}: use a whole number of at least 1")
    return int(text)


MAX_TEMPLATE_LENGTH = 100_000
MAX_METADATA_JSON_LENGTH = 100_000
MAX_TEXT = 5000

# A format spec's width and precision build text before anything can cut it:
# "{x:>999999999}" is a gigabyte. Refused at validation (line:column) when written in the
# template, and by every render the server does (nested specs take values from the caller),
# before anything is allocated. A whole render is cut off at MAX_RENDERED_LENGTH characters.
MAX_FORMAT_WIDTH = _env_int("REGISTRY_UI_MAX_FORMAT_WIDTH", 1000)
MAX_FORMAT_PRECISION = _env_int("REGISTRY_UI_MAX_FORMAT_PRECISION", 100)
MAX_RENDERED_LENGTH = _env_int("REGISTRY_UI_MAX_RENDERED_LENGTH", 1_000_000)

# JSON nested deeper than this is refused before it is parsed: Python's parser recurses, and
# 5,000 levels end in a RecursionError (an HTTP 500) instead of an answer.
MAX_JSON_DEPTH = 64


def loads_json(text: str | bytes) -> object:
    """json.loads, refusing nesting deeper than MAX_JSON_DEPTH with a JSONDecodeError that
    says where (its lineno and colno) and what is accepted."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        _check_depth(text)
    return json.loads(text)


def _check_depth(text: str) -> None:
    depth, in_string, escaped = 0, False, False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise json.JSONDecodeError(
                    f"nested more than {MAX_JSON_DEPTH} levels deep; at most "
                    f"{MAX_JSON_DEPTH} are accepted",
                    text,
                    position,
                )
        elif char in "]}":
            depth -= 1


@dataclass(frozen=True)
class InputLimits:
    """What the server accepts and how much work one request or one check run may cost."""

    # The width and the precision a format spec may ask for ('{x:>1000}', '{x:.100f}'),
    # written in the template or given by a value ('{x:>{w}}').
    format_width: int = MAX_FORMAT_WIDTH
    format_precision: int = MAX_FORMAT_PRECISION
    # Characters of one rendered text: previews, test cases, the worker's checks; and the most
    # rendered text one run of test cases keeps in its results.
    rendered_length: int = MAX_RENDERED_LENGTH
    # Work one run of a version's test cases may do, in steps: each character rendered or
    # searched is a step, and a regular expression's search costs the text's length times
    # the size of its compiled program (RE2's bound on its own work).
    check_steps: int = 1_000_000_000
    # Characters of a template file, and of its YAML with every alias written out.
    template_file_size: int = 5_000_000
    # Nodes that YAML aliases ('*name', '<<: *name') may repeat in one template file.
    yaml_alias_nodes: int = 10_000
    # Bidirectional controls and invisible characters in a template's text: warned about
    # always; refused too when this is true.
    refuse_hidden_characters: bool = False

    def __post_init__(self) -> None:
        for name in (
            "format_width",
            "format_precision",
            "rendered_length",
            "check_steps",
            "template_file_size",
            "yaml_alias_nodes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number, 0 or more; got {value!r}")


DEFAULT_LIMITS = InputLimits()
