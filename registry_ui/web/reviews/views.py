"""The review pages: the inbox, a request's page, and every form that changes a request.

Views are thin: a form checks the shape of the input, the service (services.py or
releases.py) authorises and applies it. The services raise PermissionDenied (answered 403
by Django) and PolicyError, shown in the form with a 400. A success
redirects (303) to the request's page; an htmx form gets the updated fragment instead.
"""

from __future__ import annotations

import contextlib

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from registry_ui.core.policy import PolicyError
from registry_ui.core.template import TemplateValidationError
from registry_ui.web import display, permissions
from registry_ui.web.http import after_form, see_other
from registry_ui.web.models import (
    Approval,
    Operation,
    PromotionRequest,
    RequestComment,
    Template,
    TemplateVersion,
)
from registry_ui.web.operations import selectors as operation_selectors
from registry_ui.web.prompts import native
from registry_ui.web.prompts import selectors as prompt_selectors
from registry_ui.web.prompts import views as prompt_views
from registry_ui.web.reviews import inbox, releases, services
from registry_ui.web.reviews.forms import (
    ApproveForm,
    CommentForm,
    PromotionRequestForm,
    RejectForm,
    ReleaseForm,
    RollbackForm,
    WithdrawForm,
)

Status = PromotionRequest.Status


PAGE_SIZE = 50


TIMELINE_ENTRIES = 12  # the newest of a template's lineage on a request's page


TABS = {
    "waiting": "Waiting for me",
    "mine": "Mine",
    "open": "Open",
    "all": "All",
}


DETAIL = "registry_ui/reviews/detail.html"


REVIEW_FRAGMENT = DETAIL + "#request-review"


@login_required
@permission_required(permissions.VIEW_REQUESTS, raise_exception=True)
@require_GET
def request_list(request):
    can_review = permissions.may_review(request.user)
    tab = request.GET.get("tab") or ("waiting" if can_review else "mine")
    if tab not in TABS:
        return HttpResponseBadRequest(
            f"unknown tab {tab!r}: accepted tab={', tab='.join(TABS)}\n",
            content_type="text/plain; charset=utf-8",
        )
    page = Paginator(_inbox(request.user, tab), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "tabs": TABS,
        "tab": tab,
        "tab_label": TABS[tab],
        "page": page,
        "can_review": can_review,
        "can_request": permissions.may_file(request.user, "promote"),
        "can_roll_back": permissions.may_roll_back(request.user),
    }
    # Moves of native prompts' governed aliases, approved on each prompt's page.
    context["native_requests"] = native.alias_requests_for(request.user, tab)
    context["native_shown"] = native.ALIAS_REQUESTS_SHOWN
    if tab == "waiting":
        # The header's badge counts the same requests: the page's COUNT answers it too.
        context["waiting_for_me"] = page.paginator.count + len(context["native_requests"])
    return render(request, "registry_ui/reviews/list.html", context)


# What a row of the inbox shows (registry_ui/reviews/list.html); the rest is deferred.
INBOX_FIELDS = (
    "kind",
    "template__name",
    "version__version",
    "target_stage",
    "gate",
    "justification",
    "requester__username",
    "status",
    "checks",
    "required_approvals",
    "created_at",
)


def _count(related, link: str):
    """COUNT(*) of ``related`` rows for each outer row, 0 when there are none."""
    counted = related.order_by().values(link).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def _inbox(user, tab: str):
    """One tab's requests, with what each row shows, in one query per page.

    Release items are reviewed as part of their release, so only the release is listed.
    """
    requests = (
        PromotionRequest.objects.filter(release__isnull=True)
        .select_related("template", "version", "requester")
        # Only what a row shows: not the version's text and metadata, nor the request's report.
        .only(*INBOX_FIELDS)
        # Counted per row by subqueries: joining both many-sides would need a GROUP BY over
        # every selected column (and COUNT DISTINCT), and the page's COUNT would carry it too.
        .annotate(
            approval_count=_count(Approval.objects.filter(request=OuterRef("pk")), "request"),
            item_count=_count(PromotionRequest.objects.filter(release=OuterRef("pk")), "release"),
        )
        .order_by("-created_at", "-id")
    )
    if tab == "waiting":
        return inbox.waiting_for_me(user, requests)
    if tab == "mine":
        return requests.filter(requester=user)
    if tab == "open":
        return requests.filter(status__in=PromotionRequest.ACTIVE)
    return requests


@login_required
@permission_required(permissions.VIEW_REQUESTS, raise_exception=True)
@require_GET
def request_detail(request, pk: int):
    """The request's page; htmx polls its review section while an approved request runs."""
    template = DETAIL + "#request-review" if request.htmx else DETAIL
    return render(request, template, _review_context(request, pk))


def _review_context(request, pk: int, **bound_forms) -> dict:
    """The request page's context; ``bound_forms`` replace the empty forms (with errors)."""
    review = get_object_or_404(
        PromotionRequest.objects.select_related(
            "template", "version", "requester"
        ).prefetch_related(
            Prefetch("approvals", queryset=Approval.objects.select_related("reviewer")),
            Prefetch("comments", queryset=RequestComment.objects.order_by("created_at", "id")),
            Prefetch(
                "items",
                queryset=PromotionRequest.objects.select_related("template", "version").order_by(
                    "id"
                ),
            ),
        ),
        pk=pk,
    )
    forms = {
        "approve_form": ApproveForm(),
        "reject_form": RejectForm(),
        "comment_form": CommentForm(),
        "withdraw_form": WithdrawForm(),
        **bound_forms,
    }
    for item in review.items.all():
        item.gate_words = display.gate_words(item.gate)
    return {
        "review": review,
        "rollback": review.kind == PromotionRequest.Kind.ROLLBACK,
        "gate_words": display.gate_words(review.gate),
        "checks_words": display.checks_words(review.checks),
        "why_not_approve": permissions.why_not_approve(request.user, review),
        "progress": _progress(review),
        **_template_context(review),
        "valid_approvals": review.valid_approvals(),
        "approved_by_me": any(a.reviewer_id == request.user.pk for a in review.approvals.all()),
        "can": permissions.request_actions(request.user, review),
        "metadata": prompt_views.metadata_pairs(review.version.metadata) if review.version else [],
        "report_items": list((review.report or {}).get("items", {}).values()),
        **forms,
    }


def _template_context(review: PromotionRequest) -> dict:
    """The template's side of a request: ``change``, the version against the one it would
    replace (the target stage's holder, or else the version before it; None for a first
    version), and ``timeline``, the template's lineage. Empty for a release: its items have
    their own pages."""
    if review.version is None:
        return {"change": None, "timeline": [], "timeline_more": False}
    versions = prompt_selectors.versions_of(review.template)
    old = review.version.compared_with(review.target_stage)
    change = None
    # A text that does not parse could only come from a hand-edited mirror row.
    with contextlib.suppress(TemplateValidationError):
        change = prompt_views.comparison_context(old, review.version) if old else None
    timeline = prompt_views.timeline_rows(review.template, versions)
    return {
        "change": change,
        "timeline": timeline[:TIMELINE_ENTRIES],
        "timeline_more": len(timeline) > TIMELINE_ENTRIES,
    }


def _progress(review: PromotionRequest):
    """The batch carrying out an approved request (a release item's is its release's), or None."""
    carrier = review.release_id or review.pk
    operation = Operation.objects.filter(request_id=carrier).select_related("batch").first()
    return operation_selectors.batch_rows([operation.batch])[0] if operation else None


def _act(request, pk: int, form_name: str, form, perform):
    """Run one review action: the form's shape, then the service; answer page or fragment."""
    get_object_or_404(PromotionRequest, pk=pk)
    if form.is_valid():
        try:
            perform(form.cleaned_data)
        except PolicyError as error:
            form.add_error(None, str(error))
        else:
            if request.htmx:
                return render(request, REVIEW_FRAGMENT, _review_context(request, pk))
            return see_other(reverse("request_detail", args=[pk]))
    # htmx 2 swaps a 4xx answer only when htmx.config.responseHandling lets it (base.html).
    template = REVIEW_FRAGMENT if request.htmx else DETAIL
    return render(request, template, _review_context(request, pk, **{form_name: form}), status=400)


@login_required
@require_POST
def request_approve(request, pk: int):
    return _act(
        request,
        pk,
        "approve_form",
        ApproveForm(request.POST),
        lambda data: services.approve(
            request.user,
            pk,
            comment=data["comment"],
            gate_reason=data["gate_reason"],
            checks_reason=data["checks_reason"],
        ),
    )


@login_required
@require_POST
def request_reject(request, pk: int):
    return _act(
        request,
        pk,
        "reject_form",
        RejectForm(request.POST),
        lambda data: services.reject(request.user, pk, comment=data["comment"]),
    )


@login_required
@require_POST
def request_comment(request, pk: int):
    return _act(
        request,
        pk,
        "comment_form",
        CommentForm(request.POST),
        lambda data: services.add_comment(request.user, pk, text=data["text"]),
    )


@login_required
@require_POST
def request_withdraw(request, pk: int):
    return _act(
        request,
        pk,
        "withdraw_form",
        WithdrawForm(request.POST),
        lambda data: services.withdraw(request.user, pk),
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_create(request):
    if request.method == "GET":
        form = PromotionRequestForm(
            initial={
                k: request.GET[k] for k in ("template", "version", "target") if request.GET.get(k)
            }
        )
        return _filing_page(request, "new.html", form)
    form = PromotionRequestForm(request.POST)
    return _file(
        request,
        "new.html",
        form,
        lambda data: services.file_request(
            request.user,
            template_name=data["template"],
            version=data["version"],
            target=data["target"],
            justification=data["justification"],
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def rollback_create(request):
    """Choose the template, then the version (only those that held production, the last one
    out first and chosen), write the reason, file. The template's and a version's pages link
    here with both filled in."""
    if request.method == "GET":
        name = request.GET.get("template") or ""
        initial = {k: request.GET[k] for k in ("template", "version") if request.GET.get(k)}
        form = RollbackForm(initial=initial, template_name=name)
        return _filing_page(request, "rollback.html", form, **_rollback_context(name))
    name = request.POST.get("template") or ""
    form = RollbackForm(request.POST, template_name=name)
    return _file(
        request,
        "rollback.html",
        form,
        lambda data: services.file_rollback(
            request.user,
            template_name=data["template"],
            version=data["version"],
            reason=data["reason"],
        ),
        **_rollback_context(name),
    )


def _rollback_context(name: str) -> dict:
    """What production holds now (what a rollback replaces) and the approvals it needs."""
    required = services.approval_policy().required("rollback", "production")
    if not name:
        return {"required_approvals": required}
    holder = (
        TemplateVersion.objects.filter(template__name=name, stage="production")
        .select_related("template")
        .first()
    )
    return {"production_now": holder, "required_approvals": required}


@login_required
@require_http_methods(["GET", "POST"])
def release_create(request):
    if request.method == "GET":
        return _filing_page(request, "release.html", ReleaseForm(initial={"action": "dry_run"}))
    form = ReleaseForm(request.POST)
    if form.is_valid() and form.cleaned_data["action"] == "dry_run":
        try:
            plans = releases.dry_run(form.cleaned_data["lines"])
        except PolicyError as error:
            form.add_error(None, str(error))
            return _filing_page(request, "release.html", form, status=400)
        return _filing_page(request, "release.html", form, plans=plans)
    return _file(
        request,
        "release.html",
        form,
        lambda data: releases.file_release(
            request.user, lines=data["lines"], justification=data["justification"]
        ),
    )


def _file(request, page: str, form, perform, **extra):
    if form.is_valid():
        try:
            filed = perform(form.cleaned_data)
        except PolicyError as error:
            form.add_error(None, str(error))
        else:
            url = reverse("request_detail", args=[filed.pk])
            return after_form(request, url)
    return _filing_page(request, page, form, status=400, **extra)


# The filing pages, by the kind of request they file.
FILING_KINDS = {"new.html": "promote", "rollback.html": "rollback", "release.html": "release"}


def _filing_page(request, page: str, form, *, status: int = 200, plans=None, **extra):
    context = {
        **extra,
        "form": form,
        "plans": plans,
        "plans_ok": plans is not None and not any(plan.problems for plan in plans),
        "may_file": permissions.may_file(request.user, FILING_KINDS[page]),
        "template_names": Template.objects.values_list("name", flat=True),
    }
    template = f"registry_ui/reviews/{page}"
    if request.htmx:
        template += "#filing-form"
    return render(request, template, context, status=status)
