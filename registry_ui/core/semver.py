"""Semantic versions of templates, and how much a change must bump them.

A template's variables are its interface: removing one breaks callers (major), adding one
asks callers for more (minor), anything else is a patch.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry_ui.core.messages import extra_changes
from registry_ui.core.template import parse_template

_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
# Far beyond any real version, and short enough that int() never meets Python's digit limit.
_MAX_VERSION_LENGTH = 64


class InvalidVersionError(ValueError):
    """A text that is not MAJOR.MINOR.PATCH."""


class Bump(enum.IntEnum):
    """How much a version number goes up; ordered, so bumps compare."""

    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3

    def __str__(self) -> str:
        return self.name.lower()

    def __format__(self, format_spec: str) -> str:
        return format(str(self), format_spec)


@dataclass(frozen=True, order=True)
class SemVer:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str | SemVer) -> SemVer:
        """Strict MAJOR.MINOR.PATCH: digits only, no leading zeros, no prefix or suffix."""
        if isinstance(text, SemVer):
            return text
        match = _VERSION.fullmatch(text) if isinstance(text, str) else None
        if match is None or len(text) > _MAX_VERSION_LENGTH:
            raise InvalidVersionError(
                f"{text!r} is not a semantic version: use MAJOR.MINOR.PATCH with whole numbers "
                "and no leading zeros, e.g. '1.0.0'"
            )
        return cls(*(int(part) for part in match.groups()))

    @staticmethod
    def sort_key(version: str | SemVer) -> SemVer:
        """For ``sorted(texts, key=SemVer.sort_key)``: numeric order, so 1.10.0 > 1.9.0."""
        return SemVer.parse(version)

    def bumped(self, bump: Bump) -> SemVer:
        if bump is Bump.MAJOR:
            return SemVer(self.major + 1, 0, 0)
        if bump is Bump.MINOR:
            return SemVer(self.major, self.minor + 1, 0)
        if bump is Bump.PATCH:
            return SemVer(self.major, self.minor, self.patch + 1)
        return self

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def declared_bump(old: SemVer, new: SemVer) -> Bump:
    """The highest component that went up from old to new (NONE unless new is greater)."""
    if new <= old:
        return Bump.NONE
    if new.major > old.major:
        return Bump.MAJOR
    if new.minor > old.minor:
        return Bump.MINOR
    return Bump.PATCH


@dataclass(frozen=True)
class BumpRequirement:
    bump: Bump
    reasons: tuple[str, ...]


class VersionBumpError(ValueError):
    """A new version number that is not greater, or not bumped enough for its change."""

    def __init__(self, message: str, *, required: Bump, minimum: SemVer):
        self.required = required
        self.minimum = minimum
        super().__init__(message)

    def __reduce__(self):
        return _rebuild_bump_error, (str(self), self.required, self.minimum)


def _rebuild_bump_error(message: str, required: Bump, minimum: SemVer) -> VersionBumpError:
    return VersionBumpError(message, required=required, minimum=minimum)


def required_bump(
    old_text: str,
    new_text: str,
    old_metadata: Mapping[str, Any] | None = None,
    new_metadata: Mapping[str, Any] | None = None,
    *,
    old_extra: Mapping[str, Any] | None = None,
    new_extra: Mapping[str, Any] | None = None,
) -> BumpRequirement:
    """The smallest bump the change from old to new needs, and why.

    ``old_extra``/``new_extra``: model configuration and response format (core/messages.py).
    """
    changes = _changes(old_text, new_text, old_metadata, new_metadata, old_extra, new_extra)
    bump = max((level for level, _ in changes), default=Bump.NONE)
    return BumpRequirement(bump, tuple(reason for _, reason in changes))


def check_bump(
    old_version: str | SemVer,
    old_text: str,
    new_version: str | SemVer,
    new_text: str,
    old_metadata: Mapping[str, Any] | None = None,
    new_metadata: Mapping[str, Any] | None = None,
    *,
    old_extra: Mapping[str, Any] | None = None,
    new_extra: Mapping[str, Any] | None = None,
) -> BumpRequirement:
    """The requirement, if new_version is greater than old_version and bumped enough."""
    old, new = SemVer.parse(old_version), SemVer.parse(new_version)
    changes = _changes(old_text, new_text, old_metadata, new_metadata, old_extra, new_extra)
    required = max((level for level, _ in changes), default=Bump.NONE)
    minimum = old.bumped(max(required, Bump.PATCH))
    if new <= old:
        raise VersionBumpError(
            f"version {new} is not greater than the latest version {old}: use {minimum} or later",
            required=required,
            minimum=minimum,
        )
    declared = declared_bump(old, new)
    if declared < required:
        unmet = "; ".join(reason for level, reason in changes if level > declared)
        raise VersionBumpError(
            f"{unmet}: needs {minimum} or later", required=required, minimum=minimum
        )
    return BumpRequirement(required, tuple(reason for _, reason in changes))


def _changes(
    old_text: str,
    new_text: str,
    old_metadata: Mapping[str, Any] | None,
    new_metadata: Mapping[str, Any] | None,
    old_extra: Mapping[str, Any] | None = None,
    new_extra: Mapping[str, Any] | None = None,
) -> list[tuple[Bump, str]]:
    """Each change with the bump it needs, most demanding first."""
    old_variables = parse_template(old_text).variables
    new_variables = parse_template(new_text).variables
    removed = [name for name in old_variables if name not in new_variables]
    added = [name for name in new_variables if name not in old_variables]
    changes = [(Bump.MAJOR, f"removes variable {name!r}") for name in removed]
    changes += [(Bump.MINOR, f"adds variable {name!r}") for name in added]
    # Changed variables already imply a changed text; saying so again adds nothing.
    if not changes and old_text != new_text:
        changes.append((Bump.PATCH, "changes the template text"))
    if not same_json(old_metadata or {}, new_metadata or {}):
        changes.append((Bump.PATCH, "changes the metadata"))
    changes += [(Bump(level), reason) for level, reason in extra_changes(old_extra, new_extra)]
    changes.sort(key=lambda change: -change[0])
    return changes


def same_json(left: Any, right: Any) -> bool:
    """Equal as JSON: unlike ==, 1, 1.0 and True differ, as they do once stored."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(same_json, left, right))
    return type(left) is type(right) and left == right
