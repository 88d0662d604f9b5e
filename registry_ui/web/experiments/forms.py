"""Forms of the experiment pages: they check the shape of the input and name the field;
whether the experiment may run is for registry_ui.web.experiments."""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms

from registry_ui.core.experiments import KEY_RE, METRIC_RE, VARIANT_RE
from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.semver import InvalidVersionError, SemVer
from registry_ui.web.experiments.definitions import VariantLine
from registry_ui.web.models import ServiceToken, TemplateVersion

VARIANTS_EXAMPLE = "control 1.1.0 50\ntreatment 1.2.0 50"


TIME_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]


def _messages(label: str, required: str = "") -> dict[str, str]:
    return {
        "required": f"{label} is required{': ' + required if required else ''}.",
        "max_length": f"{label} is too long: at most %(limit_value)d characters.",
        "invalid": f"{label}: enter a valid value.",
        "invalid_choice": f"{label}: %(value)s is not one of the choices offered.",
        "min_value": f"{label} must be at least %(limit_value)s.",
    }


class ExperimentForm(forms.Form):
    template = forms.CharField(
        label="Template or native prompt",
        max_length=200,
        widget=forms.TextInput(attrs={"list": "template-names", "autocomplete": "off"}),
        error_messages=_messages("Template", "give its name"),
    )
    key = forms.CharField(
        label="Key (used by services in choose_variant)",
        max_length=64,
        error_messages=_messages("Key", "e.g. hook-cta-2026-11"),
    )
    title = forms.CharField(label="Title", max_length=200, required=False)
    hypothesis = forms.CharField(
        label="Hypothesis",
        max_length=MAX_TEXT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    variants = forms.CharField(
        label="Variants: name, version and weight, one per line; the first is the control",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": VARIANTS_EXAMPLE}),
        error_messages=_messages("Variants", f"e.g. {VARIANTS_EXAMPLE!r}"),
    )
    metric = forms.CharField(
        label="Primary metric",
        max_length=64,
        initial="engagement",
        error_messages=_messages("Primary metric", "e.g. engagement"),
    )
    kind = forms.ChoiceField(
        label="The metric is",
        choices=[("rate", "a rate (each outcome 0 or 1)"), ("mean", "a mean (any number)")],
        initial="rate",
        error_messages=_messages("The metric is"),
    )
    min_samples = forms.IntegerField(
        label="Minimum sample per variant",
        min_value=1,
        initial=1000,
        error_messages=_messages("Minimum sample per variant"),
    )
    target = forms.FloatField(
        label="Target (e.g. 0.06; empty: the template's engagement_target)",
        required=False,
        error_messages=_messages("Target"),
    )
    start_at = forms.DateTimeField(
        label="Start (UTC, YYYY-MM-DD HH:MM)",
        input_formats=TIME_FORMATS,
        error_messages=_messages("Start", "e.g. 2026-11-29 09:00"),
    )
    stop_at = forms.DateTimeField(
        label="Stop (UTC, YYYY-MM-DD HH:MM)",
        input_formats=TIME_FORMATS,
        error_messages=_messages("Stop", "e.g. 2026-12-13 09:00"),
    )

    reporting_services = forms.MultipleChoiceField(
        label="Services that report its outcomes (only these tokens may post them)",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages=_messages("Services that report its outcomes"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = ServiceToken.objects.filter(revoked_at__isnull=True).values_list("name", flat=True)
        self.fields["reporting_services"].choices = [(name, name) for name in names]

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if not KEY_RE.fullmatch(key):
            raise forms.ValidationError(
                f"Key {key!r}: use 2-64 lower-case letters, digits and dashes, e.g. hook-cta-2026"
            )
        return key

    def clean_metric(self) -> str:
        metric = self.cleaned_data["metric"].strip()
        if not METRIC_RE.fullmatch(metric):
            raise forms.ValidationError(
                f"Primary metric {metric!r}: use lower-case letters, digits and underscores, "
                "starting with a letter"
            )
        return metric

    def clean_variants(self) -> list[VariantLine]:
        lines = []
        for number, line in enumerate(self.cleaned_data["variants"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise forms.ValidationError(
                    f"Variants, line {number}: write 'name version weight', e.g. "
                    "'treatment 1.2.0 50'"
                )
            name, version, weight = parts
            if not VARIANT_RE.fullmatch(name):
                raise forms.ValidationError(
                    f"Variants, line {number}: {name!r} is not a variant name (lower-case "
                    "letters, digits, '-' or '_')"
                )
            try:
                version = str(SemVer.parse(version))
            except InvalidVersionError as error:
                raise forms.ValidationError(f"Variants, line {number}: {error}") from None
            if not weight.isdigit() or int(weight) < 1:
                raise forms.ValidationError(
                    f"Variants, line {number}: weight {weight!r} must be a whole number, 1 or more"
                )
            lines.append(VariantLine(name, version, int(weight)))
        if len(lines) < 2:
            raise forms.ValidationError("Variants: an experiment needs at least two lines")
        return lines

    def _utc(self, name: str) -> datetime | None:
        value = self.cleaned_data.get(name)
        return value.astimezone(UTC) if value else value

    def clean(self):
        data = super().clean()
        data["start_at"], data["stop_at"] = self._utc("start_at"), self._utc("stop_at")
        if data.get("start_at") and data.get("stop_at") and data["stop_at"] <= data["start_at"]:
            self.add_error("stop_at", "Stop must be after start.")
        return data


class StopForm(forms.Form):
    reason = forms.CharField(
        label="Why stop it now",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages=_messages("Why stop it now", "say why the experiment stops"),
    )


class CompareForm(forms.Form):
    """A template, then two of its versions from pick-lists: ``a``, the version judged
    (the newest other than production by default), against ``b`` (production by default).
    The version lists come from the mirror."""

    template = forms.CharField(
        label="Template",
        max_length=200,
        widget=forms.TextInput(attrs={"list": "template-names", "autocomplete": "off"}),
        error_messages=_messages("Template", "give its name, e.g. persona/entrepreneur/hook"),
    )
    a = forms.ChoiceField(
        label="Version", error_messages=_messages("Version", "choose one from the list")
    )
    b = forms.ChoiceField(
        label="against", error_messages=_messages("Against", "choose one from the list")
    )

    def __init__(self, data=None, *, versions: list[TemplateVersion] = (), **kwargs):
        super().__init__(data, **kwargs)
        self.versions = {row.version: row for row in versions}
        choices = [(row.version, f"{row.version} ({row.stage})") for row in versions]
        self.fields["a"].choices = choices
        self.fields["b"].choices = choices
        if versions:
            newest_first = sorted(versions, key=lambda r: (r.major, r.minor, r.patch), reverse=True)
            production = next((r for r in newest_first if r.stage == "production"), None)
            baseline = production or newest_first[min(1, len(newest_first) - 1)]
            candidate = next((r for r in newest_first if r.pk != baseline.pk), baseline)
            self.fields["a"].initial, self.fields["b"].initial = candidate.version, baseline.version

    def clean_template(self) -> str:
        name = self.cleaned_data["template"].strip()
        if not self.versions:
            raise forms.ValidationError(
                f"Template: no template named {name[:200]!r} has versions in the mirror; pick "
                "one from the list."
            )
        return name

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("a") and cleaned.get("a") == cleaned.get("b"):
            self.add_error("b", "Against: choose a version other than the first one.")
        return cleaned
