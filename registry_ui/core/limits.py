"""Size limits, each said once: the library, the file loader and the dashboard use these.

MLflow keeps a tag value up to 100,000 characters (its tag limit, which holds a template's
text and its metadata as JSON); free text written by people (justifications, comments,
reasons) and error texts kept on rows are cut or refused at 5,000 characters.

``InputLimits`` bounds the work that what people write can make the server do: format specs
that would build gigabytes, rendered texts, test case runs, YAML aliases, hidden characters.
Each has a setting (registry_ui/settings.py, "Input limits (security)"); the defaults below
are those of docs/security.md, "Limits on input", and what the library uses on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TEMPLATE_LENGTH = 100_000
MAX_METADATA_JSON_LENGTH = 100_000
MAX_TEXT = 5000

# Lists and objects inside each other in any JSON the server reads (request bodies, metadata,
# preview values): deeper input is refused with a 400 naming this limit, never parsed.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class InputLimits:
    """What the server accepts and how much work one request or one check run may cost."""

    # The width and the precision a format spec may ask for ('{x:>1000}', '{x:.100f}'),
    # written in the template or given by a value ('{x:>{w}}').
    format_width: int = 1_000
    format_precision: int = 100
    # Characters of one rendered text: previews, test cases, the worker's checks.
    rendered_length: int = 200_000
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
