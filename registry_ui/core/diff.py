"""What changes between two versions of a template: text, fields, metadata and the bump needed.

Everything returned is plain JSON (dicts, lists, strings, numbers, booleans, None), ready for a
view or an API response.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from registry_ui.core.semver import (
    Bump,
    SemVer,
    declared_bump,
    required_bump,
    same_json,
)
from registry_ui.core.template import Field, ParsedTemplate, parse_template

# A whole simple field, an escaped brace, a word, a run of spaces, or any other single
# character: every character falls in exactly one token, so tokens join back to the text.
_WORD = re.compile(r"\{[^{}]*\}|\{\{|\}\}|\w+|\s+|[^\w\s]")
# Comparing word lists costs up to (old words x new words) steps, and far more on repetitive
# text: a million pairs is at most a few tenths of a second, even on the worst text seen.
WORD_PAIRS_BUDGET = 1_000_000


def compare_templates(
    old_text: str,
    new_text: str,
    *,
    old_metadata: Mapping[str, Any] | None = None,
    new_metadata: Mapping[str, Any] | None = None,
    old_version: str | None = None,
    new_version: str | None = None,
    old_extra: Mapping[str, Any] | None = None,
    new_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What changes from old to new: "template_diff", "metadata_diff" and "bump".

    With a chat template, model configuration or response format on either side (``*_extra``,
    core/messages.py) also "messages_diff", "model_config_diff" and "response_format_diff".

    The bump's "declared", "ok" and "minimum_version" are None unless both versions are given.
    Raises TemplateValidationError if either text is not a valid template.
    """
    old, new = parse_template(old_text), parse_template(new_text)
    result = {
        "template_diff": _template_diff(old, new, old_version or "old", new_version or "new"),
        "metadata_diff": metadata_diff(old_metadata or {}, new_metadata or {}),
        "bump": _bump_section(
            old, new, old_metadata, new_metadata, old_version, new_version, old_extra, new_extra
        ),
    }
    if old_extra or new_extra:
        from registry_ui.core.messages import side_by_side

        old_extra, new_extra = old_extra or {}, new_extra or {}
        result["messages_diff"] = messages_diff(
            old_extra.get("messages"), new_extra.get("messages")
        )
        result["model_config_diff"] = side_by_side(
            old_extra.get("model_config"), new_extra.get("model_config")
        )
        result["response_format_diff"] = line_diff(
            json.dumps(old_extra.get("response_format"), indent=2, sort_keys=True)
            if old_extra.get("response_format") is not None
            else "",
            json.dumps(new_extra.get("response_format"), indent=2, sort_keys=True)
            if new_extra.get("response_format") is not None
            else "",
        )
    return result


def _template_diff(
    old: ParsedTemplate, new: ParsedTemplate, old_label: str, new_label: str
) -> dict[str, Any]:
    added = [name for name in new.variables if name not in old.variables]
    removed = [name for name in old.variables if name not in new.variables]
    fields_changed = _fields_changed(old.fields, new.fields)
    return {
        "variables_added": added,
        "variables_removed": removed,
        "fields_changed": fields_changed,
        # Callers do not pass new variables, and a new spec may not suit the values they pass.
        "breaks_callers": bool(added or fields_changed),
        "unchanged": old.text == new.text,
        "lines": line_diff(old.text, new.text),
        "unified": unified_diff(old.text, new.text, old_label, new_label),
    }


def _fields_changed(
    old_fields: tuple[Field, ...], new_fields: tuple[Field, ...]
) -> list[dict[str, Any]]:
    """Fields kept by path whose spec or conversion changed.

    A path may be used several times with different forms; a form that appears is paired
    with one that disappeared, or with the path's first old form when none did.
    """
    old_forms, new_forms = _forms_by_path(old_fields), _forms_by_path(new_fields)
    changed = []
    for path, forms in new_forms.items():
        if path not in old_forms:
            continue
        gone = [form for form in old_forms[path] if form not in forms]
        appeared = [form for form in forms if form not in old_forms[path]]
        for position, (new_spec, new_conversion) in enumerate(appeared):
            old_spec, old_conversion = (
                gone[position] if position < len(gone) else old_forms[path][0]
            )
            changed.append(
                {
                    "path": path,
                    "old_format_spec": old_spec,
                    "new_format_spec": new_spec,
                    "old_conversion": old_conversion,
                    "new_conversion": new_conversion,
                }
            )
    return changed


def _forms_by_path(fields: tuple[Field, ...]) -> dict[str, list[tuple[str, str | None]]]:
    forms: dict[str, list[tuple[str, str | None]]] = {}
    for each in fields:
        form = (each.format_spec, each.conversion)
        if form not in forms.setdefault(each.path, []):
            forms[each.path].append(form)
    return forms


def line_diff(old_text: str, new_text: str) -> list[dict[str, Any]]:
    """Hunks over lines ('\\n'-separated), with word-level segments on replaced hunks."""
    old_lines, new_lines = old_text.split("\n"), new_text.split("\n")
    # difflib's default autojunk, as in its own unified_diff: it keeps long texts fast.
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines)
    budget = _PairBudget(WORD_PAIRS_BUDGET)  # one for all hunks: many large hunks stay cheap
    hunks = []
    for op, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        hunk = {
            "op": op,
            "old_start": old_start + 1,
            "new_start": new_start + 1,
            "old": old_lines[old_start:old_end],
            "new": new_lines[new_start:new_end],
        }
        if op == "replace":
            hunk["words"] = _word_diff("\n".join(hunk["old"]), "\n".join(hunk["new"]), budget)
        hunks.append(hunk)
    return hunks


def word_diff(
    old_text: str, new_text: str, *, max_pairs: int = WORD_PAIRS_BUDGET
) -> list[dict[str, str]]:
    """Segments of equal, deleted and inserted text.

    Joining the equal and deleted segments gives old_text; the equal and inserted ones give
    new_text. When the changed middle has more than max_pairs pairs of words to compare, it
    is given whole, as deleted then inserted.
    """
    return _word_diff(old_text, new_text, _PairBudget(max_pairs))


class _PairBudget:
    """Pairs of words that may still be compared."""

    def __init__(self, pairs: int):
        self.left = pairs

    def spend(self, pairs: int) -> bool:
        if pairs > self.left:
            return False
        self.left -= pairs
        return True


def _word_diff(old_text: str, new_text: str, budget: _PairBudget) -> list[dict[str, str]]:
    old_words, new_words = _WORD.findall(old_text), _WORD.findall(new_text)
    prefix = _common_prefix_length(old_words, new_words)
    suffix = _common_prefix_length(old_words[prefix:][::-1], new_words[prefix:][::-1])
    old_middle = old_words[prefix : len(old_words) - suffix]
    new_middle = new_words[prefix : len(new_words) - suffix]
    segments: list[dict[str, str]] = []
    _append_segment(segments, "equal", "".join(old_words[:prefix]))
    if budget.spend(len(old_middle) * len(new_middle)):
        _append_matched_segments(segments, old_middle, new_middle)
    else:
        _append_segment(segments, "delete", "".join(old_middle))
        _append_segment(segments, "insert", "".join(new_middle))
    _append_segment(segments, "equal", "".join(old_words[len(old_words) - suffix :]))
    return segments


def _common_prefix_length(left: list[str], right: list[str]) -> int:
    length = 0
    for left_word, right_word in zip(left, right, strict=False):
        if left_word != right_word:
            break
        length += 1
    return length


def _append_matched_segments(
    segments: list[dict[str, str]], old_words: list[str], new_words: list[str]
) -> None:
    # autojunk would treat frequent tokens such as ' ' as noise and give a worse diff.
    matcher = difflib.SequenceMatcher(None, old_words, new_words, autojunk=False)
    for op, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if op in ("equal", "delete", "replace"):
            kind = "equal" if op == "equal" else "delete"
            _append_segment(segments, kind, "".join(old_words[old_start:old_end]))
        if op in ("insert", "replace"):
            _append_segment(segments, "insert", "".join(new_words[new_start:new_end]))


def _append_segment(segments: list[dict[str, str]], op: str, text: str) -> None:
    if not text:
        return
    if segments and segments[-1]["op"] == op:
        segments[-1]["text"] += text
    else:
        segments.append({"op": op, "text": text})


def unified_diff(
    old_text: str, new_text: str, old_label: str = "old", new_label: str = "new"
) -> str:
    lines = difflib.unified_diff(
        old_text.split("\n"), new_text.split("\n"), old_label, new_label, lineterm=""
    )
    return "\n".join(lines)


def metadata_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "added": {key: value for key, value in new.items() if key not in old},
        "removed": {key: value for key, value in old.items() if key not in new},
        "changed": {
            key: {"old": old[key], "new": value}
            for key, value in new.items()
            if key in old and not same_json(old[key], value)
        },
    }


def _bump_section(
    old: ParsedTemplate,
    new: ParsedTemplate,
    old_metadata: Mapping[str, Any] | None,
    new_metadata: Mapping[str, Any] | None,
    old_version: str | None,
    new_version: str | None,
    old_extra: Mapping[str, Any] | None = None,
    new_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    requirement = required_bump(
        old.text, new.text, old_metadata, new_metadata, old_extra=old_extra, new_extra=new_extra
    )
    section: dict[str, Any] = {
        "declared": None,
        "required": str(requirement.bump),
        "reasons": list(requirement.reasons),
        "ok": None,
        "minimum_version": None,
    }
    if old_version is not None and new_version is not None:
        old_semver, new_semver = SemVer.parse(old_version), SemVer.parse(new_version)
        declared = declared_bump(old_semver, new_semver)
        # The same rule check_bump enforces: greater than the old one, and bumped enough.
        section["declared"] = str(declared)
        section["ok"] = new_semver > old_semver and declared >= requirement.bump
        section["minimum_version"] = str(old_semver.bumped(max(requirement.bump, Bump.PATCH)))
    return section


def messages_diff(
    old: Sequence[Mapping[str, str]] | None, new: Sequence[Mapping[str, str]] | None
) -> list[dict[str, Any]]:
    """Message by message: position, status (same, changed, added, removed), roles, texts."""
    old, new = list(old or ()), list(new or ())
    rows = []
    for index in range(max(len(old), len(new))):
        before = old[index] if index < len(old) else None
        after = new[index] if index < len(new) else None
        if before is None:
            status = "added"
        elif after is None:
            status = "removed"
        elif before == after:
            status = "same"
        else:
            status = "changed"
        rows.append(
            {
                "position": index + 1,
                "status": status,
                "old_role": before and before["role"],
                "new_role": after and after["role"],
                "lines": _whole(after["content"], "insert")
                if before is None
                else _whole(before["content"], "delete")
                if after is None
                else line_diff(before["content"], after["content"]),
            }
        )
    return rows


def _whole(text: str, op: str) -> list[dict[str, Any]]:
    """A message added or removed whole: one hunk of all its lines."""
    lines = text.split("\n")
    return [
        {
            "op": op,
            "old_start": 1,
            "new_start": 1,
            "old": lines if op == "delete" else [],
            "new": lines if op == "insert" else [],
        }
    ]
