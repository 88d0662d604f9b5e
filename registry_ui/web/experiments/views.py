"""The experiment pages: the list, one experiment with its results, defining and stopping,
and two versions' metrics side by side.

Thin views: forms check the input's shape, registry_ui.web.experiments authorises and
applies it (PermissionDenied: 403; PolicyError: the form again, 400). Each page makes a
fixed number of queries, whatever the number of rows or outcome events (the pages read
the daily aggregates, never the events).
"""

from __future__ import annotations

import csv
import functools
import io
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from registry_ui.core.experiment_stats import CONFIDENCE
from registry_ui.core.policy import PolicyError
from registry_ui.web import permissions
from registry_ui.web.experiments import compare, definitions, formats, results
from registry_ui.web.experiments.charts import line_chart
from registry_ui.web.experiments.forms import CompareForm, ExperimentForm, StopForm
from registry_ui.web.http import after_form, see_other
from registry_ui.web.models import Experiment, NativePrompt, Template, TemplateVersion

PAGE_SIZE = 100


def reads_metrics(view):
    """Analysts, authors and reviewers read the results (permissions.may_read_metrics);
    defining and stopping stay the analysts'."""

    @functools.wraps(view)
    def checked(request, *args, **kwargs):
        permissions.require_read_metrics(request.user)
        return view(request, *args, **kwargs)

    return checked


@login_required
@reads_metrics
@require_GET
def experiment_list(request):
    rows = Experiment.objects.select_related("template", "native_prompt").prefetch_related(
        "variants__version", "variants__native_version"
    )
    template_name = request.GET.get("template") or ""
    if template_name:
        rows = rows.filter(Q(template__name=template_name) | Q(native_prompt__name=template_name))
    rows = list(rows[:PAGE_SIZE])
    counts = results.progress_by_experiment(rows)
    now = timezone.now()
    listed = []
    for experiment in rows:
        variants = list(experiment.variants.all())
        seen = counts.get(experiment.pk, {})
        smallest = min((seen.get(v.pk, 0) for v in variants), default=0)
        listed.append(
            {
                "experiment": experiment,
                "status": experiment.state(now),
                "variants": [(v, seen.get(v.pk, 0)) for v in variants],
                "smallest": smallest,
                "progress": min(smallest, experiment.min_samples),
            }
        )
    return render(
        request,
        "registry_ui/experiments/list.html",
        {
            "rows": listed,
            "template_name": template_name,
            "may_define": permissions.may_define_experiment(request.user),
        },
    )


@login_required
@reads_metrics
@require_GET
def experiment_detail(request, key: str):
    return render(request, "registry_ui/experiments/detail.html", _detail_context(request, key))


def _detail_context(request, key: str, **forms) -> dict:
    experiment = get_object_or_404(
        Experiment.objects.select_related("template", "native_prompt", "created_by"), key=key
    )
    metric = request.GET.get("metric") or experiment.metric
    result = results.results(experiment, metric)
    percent = result.kind == "rate"
    chart = line_chart(
        [(f"{v.variant.name} ({v.variant.label})", v.series) for v in result.variants],
        title=f"{metric}, cumulative {'rate' if percent else 'mean'} by day",
        value_format=(lambda v: f"{v * 100:.1f}%") if percent else (lambda v: f"{v:.3g}"),
        bands=[v.band for v in result.variants],
    )
    return {
        "experiment": experiment,
        "status": experiment.state(),
        "result": result,
        "table": _table(result, experiment.min_samples),
        "chart": chart,
        "percent": percent,
        "confidence": round(CONFIDENCE * 100),
        "stop_form": forms.get("stop_form") or StopForm(),
        "may_define": permissions.may_define_experiment(request.user),
    }


def _table(result, minimum: int) -> list[dict]:
    """The summary table's cells, formatted: rates in percent, differences in points."""
    kind = result.kind

    def value(v: float) -> str:
        return formats.value(v, kind)

    def signed(v: float) -> str:
        return formats.signed(v, kind)

    def between(interval, fmt) -> str:
        return formats.between(interval, kind, differences=fmt is signed)

    control_short = not result.control.enough if result.variants else True
    rows = []
    for position, v in enumerate(result.variants):
        row = {
            "name": v.variant.name,
            "version": v.variant.label,
            "n": f"{v.sample.n:,}",
            "value": value(v.estimate.value) if v.sample.n else "none",
            "short": "",
        }
        if not v.enough:
            row["short"] = f"not enough data ({v.sample.n:,} of {minimum:,})"
        elif position == 0:
            row.update(
                ci=between(v.estimate.ci, value), difference="control", uplift="", p_value=""
            )
        elif control_short:
            row["short"] = f"not enough data in {result.control.variant.name}"
        else:
            c = v.comparison
            row.update(
                ci=between(v.estimate.ci, value),
                difference=f"{signed(c.difference)} ({between(c.difference_ci, signed)})",
                uplift=(
                    f"{c.uplift * 100:+.1f}%"
                    + (
                        f" ({c.uplift_ci.low * 100:+.1f}% to {c.uplift_ci.high * 100:+.1f}%)"
                        if c.uplift_ci
                        else ""
                    )
                    if c.uplift is not None
                    else ""
                ),
                p_value=formats.p_value(c.p_value),
                significant=c.significant(),
                better=c.difference > 0,
            )
        rows.append(row)
    return rows


@login_required
@require_POST
def experiment_stop(request, key: str):
    get_object_or_404(Experiment, key=key)
    form = StopForm(request.POST)
    if form.is_valid():
        try:
            definitions.experiment_stop(request.user, key, reason=form.cleaned_data["reason"])
        except PolicyError as error:
            form.add_error(None, str(error))
        else:
            return see_other(reverse("experiment_detail", args=[key]))
    context = _detail_context(request, key, stop_form=form)
    return render(request, "registry_ui/experiments/detail.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def experiment_create(request):
    if request.method == "GET":
        return _define_page(request, ExperimentForm(initial=_initial(request.GET.get("template"))))
    form = ExperimentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            experiment = definitions.experiment_define(
                request.user,
                template_name=data["template"],
                key=data["key"],
                title=data["title"],
                hypothesis=data["hypothesis"],
                variants=data["variants"],
                metric=data["metric"],
                kind=data["kind"],
                min_samples=data["min_samples"],
                target=data["target"],
                start_at=data["start_at"],
                stop_at=data["stop_at"],
                reporting_services=data["reporting_services"],
            )
        except PolicyError as error:
            form.add_error(None, str(error))
        else:
            url = reverse("experiment_detail", args=[experiment.key])
            return after_form(request, url)
    return _define_page(request, form, status=400)


def _initial(template_name: str | None) -> dict:
    """Production against staging by default, with the template's engagement target."""
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    initial = {
        "start_at": start.strftime("%Y-%m-%d %H:%M"),
        "stop_at": (start + timedelta(days=14)).strftime("%Y-%m-%d %H:%M"),
    }
    if not template_name:
        return initial
    native = NativePrompt.objects.filter(name=template_name).first()
    if native is not None:
        return {**initial, **_native_initial(native)}
    held = {
        row.stage: row
        for row in TemplateVersion.objects.filter(
            template__name=template_name, stage__in=["production", "staging"]
        )
    }
    initial["template"] = template_name
    if "production" in held and "staging" in held:
        initial["variants"] = (
            f"control {held['production'].version} 50\ntreatment {held['staging'].version} 50"
        )
        initial["key"] = f"{template_name.rsplit('/', 1)[-1]}-{held['staging'].version}".replace(
            ".", "-"
        ).lower()[:64]
        target = held["staging"].metadata.get("engagement_target")
        if isinstance(target, int | float):
            initial["target"] = target
    return initial


def _native_initial(prompt: NativePrompt) -> dict:
    """A native prompt: its production version against its newest one."""
    versions = {v.number: v for v in prompt.versions.all()}
    initial = {"template": prompt.name}
    production = versions.get(_int(prompt.aliases.get("production")))
    newest = versions[max(versions)] if versions else None
    if production is not None and newest is not None and newest != production:
        initial["variants"] = f"control {production.semver} 50\ntreatment {newest.semver} 50"
        initial["key"] = f"{prompt.name}-{newest.semver}".replace(".", "-").lower()[:64]
    return initial


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _define_page(request, form, *, status: int = 200):
    context = {
        "form": form,
        "may_define": permissions.may_define_experiment(request.user),
        "template_names": [
            *Template.objects.values_list("name", flat=True),
            *NativePrompt.objects.values_list("name", flat=True),
        ],
    }
    template = "registry_ui/experiments/new.html"
    if request.htmx:
        template += "#experiment-form"
    return render(request, template, context, status=status)


@login_required
@reads_metrics
@require_GET
def version_compare(request):
    """Pick a template and two of its versions; see every metric side by side with the
    difference, its interval, the p-value and a one-sentence verdict."""
    form, comparisons = _compare(request.GET)
    context = {
        "form": form,
        "template_names": compare.comparable_templates(),
        "comparisons": comparisons,
        "confidence": round(CONFIDENCE * 100),
    }
    if comparisons is not None:
        # ``second`` (the version judged, a=) against ``first`` (the baseline, b=).
        first, second = form.versions[form.cleaned_data["b"]], form.versions[form.cleaned_data["a"]]
        context.update(
            first=first,
            second=second,
            csv_url=f"{reverse('version_compare_csv')}?{request.GET.urlencode()}",
        )
    template = "registry_ui/experiments/compare.html"
    if request.htmx:
        template += "#compare-form"
    status = 400 if form.is_bound and form.errors else 200
    return render(request, template, context, status=status)


@login_required
@reads_metrics
@require_GET
def version_compare_csv(request):
    """The daily figures of the compare page as CSV (one row per metric, version and day)."""
    form, comparisons = _compare(request.GET)
    if comparisons is None:
        errors = "; ".join(e for field in form.errors.values() for e in field)
        return HttpResponseBadRequest(
            f"{errors or 'give template=, a= and b='}\n", content_type="text/plain; charset=utf-8"
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(compare.csv_rows(comparisons))
    data = form.cleaned_data
    name = f"{data['template'].replace('/', '_')}_{data['a']}_vs_{data['b']}"
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def _compare(query) -> tuple[CompareForm, list | None]:
    """The form (its version lists are the named template's), and the comparisons once
    the form is valid; a template alone fills the lists with production and the newest."""
    name = (query.get("template") or "").strip()[:200]
    versions = (
        list(TemplateVersion.objects.filter(template__name=name).select_related("template"))
        if name
        else []
    )
    if not name:
        return CompareForm(versions=versions), None
    data = query.copy()
    unbound = CompareForm(versions=versions)
    for key in ("a", "b"):
        if not data.get(key) and unbound.fields[key].initial:
            data[key] = unbound.fields[key].initial
    form = CompareForm(data, versions=versions)
    if not form.is_valid():
        return form, None
    first = form.versions[form.cleaned_data["b"]]  # the baseline
    second = form.versions[form.cleaned_data["a"]]  # judged against it
    return form, compare.compare_versions(first, second)
