"""MLflow's native prompts (its Prompt Registry) in registry_ui's terms. Pure code.

- MLflow's formatting, reproduced: ``{{ name }}`` replaced value by value in the order the
  values are given (``mlflow.genai.prompts.utils.format_prompt``), missing variables refused;
  a text holding both ``{%`` and ``%}`` is a Jinja2 template, rendered by MLflow itself
  (through the gateway).
- Conversion of a registry_ui template (``{x}``, ``str.format``) to the native format
  (``{{x}}``), or the reasons it cannot be converted without changing what it renders.
- Semantic versions derived for native versions (MLflow numbers them 1, 2, 3), from their
  variable diffs: removing a variable is MAJOR, adding one MINOR, a response format as in
  core/messages.py, anything else PATCH.

docs/mlflow-prompts.md explains the rules with examples.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry_ui.core.limits import InputLimits
from registry_ui.core.messages import extra_changes
from registry_ui.core.names import to_registered_model_name
from registry_ui.core.semver import Bump, SemVer
from registry_ui.core.template import MissingVariablesError, RenderLimitError, parse_template

# mlflow.prompt.constants.PROMPT_TEMPLATE_VARIABLE_PATTERN (MLflow 3.17), copied: the core
# imports no MLflow. tests/core/test_native.py checks the copy against MLflow's.
NATIVE_VARIABLE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}")
_ASCII_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# The tag registry_ui keeps a native version's derived semantic version in.
SEMVER_TAG = "registry_ui.semver"
FIRST_VERSION = SemVer(1, 0, 0)
# A registry_ui template published as a native prompt is named after its registered model with
# this suffix: "_prompt" cannot end a template name's segment, so no template maps to it.
PUBLISHED_SUFFIX = "._prompt"


def published_name(template_name: str) -> str:
    """The native prompt a template is published as: ``prompts:/<this>@production``."""
    return to_registered_model_name(template_name) + PUBLISHED_SUFFIX


@dataclass(frozen=True)
class NativeVersion:
    """One version of a native prompt, as MLflow has it."""

    name: str
    number: int
    template: str | tuple[dict[str, str], ...]  # text, or chat messages
    model_config: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    commit_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # the user's tags, MLflow's own left out
    aliases: tuple[str, ...] = ()
    created_at: datetime | None = None
    created_by: str | None = None
    semver: str | None = None  # the SEMVER_TAG, if registry_ui wrote one

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.template, str)

    @property
    def is_jinja(self) -> bool:
        return is_jinja(self.template)

    @property
    def kind(self) -> str:
        return ("chat" if self.is_chat else "text") + (" (Jinja2)" if self.is_jinja else "")

    @property
    def variables(self) -> list[str]:
        return native_variables(self.template)

    @property
    def extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.is_chat:
            extra["messages"] = [dict(m) for m in self.template]
        if self.model_config:
            extra["model_config"] = self.model_config
        if self.response_format is not None:
            extra["response_format"] = self.response_format
        return extra

    @property
    def text(self) -> str:
        """The template as one text (a chat's messages as ``[role]`` blocks)."""
        if isinstance(self.template, str):
            return self.template
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.template)


def is_jinja(template: str | Sequence[Mapping[str, str]]) -> bool:
    """MLflow's test (``_is_jinja2_template``): '{%' and '%}' in the text or any message."""
    if isinstance(template, str):
        return "{%" in template and "%}" in template
    return any("{%" in m.get("content", "") and "%}" in m.get("content", "") for m in template)


def native_variables(template: str | Sequence[Mapping[str, str]]) -> list[str]:
    """``{{ name }}`` variables in order of first appearance (MLflow keeps them as a set)."""
    texts = [template] if isinstance(template, str) else [m["content"] for m in template]
    seen: dict[str, None] = {}
    for text in texts:
        for name in NATIVE_VARIABLE.findall(text):
            seen.setdefault(name, None)
    return list(seen)


def format_native(template: str | Sequence[Mapping[str, str]], values: Mapping[str, Any]):
    """What ``PromptVersion.format(**values)`` returns for a double-brace prompt: a text, or
    the messages with their contents formatted. Missing variables are refused as MLflow does.
    (Jinja2 templates are rendered by MLflow, see gateway.format_jinja.)
    """
    missing = [name for name in native_variables(template) if name not in values]
    if missing:
        raise MissingVariablesError(missing)
    if isinstance(template, str):
        return _format_text(template, values)
    return [
        {"role": m["role"], "content": _format_text(m.get("content"), values)} for m in template
    ]


def format_native_bounded(text: str, values: Mapping[str, Any], limits: InputLimits) -> str:
    """``format_native`` of one text (a text prompt, or one message's content) for a server
    rendering what people wrote (a native prompt's test cases): refused with a
    RenderLimitError before the result would pass ``limits.rendered_length``."""
    missing = [name for name in native_variables(text) if name not in values]
    if missing:
        raise MissingVariablesError(missing)
    length = len(text)
    for key, value in values.items():
        found = len(re.findall(r"\{\{\s*" + key + r"\s*\}\}", text))  # as MLflow: unescaped
        length += found * len(str(value))
        if length > limits.rendered_length:
            raise RenderLimitError(
                f"the rendered text would be longer than {limits.rendered_length:,} "
                f"characters, the most rendered here (it passes that at {{{{{key}}}}}): "
                "shorten the values or the template"
            )
        text = _format_text(text, {key: value})
    return text


def _format_text(text: str, values: Mapping[str, Any]) -> str:
    # Exactly MLflow's loop: one substitution per value, in the order given, so a value that
    # itself holds '{{ other }}' is filled in by a later one, as MLflow does.
    for key, value in values.items():
        replacement = str(value).replace("\\", "\\\\")
        text = re.sub(r"\{\{\s*" + key + r"\s*\}\}", replacement, text)
    return text


# -- publishing registry_ui templates as native prompts -------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """A registry_ui text in the native format, or why it cannot be published."""

    text: str | None
    reasons: tuple[str, ...] = ()

    @property
    def publishable(self) -> bool:
        return self.text is not None


def to_native(text: str) -> Conversion:
    """``{x}`` -> ``{{x}}``, ``{{`` -> ``{``, ``}}`` -> ``}``, when that renders the same.

    Refused, with one reason per field or place: format specs (``{price:.2f}``), conversions
    (``{x!r}``), indexing (``{x[0]}``), attribute access (``{x.y}``), names that are not
    ASCII identifiers, and literal braces that MLflow would read as a variable (``{{{x}}}``
    written out, or ``{{ y }}`` in literal text) or as Jinja2 (``{%`` with ``%}``).
    """
    parsed = parse_template(text)  # raises TemplateValidationError with line:column
    reasons: list[str] = []
    for each in parsed.fields:
        where = f"line {each.line}, column {each.column}"
        written = "{" + each.path + (f"!{each.conversion}" if each.conversion else "")
        written += (f":{each.format_spec}" if each.format_spec else "") + "}"
        if each.format_spec:
            reasons.append(
                f"{where}: {written} has a format spec ({each.format_spec!r}); MLflow's "
                "{{x}} inserts the value as text, with no formatting"
            )
        if each.conversion:
            reasons.append(f"{where}: {written} has a conversion (!{each.conversion})")
        if "[" in each.path:
            reasons.append(f"{where}: {written} indexes a value; MLflow's {{{{x}}}} cannot")
        if "." in each.path:
            reasons.append(f"{where}: {written} reads an attribute; MLflow's {{{{x}}}} cannot")
        if not _ASCII_NAME.fullmatch(each.root):
            reasons.append(
                f"{where}: {written}: MLflow's variable names are ASCII letters, digits and _ only"
            )
    if reasons:
        return Conversion(None, tuple(reasons))
    pieces: list[str] = []
    expected: list[tuple[int, str]] = []
    length = 0
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        pieces.append(literal)
        length += len(literal)
        if name is not None:
            expected.append((length, name))
            piece = "{{" + name + "}}"
            pieces.append(piece)
            length += len(piece)
    native = "".join(pieces)
    found = [(m.start(), m.group(1)) for m in NATIVE_VARIABLE.finditer(native)]
    if found != expected:
        extra = [f"{{{{{name}}}}}" for at, name in found if (at, name) not in expected]
        reasons.append(
            "literal braces next to or around variables would be read by MLflow as "
            + (f"the variable(s) {', '.join(extra)}" if extra else "different variables")
            + ": write the text without '{{' or '}}' around a field"
        )
    if is_jinja(native):
        reasons.append(
            "the text holds '{%' and '%}', which makes MLflow render it as a Jinja2 template"
        )
    if reasons:
        return Conversion(None, tuple(reasons))
    return Conversion(native)


def messages_to_native(messages: Sequence[Mapping[str, str]]) -> tuple[list[dict] | None, list]:
    """A chat template's messages in the native format, or the reasons (per message)."""
    converted, reasons = [], []
    for index, message in enumerate(messages, start=1):
        result = to_native(message["content"])
        if result.publishable:
            converted.append({"role": message["role"], "content": result.text})
        else:
            reasons += [f"message {index} ({message['role']}): {r}" for r in result.reasons]
    return (None, reasons) if reasons else (converted, [])


# -- semantic versions of native versions ---------------------------------------------------------


def native_changes(old: NativeVersion, new: NativeVersion) -> list[tuple[Bump, str]]:
    """Each change from old to new with the bump it needs, most demanding first."""
    before, after = old.variables, new.variables
    changes = [(Bump.MAJOR, f"removes variable {name!r}") for name in before if name not in after]
    changes += [(Bump.MINOR, f"adds variable {name!r}") for name in after if name not in before]
    if not changes and old.template != new.template:
        changes.append((Bump.PATCH, "changes the template text"))
    changes += [(Bump(level), reason) for level, reason in extra_changes(old.extra, new.extra)]
    changes.sort(key=lambda change: -change[0])
    return changes


def derive_semvers(versions: Sequence[NativeVersion]) -> dict[int, str]:
    """MLflow version number -> semantic version, oldest first from 1.0.0.

    A version that already carries the tag keeps it when it is greater than its
    predecessor's, even if smaller than the diff needs (someone chose it: promoting it is then
    refused unless a reviewer overrides, see web/prompts/native.py); otherwise the derived
    one is used.
    """
    derived: dict[int, str] = {}
    previous: NativeVersion | None = None
    current = FIRST_VERSION
    for version in sorted(versions, key=lambda v: v.number):
        before = current
        if previous is not None:
            bump = max((level for level, _ in native_changes(previous, version)), default=Bump.NONE)
            current = current.bumped(max(bump, Bump.PATCH))
        if version.semver:
            try:
                tagged = SemVer.parse(version.semver)
            except ValueError:
                tagged = None
            if tagged is not None and (previous is None or tagged > before):
                current = tagged
        derived[version.number] = str(current)
        previous = version
    return derived


def required_native_bump(old: NativeVersion, new: NativeVersion) -> Bump:
    return max((level for level, _ in native_changes(old, new)), default=Bump.NONE)
