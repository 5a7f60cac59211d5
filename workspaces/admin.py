from django.contrib import admin
from django.http import HttpRequest

from .models import ApiKey, AuditEvent, Membership, PiiPolicy, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        PiiPolicy.objects.get_or_create(workspace=obj)  # as workspace_create does


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__username", "user__email", "workspace__name"]
    autocomplete_fields = ["user", "workspace"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "display_prefix", "workspace", "scopes", "last_used_at", "revoked_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "prefix"]
    # The hash is useless to a person and the secret is never stored; keys are
    # created from the workspace's Settings page, where the secret is shown once.
    readonly_fields = ["prefix", "secret_hash", "created_at", "last_used_at", "created_by"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(PiiPolicy)
class PiiPolicyAdmin(admin.ModelAdmin):
    list_display = ["workspace", "capture_enabled", "retention_days", "updated_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["workspace", "action"]
    search_fields = ["actor_label", "object_label", "action"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
