"""The admin site reads; it never changes state.

Every change goes through the domains' services (registry_ui/web/<domain>/), which
authorise, audit and re-check it; an admin form would bypass all three. So every model is
read-only here, for superusers too. The one exception is ServiceToken: a calling service's
token is created (shown once) and revoked here, through registry_ui.web.experiments.tokens.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from registry_ui.core.policy import PolicyError
from registry_ui.web.experiments.tokens import service_token_create, service_token_revoke
from registry_ui.web.models import (
    ApiToken,
    Approval,
    AuditEvent,
    Batch,
    CheckComparison,
    CheckRun,
    Experiment,
    ExperimentVariant,
    IdempotentCall,
    MlflowProblem,
    NativeAliasRequest,
    NativeCheckRun,
    NativePrompt,
    NativePromptVersion,
    Operation,
    OutcomeAggregate,
    OutcomeEvent,
    PromotionRequest,
    RequestComment,
    RunMetric,
    ServiceToken,
    Template,
    TemplateFlag,
    TemplateVersion,
    VersionSample,
    WebhookDelivery,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 100
    show_full_result_count = False  # no COUNT(*) over a large table on every page

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail is append-only."""

    list_display = ("seq", "at", "actor", "source", "action", "object_type", "object_id")
    list_filter = ("source", "action", "object_type")
    search_fields = ("=actor", "object_id", "=action")
    date_hierarchy = "at"
    ordering = ("-seq",)


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "template", "version", "target_stage", "status", "requester")
    list_filter = ("status", "kind", "target_stage")
    list_select_related = ("template", "version", "requester")
    search_fields = ("template__name", "=requester__username")


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("request", "reviewer_username", "created_at")
    list_select_related = ("request__template", "request__version")


@admin.register(RequestComment)
class RequestCommentAdmin(ReadOnlyAdmin):
    list_display = ("request", "author_username", "kind", "created_at")
    list_select_related = ("request__template", "request__version")


@admin.register(Template)
class TemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "synced_at", "external_production_change")
    search_fields = ("name",)


@admin.register(MlflowProblem)
class MlflowProblemAdmin(ReadOnlyAdmin):
    list_display = ("registered_model_name", "mlflow_version", "first_seen", "resolved_at")


@admin.register(TemplateFlag)
class TemplateFlagAdmin(ReadOnlyAdmin):
    list_display = ("template", "version", "kind", "created_at", "resolved_at", "resolved_by")
    list_filter = ("kind",)
    list_select_related = ("template",)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdmin):
    list_display = ("template", "version", "stage", "author", "created_at")
    list_filter = ("stage",)
    list_select_related = ("template",)
    search_fields = ("template__name",)


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "actor", "status", "total", "succeeded", "failed", "created_at")
    list_filter = ("status",)


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "template_name", "version", "target_stage", "status")
    list_filter = ("status", "kind")
    search_fields = ("template_name",)


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdmin):
    list_display = ("version", "trigger", "passed", "actor", "created_at")
    list_filter = ("trigger", "passed")
    list_select_related = ("version__template",)


@admin.register(CheckComparison)
class CheckComparisonAdmin(ReadOnlyAdmin):
    list_display = ("new", "old", "created_at")
    list_select_related = ("new__template", "old__template")


# -- experiments: read here, defined and stopped on the Experiments pages ---------------------


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyAdmin):
    list_display = ("key", "template", "native_prompt", "metric", "status", "start_at", "stop_at")
    list_filter = ("status", "kind")
    list_select_related = ("template", "native_prompt")
    search_fields = ("key", "template__name", "native_prompt__name")


@admin.register(ExperimentVariant)
class ExperimentVariantAdmin(ReadOnlyAdmin):
    list_display = ("experiment", "name", "version", "native_version", "weight", "mlflow_run_id")
    list_select_related = ("experiment", "version__template", "native_version__prompt")


@admin.register(OutcomeEvent)
class OutcomeEventAdmin(ReadOnlyAdmin):
    """Millions of rows: no filters or search that would scan them."""

    list_display = ("event_id", "service", "experiment", "variant", "metric", "value")
    list_select_related = ("service", "experiment", "variant")
    ordering = ()  # no ORDER BY over an unindexed column


@admin.register(OutcomeAggregate)
class OutcomeAggregateAdmin(ReadOnlyAdmin):
    list_display = ("experiment", "variant", "metric", "day", "count", "sum", "logged_count")
    list_select_related = ("experiment", "variant")


@admin.register(RunMetric)
class RunMetricAdmin(ReadOnlyAdmin):
    list_display = ("version", "run_id", "key", "value", "imported_at")
    list_select_related = ("version__template",)


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    """The one model created here: a calling service's token for POST /api/v1/outcomes.

    Adding one shows the token once (only its sha256 is stored); revoking is an action.
    Both go through registry_ui.web.experiments, which audits them. Never deleted: the
    outcomes a service reported keep pointing at its token.
    """

    list_display = ("name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "experiments")  # the experiments whose outcomes it may report
    actions = ["revoke"]

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        # The list's revoke action needs it; every field is read-only on a saved token.
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.list_display if obj is not None else ()

    def get_fields(self, request, obj=None):
        return self.list_display if obj is not None else self.fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        no_saving = {"show_save": False, "show_save_and_continue": False}
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), **no_saving}
        )

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied("service tokens cannot be changed: revoke it and add another")
        try:
            row, token = service_token_create(
                request.user,
                name=form.cleaned_data["name"],
                experiments=[e.key for e in form.cleaned_data["experiments"]],
            )
        except PolicyError as error:
            raise PermissionDenied(str(error)) from None
        obj.pk = row.pk
        obj.__dict__.update({k: v for k, v in row.__dict__.items() if not k.startswith("_")})
        self.message_user(
            request,
            f"The token of {row.name} is {token} . Copy it now: it is not stored and will "
            "not be shown again. The service sends it as 'Authorization: Bearer <token>'.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = service_token_revoke(request.user, queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)


@admin.register(VersionSample)
class VersionSampleAdmin(ReadOnlyAdmin):
    """Saved through the render preview (registry_ui.web.prompts.samples.sample_save)."""

    list_display = ("version", "name", "saved_by_username", "saved_at")
    list_select_related = ("version__template",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """MLflow webhook deliveries of the last few minutes: a replay of one is refused."""

    list_display = ("delivery_id", "received_at")


@admin.register(NativePrompt)
class NativePromptAdmin(ReadOnlyAdmin):
    """MLflow's native prompts as the last sync read them (registry_ui.web.prompts.native)."""

    list_display = ("name", "governed", "aliases", "governed_aliases", "synced_at")


@admin.register(NativePromptVersion)
class NativePromptVersionAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "number", "semver", "kind", "created_at")
    list_select_related = ("prompt",)


@admin.register(NativeCheckRun)
class NativeCheckRunAdmin(ReadOnlyAdmin):
    list_display = ("version", "trigger", "passed", "actor", "created_at")
    list_select_related = ("version__prompt",)


@admin.register(NativeAliasRequest)
class NativeAliasRequestAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "alias", "semver", "state", "requested_by", "created_at")
    list_select_related = ("prompt",)


# API tokens are made and revoked on the API tokens page (/api/tokens/), which audits both;
# here they are only read. Their hashes are not shown.
@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "user", "prefix", "expires_at", "revoked_at", "last_used_at")
    exclude = ("token_sha256",)


@admin.register(IdempotentCall)
class IdempotentCallAdmin(ReadOnlyAdmin):
    list_display = ("key", "token", "status", "created_at")
