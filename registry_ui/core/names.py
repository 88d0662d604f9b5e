"""Template names and the registered-model names they map to in MLflow.

Template names are hierarchical, e.g. ``persona/entrepreneur/hook-generator``. MLflow
forbids '/' and ':' in registered-model names, so the mapping rule (documented in
docs/mlflow-contract.md) is: each '/' becomes '.'. Segments may not contain '.', so the
rule is reversible: ``persona.entrepreneur.hook-generator`` maps back by '.' -> '/'.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 200
SEPARATOR = "/"
MLFLOW_SEPARATOR = "."
_SEGMENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?\Z")


class InvalidNameError(ValueError):
    """A template name that cannot be stored in the registry."""


def validate_template_name(name: str) -> str:
    """Return the name unchanged, or raise InvalidNameError saying what is accepted."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError("a template name is required, e.g. 'persona/entrepreneur/hook'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"template name is {len(name)} characters long: at most {MAX_NAME_LENGTH} are accepted"
        )
    for position, segment in enumerate(name.split(SEPARATOR), start=1):
        if not _SEGMENT.match(segment):
            shown = segment or "(empty)"
            raise InvalidNameError(
                f"template name {name!r}: segment {position} {shown!r} is not accepted: "
                "segments are separated by '/' and use letters, digits, '-' and '_', "
                "starting and ending with a letter or digit"
            )
    return name


def to_registered_model_name(name: str) -> str:
    return validate_template_name(name).replace(SEPARATOR, MLFLOW_SEPARATOR)


def from_registered_model_name(registered_name: str) -> str:
    return validate_template_name(registered_name.replace(MLFLOW_SEPARATOR, SEPARATOR))
