"""The admin site reads; it never changes state.

Every change goes through the services (registry_ui/web/approvals.py, operations.py), which
authorise, audit and re-check it; an admin form would bypass all three. So every model is
read-only here, for superusers too.
"""

from django.contrib import admin

from registry_ui.web.models import (
    Approval,
    AuditEvent,
    Batch,
    Operation,
    PromotionRequest,
    RequestComment,
    Template,
    TemplateVersion,
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
