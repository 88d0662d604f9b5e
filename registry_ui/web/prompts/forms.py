"""The new-version editor's form: a draft checked against the mirror's latest version of its
template, with no MLflow call, so it can run as the author types."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings

from registry_ui.core.checks import registration_problems
from registry_ui.core.diff import compare_templates
from registry_ui.core.hidden_text import hidden_character_warnings
from registry_ui.core.limits import MAX_TEMPLATE_LENGTH, MAX_TEXT, loads_json
from registry_ui.core.messages import ContentError, messages_text, normalize_extra
from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.core.semver import (
    Bump,
    InvalidVersionError,
    SemVer,
    VersionBumpError,
    check_bump,
    required_bump,
)
from registry_ui.core.template import TemplateError, validate_template
from registry_ui.web.models import TemplateVersion
from registry_ui.web.prompts import metadata_fields, selectors

METADATA_EXAMPLE = '{"author": "alice"}'
CHAT_EXAMPLE = (
    '{"messages": [{"role": "system", "content": "You help {name}."}], '
    '"model_config": {"temperature": 0.2}}'
)
CHAT_KEYS = ("messages", "model_config", "response_format")


def _as_typed() -> forms.CharField:
    field = forms.CharField(required=False, strip=False)
    # Every message is the form's own: Django's refusal of NUL characters would add one the
    # editor never gave (the name and template checks judge those characters themselves).
    field.validators = []
    return field


class NewVersionForm(forms.Form):
    """Every problem of a draft, by field, and what the mirror suggests for it.

    Cleaning never fails a field on its own: clean() checks the draft as a whole, since the
    version's checks need the latest version, the template's errors and the metadata.
    """

    name = _as_typed()
    version = _as_typed()
    template = _as_typed()
    metadata = _as_typed()  # JSON text, as typed
    # A chat template's messages, model configuration and response format, as JSON (empty:
    # a text template). With messages, the template text is made from them.
    chat = _as_typed()
    reason = _as_typed()
    reason_max_length = MAX_TEXT  # the page's maxlength, checked again in clean()

    def __init__(self, *args, starting: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # add_error takes a refused field out of cleaned_data; the page still shows it.
        self.draft: dict[str, str] = {}
        self.template_errors: list[TemplateError] = []
        # Hidden characters (core/hidden_text.py): shown as warnings, unless refused.
        self.template_warnings: list[TemplateError] = []
        self.parsed_metadata: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}  # the chat JSON, normalized (core/messages.py)
        self.latest: TemplateVersion | None = None
        self.comparison: dict[str, Any] | None = None
        self.suggested_version = ""
        # The metadata as fields (metadata_fields.py); the JSON text is the advanced view.
        self.policy = settings.REQUIRED_METADATA
        # The JSON text is the metadata when the advanced view's box is ticked or no field
        # was posted; a starting draft (JSON from the latest version) still shows as fields.
        self.metadata_from_json = self.is_bound and metadata_fields.wants_json(self.data)
        self.metadata_as_json = self.metadata_from_json and not starting
        self.meta_fields: metadata_fields.MetadataFields | None = None

    @property
    def is_new_template(self) -> bool:
        return self.latest is None

    @property
    def metadata_view(self) -> metadata_fields.MetadataFields:
        """The fields as the page shows them: as typed, or read from the JSON text."""
        if self.meta_fields is not None and not self.metadata_as_json:
            return self.meta_fields
        return metadata_fields.fields_of(self.parsed_metadata, self.policy)

    @property
    def metadata_json(self) -> str:
        """The JSON text the advanced view shows: as typed, or written from the fields."""
        if self.metadata_as_json or self.parsed_metadata is None:
            return self.draft.get("metadata", "{}")
        return json.dumps(self.parsed_metadata, ensure_ascii=False, indent=2)

    @property
    def problem_count(self) -> int:
        return sum(len(messages) for messages in self.errors.values())

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def clean_version(self) -> str:
        return self.cleaned_data["version"].strip()

    def clean_template(self) -> str:
        return self.cleaned_data["template"].replace("\r\n", "\n")

    def clean_metadata(self) -> str:
        if not self.metadata_from_json:
            self.meta_fields = metadata_fields.metadata_from_fields(self.data, self.policy)
            return json.dumps(self.meta_fields.metadata, ensure_ascii=False)
        return self.cleaned_data["metadata"].replace("\r\n", "\n") or "{}"

    @property
    def is_chat(self) -> bool:
        return bool(self.extra.get("messages"))

    def clean_chat(self) -> str:
        return self.cleaned_data["chat"].replace("\r\n", "\n").strip()

    def clean(self) -> dict[str, Any]:
        self.draft = dict(super().clean())
        name_ok = self._check_name()
        self._check_chat()
        self._check_template()
        self._check_metadata()
        if len(self.draft["reason"]) > MAX_TEXT:
            self.add_error(
                "reason",
                f"the reason is {len(self.draft['reason']):,} characters: at most {MAX_TEXT:,}",
            )
        if name_ok:
            self.latest = selectors.latest_version(self.draft["name"])
        self._check_version()
        return self.cleaned_data

    def filing_arguments(self) -> dict[str, Any]:
        """What drafts.version_file takes, once the form is valid."""
        arguments = {**self.cleaned_data, "metadata": self.parsed_metadata, "extra": self.extra}
        arguments.pop("chat", None)
        return arguments

    def _check_chat(self) -> None:
        """The chat JSON: messages (each content a template), model configuration, response
        format; with messages, the template text is made from them (messages_text)."""
        text = self.draft.get("chat", "")
        if not text:
            return
        try:
            chat = loads_json(text)
        except json.JSONDecodeError as error:
            self.add_error(
                "chat",
                f"{error.lineno}:{error.colno}: not JSON: {error.msg}; write an object, "
                f"e.g. {CHAT_EXAMPLE}",
            )
            return
        if not isinstance(chat, dict) or set(chat) - set(CHAT_KEYS):
            unknown = sorted(set(chat) - set(CHAT_KEYS)) if isinstance(chat, dict) else []
            said = f"unknown keys {', '.join(unknown)}: " if unknown else ""
            self.add_error(
                "chat",
                f"{said}write an object with any of {', '.join(CHAT_KEYS)}, e.g. {CHAT_EXAMPLE}",
            )
            return
        try:
            self.extra = normalize_extra(
                chat.get("messages"), chat.get("model_config"), chat.get("response_format")
            )
        except ContentError as error:
            for problem in error.problems:
                self.add_error("chat", problem)
            return
        if self.is_chat:
            self.draft["template"] = messages_text(self.extra["messages"])
            self.cleaned_data["template"] = self.draft["template"]

    def _check_name(self) -> bool:
        try:
            validate_template_name(self.draft["name"])
        except InvalidNameError as error:
            self.add_error("name", str(error))
            return False
        return True

    def _check_template(self) -> None:
        template = self.draft["template"]
        if not template:
            self.add_error("template", "the template text is required, e.g. 'Hello {name}'")
        elif len(template) > MAX_TEMPLATE_LENGTH:
            self.add_error(
                "template",
                f"the template is {len(template):,} characters long: MLflow keeps at most "
                f"{MAX_TEMPLATE_LENGTH:,}",
            )
        else:
            limits = settings.INPUT_LIMITS
            self.template_errors = validate_template(template)
            hidden = hidden_character_warnings(template)
            if limits.refuse_hidden_characters:
                self.template_errors = sorted(
                    [*self.template_errors, *hidden], key=lambda e: (e.line, e.column)
                )
            else:
                self.template_warnings = hidden
            if self.template_errors:
                self.add_error("template", [str(error) for error in self.template_errors])

    def _check_metadata(self) -> None:
        try:
            metadata = loads_json(self.draft["metadata"])
        except json.JSONDecodeError as error:
            self.add_error(
                "metadata",
                f"{error.lineno}:{error.colno}: not JSON: {error.msg}; write an object, "
                f"e.g. {METADATA_EXAMPLE}",
            )
            return
        if not isinstance(metadata, dict):
            self.add_error("metadata", f"metadata must be a JSON object, e.g. {METADATA_EXAMPLE}")
            return
        self.parsed_metadata = metadata
        if self.meta_fields is None:
            problems = metadata_fields.json_problems(metadata, self.policy)
            problems += registration_problems(metadata, None, {})  # the editor writes texts
        else:
            # Said about the fields, as they are typed (the policy's hints are about JSON).
            problems = [message for _, message in self.meta_fields.problems]
            said_already = {key for key, _ in self.meta_fields.problems}
            for missing in self.policy.check(metadata):
                if missing.key in said_already:
                    continue  # its field's own problem (a row that is not a number) says it
                label, help_text = metadata_fields.LABELS.get(missing.key, (missing.key, ""))
                entry = next(f for f in self.meta_fields.required if f.key == missing.key)
                said = f"{label} is required: {help_text}" if help_text else missing.message
                entry.problems.append(said)
                problems.append(said)
            for key, message in self.meta_fields.problems:
                entry = next((f for f in self.meta_fields.required if f.key == key), None)
                if entry is not None:
                    entry.problems.append(message)
            problems += registration_problems(metadata, None, {})  # the editor writes texts
        for problem in problems:
            self.add_error("metadata", problem)

    def _check_version(self) -> None:
        version, template = self.draft["version"], self.draft["template"]
        latest, text_ok = self.latest, bool(template) and not self.template_errors
        metadata = self.parsed_metadata if self.parsed_metadata is not None else {}
        if latest is not None and text_ok and not self.has_error("template"):
            self.comparison = compare_templates(
                latest.text,
                template,
                old_metadata=latest.metadata,
                new_metadata=metadata,
                old_extra=latest.extra,
                new_extra=self.extra,
            )
            needed = required_bump(
                latest.text,
                template,
                latest.metadata,
                metadata,
                old_extra=latest.extra,
                new_extra=self.extra,
            ).bump
            self.suggested_version = str(
                SemVer.parse(latest.version).bumped(max(needed, Bump.PATCH))
            )
        elif latest is None and not self.has_error("name"):
            self.suggested_version = "1.0.0"
        if not version:
            hint = f": {self.suggested_version} is suggested" if self.suggested_version else ""
            self.add_error("version", f"the version is required (MAJOR.MINOR.PATCH){hint}")
            return
        try:
            SemVer.parse(version)
        except InvalidVersionError as error:
            self.add_error("version", str(error))
            return
        if latest is None or not text_ok:
            return
        if TemplateVersion.objects.filter(template=latest.template, version=version).exists():
            self.add_error(
                "version",
                f"{version} is registered already: use {self.suggested_version} or later",
            )
            return
        try:
            check_bump(
                latest.version,
                latest.text,
                version,
                template,
                latest.metadata,
                metadata,
                old_extra=latest.extra,
                new_extra=self.extra,
            )
        except VersionBumpError as error:
            self.add_error("version", f"against {latest.version}, the latest: {error}")
