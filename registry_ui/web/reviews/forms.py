"""Forms of the review pages.

They check the shape of the input (present, not too long, well formed) and say which field
is wrong; whether the request is allowed is for the services (services.py, releases.py).
"""

from __future__ import annotations

from django import forms

from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.names import MAX_NAME_LENGTH, InvalidNameError, validate_template_name
from registry_ui.core.semver import InvalidVersionError, SemVer
from registry_ui.web import display
from registry_ui.web.reviews.releases import MAX_LINES as MAX_RELEASE_LINES
from registry_ui.web.reviews.releases import ReleaseLine
from registry_ui.web.reviews.selectors import RollbackChoice, rollback_choices, rollback_templates

MAX_VERSION_LENGTH = 40


RELEASE_LINE_EXAMPLE = "persona/entrepreneur/hook-generator 1.2.0 production"


TARGETS = [("staging", "staging"), ("production", "production")]


def _messages(label: str, required: str = "") -> dict[str, str]:
    """Error messages that name the field, so a message read alone still makes sense."""
    return {
        "required": f"{label} is required{': ' + required if required else ''}.",
        "max_length": (
            f"{label} is %(show_value)d characters long: at most %(limit_value)d are accepted."
        ),
        "invalid_choice": f"{label}: %(value)s is not one of the choices offered.",
    }


def clean_text(label: str, *, required: bool, why: str = "", rows: int = 3) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": rows}),
        error_messages=_messages(label, why),
    )


class _ActionForm(forms.Form):
    """One of several forms on a request's page: its own ids, so no two fields share one."""

    id_prefix = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)


def _template_name(label: str, value: str) -> str:
    try:
        return validate_template_name(value)
    except InvalidNameError as error:
        raise forms.ValidationError(f"{label}: {error}.") from None


class PromotionRequestForm(forms.Form):
    template = forms.CharField(
        label="Template",
        max_length=MAX_NAME_LENGTH,
        widget=forms.TextInput(attrs={"list": "template-names", "autocomplete": "off"}),
        error_messages=_messages("Template", "give its name, e.g. persona/entrepreneur/hook"),
    )
    version = forms.CharField(
        label="Version",
        max_length=MAX_VERSION_LENGTH,
        error_messages=_messages("Version", "give it as MAJOR.MINOR.PATCH, e.g. 1.2.0"),
    )
    target = forms.ChoiceField(
        label="Move it to",
        choices=TARGETS,
        initial="staging",
        error_messages=_messages("Move it to", "choose staging or production"),
    )
    justification = clean_text(
        "Justification", required=True, why="say why this version should move", rows=4
    )

    def clean_template(self) -> str:
        return _template_name("Template", self.cleaned_data["template"])

    def clean_version(self) -> str:
        version = self.cleaned_data["version"]
        try:
            SemVer.parse(version)
        except InvalidVersionError as error:
            raise forms.ValidationError(f"Version: {error}.") from None
        return version


class ApproveForm(_ActionForm):
    id_prefix = "approve"
    comment = clean_text("Comment (optional)", required=False)
    gate_reason = clean_text("Reason for approving although the metric gate fails", required=False)
    checks_reason = clean_text("Reason for approving although test cases fail", required=False)


class RejectForm(_ActionForm):
    id_prefix = "reject"
    comment = clean_text("Why it is rejected", required=True, why="say what should change")


class CommentForm(_ActionForm):
    id_prefix = "comment"
    text = clean_text("Comment", required=True, why="write something to add to the thread")


class WithdrawForm(_ActionForm):
    """No fields: the button is the whole form (errors from the service show here)."""

    id_prefix = "withdraw"


class RollbackForm(forms.Form):
    """Production back to a version that held it before: the template first, then one of
    its versions that held production (reviews.selectors.rollback_choices), the one that
    left production last first and chosen by default."""

    template = forms.ChoiceField(
        label="Template",
        error_messages=_messages("Template", "choose the template to roll back"),
    )
    version = forms.ChoiceField(
        label="Version to bring back",
        widget=forms.RadioSelect,
        error_messages=_messages("Version to bring back", "choose a version"),
    )
    reason = clean_text("Reason", required=True, why="say why production must go back", rows=4)

    def __init__(self, *args, template_name: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = rollback_choices(template_name) if template_name else []
        # Once a template with versions to go back to is chosen, the list of every such
        # template (a DISTINCT over all versions) is not needed: the page shows its name.
        names = [template_name] if self.choices else rollback_templates()
        self.fields["template"].choices = [("", "Choose a template"), *((n, n) for n in names)]
        self.fields["version"].choices = [
            (choice.version.version, rollback_label(choice)) for choice in self.choices
        ]
        offered = [choice.version.version for choice in self.choices]
        if offered and self.initial.get("version") not in offered:
            self.initial["version"] = offered[0]

    @property
    def template_chosen(self) -> bool:
        return bool(self.choices)


def rollback_label(choice: RollbackChoice) -> str:
    """ "1.0.0: in production from 2026-12-01 10:00 UTC to 2026-12-03 12:00 UTC (2 days)"."""
    version = choice.version
    if choice.since is None:
        return f"{version.version}: held production (when is not recorded), {version.stage} now"
    _, since = display.moment(choice.since)
    _, until = display.moment(choice.until)
    served = display.duration(choice.served)
    again = f"; {choice.periods} times in all" if choice.periods > 1 else ""
    return f"{version.version}: in production from {since} to {until} ({served}{again})"


class ReleaseForm(forms.Form):
    """One "template version target" per line; dry-run it, then file it."""

    lines = forms.CharField(
        label="Versions, one per line: template version target",
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 8, "placeholder": RELEASE_LINE_EXAMPLE}),
        error_messages=_messages(
            "Versions", f"write one “template version target” per line, e.g. {RELEASE_LINE_EXAMPLE}"
        ),
    )
    justification = clean_text("Justification", required=False, rows=4)
    action = forms.ChoiceField(
        choices=[("dry_run", "Dry run"), ("file", "File the release")],
        widget=forms.HiddenInput,  # sent by the submit button pressed, never rendered
        error_messages={
            "required": "Press Dry run or File the release (action=dry_run or action=file).",
            "invalid_choice": "action=%(value)s is not accepted: use dry_run or file.",
        },
    )

    def clean_lines(self) -> list[ReleaseLine]:
        parsed = []
        lines = [
            (number, line.split())
            for number, line in enumerate(self.cleaned_data["lines"].splitlines(), start=1)
            if line.strip()
        ]
        if len(lines) > MAX_RELEASE_LINES:
            raise forms.ValidationError(
                f"Versions: {len(lines)} lines: a release moves at most {MAX_RELEASE_LINES} "
                "templates."
            )
        errors = []
        for number, words in lines:
            if len(words) != 3:
                errors.append(
                    f"Versions, line {number}: “{' '.join(words)}” has {len(words)} "
                    f"word{'s' if len(words) != 1 else ''}: write template, version and target "
                    f"separated by spaces, e.g. {RELEASE_LINE_EXAMPLE}."
                )
                continue
            try:
                _template_name(f"Versions, line {number}", words[0])
            except forms.ValidationError as error:
                errors.extend(error.messages)
                continue
            parsed.append(ReleaseLine(*words))
        if errors:
            raise forms.ValidationError(errors)
        return parsed

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") == "file" and not cleaned.get("justification"):
            self.add_error("justification", "Justification is required to file a release: say why.")
        return cleaned
