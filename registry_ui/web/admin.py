from django.contrib import admin

from registry_ui.web.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the audit trail is append-only."""

    list_display = ("seq", "at", "actor", "source", "action", "object_type", "object_id")
    list_filter = ("source", "action", "object_type")
    search_fields = ("=actor", "object_id", "=action")
    date_hierarchy = "at"
    ordering = ("-seq",)
    list_per_page = 100
    show_full_result_count = False  # no COUNT(*) over the whole trail on every page

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
