"""Chat templates, model configuration and response format: what a version may carry
besides one text.

A chat template is a list of messages, each a role and a content; every content is a
template of its own (``str.format`` syntax, validated as a text is, with line:column inside
the message). A version may also carry a model configuration (model, temperature, max
tokens, ...) and a response format (a JSON schema). All three are part of the version's
content: its hash, its diff and the bump a change needs:

- a changed model configuration is a PATCH;
- an added or changed response format is at least a MINOR, a removed one (or a field removed
  from it) a MAJOR: callers parse what the model answers.

A version without any of them is exactly what it was before they existed: same fields, same
hash (core/records.content_hash adds a key only when it is present).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from registry_ui.core.template import TemplateValidationError, parse_template, validate_template

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_MESSAGES = 100
# What MLflow's PromptModelConfig knows, with the JSON type each takes; other keys are kept
# (MLflow keeps them as extra_params) but must be JSON.
MODEL_CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "provider": (str,),
    "model_name": (str,),
    "temperature": (int, float),
    "max_tokens": (int,),
    "top_p": (int, float),
    "top_k": (int,),
    "frequency_penalty": (int, float),
    "presence_penalty": (int, float),
    "stop_sequences": (list,),
    "extra_params": (dict,),
}
EXTRA_KEYS = ("messages", "model_config", "response_format")
# Between messages in a chat template's text form: the text the checks and pages use.
_SEPARATOR = "\n\n"


class ContentError(ValueError):
    """Messages, a model configuration or a response format that cannot be used; says which
    part, where and what is accepted."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))

    def __reduce__(self):
        return type(self), (self.problems,)


# -- messages ------------------------------------------------------------------------------


def message_problems(messages: Any) -> list[str]:
    """Every problem in a list of messages, each saying which message and where in it."""
    if not isinstance(messages, list | tuple):
        return [f"messages must be a list of {{role, content}} mappings, found {_kind(messages)}"]
    if not messages:
        return ["messages is empty: a chat template needs at least one message"]
    if len(messages) > MAX_MESSAGES:
        return [f"{len(messages)} messages: at most {MAX_MESSAGES} are accepted"]
    problems: list[str] = []
    for index, message in enumerate(messages, start=1):
        where = f"message {index}"
        if not isinstance(message, Mapping):
            problems.append(f"{where}: found {_kind(message)}; write role: and content:")
            continue
        unknown = sorted(str(k) for k in message if k not in ("role", "content"))
        if unknown:
            problems.append(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))}: a message has "
                "only role and content"
            )
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            problems.append(
                f"{where}: role {role!r} is not one of {', '.join(ROLES)}"
                if role is not None
                else f"{where}: no role: use one of {', '.join(ROLES)}"
            )
        where = f"{where} ({role})" if isinstance(role, str) else where
        if not isinstance(content, str):
            problems.append(f"{where}: content must be text, found {_kind(content)}")
            continue
        if not content:
            problems.append(f"{where}: content is empty")
            continue
        problems.extend(
            f"{where}, line {e.line}, column {e.column}: {e.message}"
            for e in validate_template(content)
        )
    return problems


def normalize_messages(messages: Any) -> tuple[dict[str, str], ...]:
    """The messages as plain {role, content} dicts, or ContentError with every problem."""
    problems = message_problems(messages)
    if problems:
        raise ContentError(problems)
    return tuple({"role": m["role"], "content": m["content"]} for m in messages)


def messages_text(messages: Sequence[Mapping[str, str]]) -> str:
    """A chat template as one text: each message as ``[role]`` then its content.

    A valid template itself (each content is), so everything that works on a version's text
    (variables, checks, the text diff, search) works on a chat template's too.
    """
    return _SEPARATOR.join(f"[{m['role']}]\n{m['content']}" for m in messages)


def message_variables(messages: Sequence[Mapping[str, str]]) -> list[str]:
    """Root variable names over all messages, in order of first appearance."""
    seen: dict[str, None] = {}
    for message in messages:
        for name in parse_template(message["content"]).variables:
            seen.setdefault(name, None)
    return list(seen)


def render_messages(
    messages: Sequence[Mapping[str, str]], values: Mapping[str, Any]
) -> list[dict[str, str]]:
    """Each message with its content rendered (``str.format`` rules, as render does)."""
    rendered = []
    for index, message in enumerate(messages, start=1):
        parsed = parse_template(message["content"])
        missing = [name for name in parsed.variables if name not in values]
        if missing:
            from registry_ui.core.template import MissingVariablesError

            raise MissingVariablesError(missing)
        try:
            content = parsed.render({k: values[k] for k in parsed.variables})
        except TemplateValidationError:  # pragma: no cover - validated on creation
            raise
        except ValueError as error:
            raise type(error)(f"message {index} ({message['role']}): {error}") from error
        rendered.append({"role": message["role"], "content": content})
    return rendered


# -- model configuration and response format -------------------------------------------------


def model_config_problems(config: Any) -> list[str]:
    if not isinstance(config, Mapping):
        return [f"model_config must be a mapping of settings, found {_kind(config)}"]
    problems = []
    for key, value in config.items():
        if not isinstance(key, str):
            problems.append(f"model_config: key {key!r} is not text")
            continue
        expected = MODEL_CONFIG_KEYS.get(key)
        if expected is not None and (isinstance(value, bool) or not isinstance(value, expected)):
            names = _TYPE_NAMES[float if float in expected else expected[0]]
            problems.append(f"model_config.{key} must be {names}, found {_kind(value)}")
            continue
        if key == "temperature" and not 0 <= value <= 2:
            problems.append(f"model_config.temperature is {value}: use 0 to 2")
        if key in ("max_tokens", "top_k") and value <= 0:
            problems.append(f"model_config.{key} is {value}: use a whole number above 0")
        if key == "top_p" and not 0 <= value <= 1:
            problems.append(f"model_config.top_p is {value}: use 0 to 1")
        problem = _json_problem(value, f"model_config.{key}")
        if problem:
            problems.append(problem)
    return problems


def response_format_problems(schema: Any) -> list[str]:
    if not isinstance(schema, Mapping):
        return [f"response_format must be a JSON schema (a mapping), found {_kind(schema)}"]
    if not schema:
        return ["response_format is empty: write a JSON schema, e.g. type: object"]
    problem = _json_problem(schema, "response_format")
    if problem:
        return [problem]
    kind = schema.get("type")
    if kind is not None and kind not in _SCHEMA_TYPES and not isinstance(kind, list):
        return [f"response_format.type {kind!r} is not a JSON schema type"]
    props = schema.get("properties")
    if props is not None and not isinstance(props, Mapping):
        return [f"response_format.properties must be a mapping, found {_kind(props)}"]
    return []


def normalize_extra(
    messages: Any = None, model_config: Any = None, response_format: Any = None
) -> dict[str, Any]:
    """The extra content of a version as stored and hashed (only what is present), or
    ContentError listing every problem."""
    problems: list[str] = []
    extra: dict[str, Any] = {}
    if messages is not None:
        problems += message_problems(messages)
        if not problems:
            extra["messages"] = [{"role": m["role"], "content": m["content"]} for m in messages]
    if model_config is not None:
        found = model_config_problems(model_config)
        problems += found
        if not found and model_config:
            extra["model_config"] = json.loads(json.dumps(dict(model_config)))
    if response_format is not None:
        found = response_format_problems(response_format)
        problems += found
        if not found:
            extra["response_format"] = json.loads(json.dumps(dict(response_format)))
    if problems:
        raise ContentError(problems)
    return extra


# -- changes -------------------------------------------------------------------------------


def extra_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[tuple[int, str]]:
    """(bump level, reason) for changes of model configuration and response format.

    Levels are plain ints (1 patch, 2 minor, 3 major) so this module does not import
    semver (which imports it). Message changes show in the text (messages_text) already.
    """
    old, new = old or {}, new or {}
    changes: list[tuple[int, str]] = []
    old_format, new_format = old.get("response_format"), new.get("response_format")
    if old_format is not None and new_format is None:
        changes.append((3, "removes the response format"))
    elif old_format is None and new_format is not None:
        changes.append((2, "adds a response format"))
    elif old_format != new_format:
        removed = sorted(set(schema_fields(old_format)) - set(schema_fields(new_format)))
        changes += [(3, f"removes field {path!r} from the response format") for path in removed]
        if not removed:
            changes.append((2, "changes the response format"))
    old_config, new_config = old.get("model_config") or {}, new.get("model_config") or {}
    if old_config != new_config:
        changes.append(
            (1, "changes the model configuration (" + config_summary(old_config, new_config) + ")")
        )
    return changes


def schema_fields(schema: Any, prefix: str = "") -> Iterator[str]:
    """Every property path of a JSON schema: 'answer', 'sources', 'sources[].url'."""
    if not isinstance(schema, Mapping):
        return
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        yield path
        yield from schema_fields(sub, f"{path}.")
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from schema_fields(items, f"{prefix.rstrip('.')}[]." if prefix else "[].")


def config_summary(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    parts = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            parts.append(f"{key} removed")
        elif key not in old:
            parts.append(f"{key} {json.dumps(new[key])} added")
        elif old[key] != new[key]:
            parts.append(f"{key} {json.dumps(old[key])} \u2192 {json.dumps(new[key])}")
    return ", ".join(parts) or "reordered"


def side_by_side(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[dict]:
    """Model configuration (or any flat mapping) key by key: old value, new value, changed."""
    old, new = dict(old or {}), dict(new or {})
    return [
        {
            "key": key,
            "old": json.dumps(old[key]) if key in old else "",
            "new": json.dumps(new[key]) if key in new else "",
            "changed": old.get(key, _MISSING) != new.get(key, _MISSING),
        }
        for key in sorted(set(old) | set(new))
    ]


# -- JSON answers against a response format -----------------------------------------------------


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Where a JSON value does not match a schema (the subset: type, properties, required,
    items, enum, additionalProperties false). For test cases asserting on answers."""
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, k) for k in kinds):
            return [f"{path}: expected {' or '.join(kinds)}, found {_kind(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {json.dumps(value)} is not one of {json.dumps(schema['enum'])}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                errors.append(f"{path}: missing required field {name!r}")
        for name, sub in props.items():
            if name in value and isinstance(sub, Mapping):
                errors += schema_errors(value[name], sub, f"{path}.{name}")
        if schema.get("additionalProperties") is False:
            errors += [f"{path}: unexpected field {k!r}" for k in value if k not in props]
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    return errors


_MISSING = object()
_SCHEMA_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
_TYPE_NAMES = {
    str: "text",
    int: "a whole number",
    float: "a number",
    list: "a list",
    dict: "a mapping",
}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float)
    return True


def _json_problem(value: Any, where: str) -> str | None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        return f"{where} must hold JSON values only ({error})"
    if isinstance(value, float) and not math.isfinite(value):  # pragma: no cover
        return f"{where} is not a finite number"
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
