"""The experiment pages: the list, one experiment with its results, defining and stopping,
and two versions' metrics side by side.

Thin views: forms check the input's shape, registry_ui.web.experiments authorises and
applies it (PermissionDenied: 403; PolicyError: the form again, 400). Each page makes a
fixed number of queries, whatever the number of rows or outcome events (the pages read
the daily aggregates, never the events).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from registry_ui.core.experiment_stats import CONFIDENCE
from registry_ui.core.policy import PolicyError
from registry_ui.web import permissions
from registry_ui.web.experiments import definitions, results
from registry_ui.web.experiments.charts import line_chart
from registry_ui.web.experiments.forms import CompareForm, ExperimentForm, StopForm
from registry_ui.web.http import after_form, see_other
from registry_ui.web.models import Experiment, Template, TemplateVersion

PAGE_SIZE = 100


@login_required
@permission_required(permissions.VIEW_METRICS, raise_exception=True)
@require_GET
def experiment_list(request):
    rows = Experiment.objects.select_related("template").prefetch_related("variants__version")
    template_name = request.GET.get("template") or ""
    if template_name:
        rows = rows.filter(template__name=template_name)
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
@permission_required(permissions.VIEW_METRICS, raise_exception=True)
@require_GET
def experiment_detail(request, key: str):
    return render(request, "registry_ui/experiments/detail.html", _detail_context(request, key))


def _detail_context(request, key: str, **forms) -> dict:
    experiment = get_object_or_404(
        Experiment.objects.select_related("template", "created_by"), key=key
    )
    metric = request.GET.get("metric") or experiment.metric
    result = results.results(experiment, metric)
    percent = result.kind == "rate"
    chart = line_chart(
        [(f"{v.variant.name} ({v.variant.version.version})", v.series) for v in result.variants],
        title=f"{metric}, cumulative {'rate' if percent else 'mean'} by day",
        value_format=(lambda v: f"{v * 100:.1f}%") if percent else (lambda v: f"{v:.3g}"),
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
    rate = result.kind == "rate"

    def value(v: float) -> str:
        return f"{v * 100:.2f}%" if rate else f"{v:.4g}"

    def signed(v: float) -> str:
        return (f"{v * 100:+.2f} pts" if rate else f"{v:+.4g}") if v is not None else ""

    def between(interval, fmt) -> str:
        return f"{fmt(interval.low)} to {fmt(interval.high)}" if interval else ""

    control_short = not result.control.enough if result.variants else True
    rows = []
    for position, v in enumerate(result.variants):
        row = {
            "name": v.variant.name,
            "version": v.variant.version.version,
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
                p_value=f"{c.p_value:.3g}" if c.p_value is not None else "",
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


def _define_page(request, form, *, status: int = 200):
    context = {
        "form": form,
        "may_define": permissions.may_define_experiment(request.user),
        "template_names": Template.objects.values_list("name", flat=True),
    }
    template = "registry_ui/experiments/new.html"
    if request.htmx:
        template += "#experiment-form"
    return render(request, template, context, status=status)


@login_required
@permission_required(permissions.VIEW_METRICS, raise_exception=True)
@require_GET
def version_compare(request):
    form = CompareForm(request.GET or None)
    context = {"form": form, "template_names": Template.objects.values_list("name", flat=True)}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        versions = {
            row.version: row
            for row in TemplateVersion.objects.select_related("template").filter(
                template__name=data["template"], version__in=[data["a"], data["b"]]
            )
        }
        missing = [v for v in (data["a"], data["b"]) if v not in versions]
        if missing:
            form.add_error(None, f"{data['template']} has no version {', '.join(missing)}")
            return render(request, "registry_ui/experiments/compare.html", context, status=400)
        first, second = versions[data["a"]], versions[data["b"]]
        left, right = results.version_metrics(first), results.version_metrics(second)
        context.update(
            first=first,
            second=second,
            metrics=[
                (name, left.get(name, {}), right.get(name, {})) for name in sorted({*left, *right})
            ],
            versions=TemplateVersion.objects.filter(template__name=data["template"]).values_list(
                "version", flat=True
            ),
        )
    return render(request, "registry_ui/experiments/compare.html", context)
