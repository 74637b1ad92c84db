"""Django admin for the planner's models. Target passwords are write-only here."""

from django import forms
from django.contrib import admin

from planner.models import ApplicationVersion, AppQuery, AuditEvent, CompatibilityReport, Phase, Plan, TargetDatabase
from planner.services import audit


class TargetDatabaseForm(forms.ModelForm):
    new_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; never shown again. Leave blank to keep the current password.",
    )
    clear_password = forms.BooleanField(required=False, help_text="Remove the stored password.")

    class Meta:
        model = TargetDatabase
        fields = ["name", "host", "port", "dbname", "username", "password_env_var", "sslmode"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password_env_var") and cleaned.get("new_password"):
            self.add_error("password_env_var", "Give either a password or an environment variable, not both.")
        return cleaned

    def save(self, commit=True):
        target = super().save(commit=False)
        if self.cleaned_data.get("clear_password") or self.cleaned_data.get("password_env_var"):
            target.set_password("")
        if self.cleaned_data.get("new_password"):
            target.set_password(self.cleaned_data["new_password"])
        if commit:
            target.save()
        return target


class AuditedAdmin(admin.ModelAdmin):
    """Admin edits land in the planner's audit log too, not only in Django's admin history."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        action = "changed" if change else "created"
        audit.record(
            request.user,
            f"{obj._meta.model_name}.{action}.admin",
            obj,
            fields=sorted(f for f in form.changed_data if "password" not in f),
        )

    def delete_model(self, request, obj):
        audit.record(request.user, f"{obj._meta.model_name}.deleted.admin", obj)
        super().delete_model(request, obj)


@admin.register(TargetDatabase)
class TargetDatabaseAdmin(AuditedAdmin):
    form = TargetDatabaseForm
    list_display = ["name", "host", "port", "dbname", "username", "password_source"]
    search_fields = ["name", "host", "dbname"]

    @admin.display(description="password")
    def password_source(self, target: TargetDatabase) -> str:
        if target.password_env_var:
            return f"from ${target.password_env_var}"
        return "stored (encrypted)" if target.password_encrypted else "none"


class PhaseInline(admin.StackedInline):
    model = Phase
    extra = 0
    fields = ["position", "kind", "name", "status", "up_sql", "down_sql", "backfill_spec", "not_before", "not_after"]


@admin.register(Plan)
class PlanAdmin(AuditedAdmin):
    list_display = ["title", "target", "status", "owner", "high_risk", "created_at"]
    list_filter = ["status", "high_risk", "target"]
    search_fields = ["title", "description"]
    inlines = [PhaseInline]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "object_repr"]
    list_filter = ["action"]
    search_fields = ["actor_name", "action", "object_repr"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AppQueryInline(admin.TabularInline):
    model = AppQuery
    extra = 0
    fields = ["source", "origin", "sql"]
    readonly_fields = ["source", "origin", "sql"]


@admin.register(ApplicationVersion)
class ApplicationVersionAdmin(AuditedAdmin):
    list_display = ["name", "target", "status", "updated_at"]
    list_filter = ["status", "target"]
    inlines = [AppQueryInline]


@admin.register(CompatibilityReport)
class CompatibilityReportAdmin(admin.ModelAdmin):
    """Reports are made by the check only; the admin shows them."""

    list_display = ["plan", "created_at", "created_by", "error"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
