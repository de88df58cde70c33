"""What the apps' admins share: permission-checked actions and custom views, read-only admins."""

from __future__ import annotations

import hashlib
from functools import update_wrapper

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.formats import date_format

LOADED_VERSION = "loaded_version"


class _VersionField(forms.CharField):
    """The record's version as the page was loaded: never a change of the record itself."""

    def has_changed(self, initial, data) -> bool:
        return False


class LoadedVersionForm(forms.ModelForm):
    """A change form that refuses to save over a change made since its page was loaded: the
    page carries a digest of `version_fields` as the record was then, and a save whose record
    has moved on since (another merchant, a command, the beat) is refused, so a stale page
    cannot quietly reopen a closed sale or switch a route back on."""

    version_fields: tuple[str, ...] = ()
    loaded_version = _VersionField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if LOADED_VERSION in self.fields and self.instance.pk is not None:
            self.fields[LOADED_VERSION].initial = self.version_of(self.instance)

    def version_of(self, instance) -> str:
        values = repr([str(getattr(instance, name)) for name in self.version_fields])
        return hashlib.sha256(values.encode()).hexdigest()[:20]

    def clean(self):
        cleaned = super().clean()
        loaded = cleaned.get(LOADED_VERSION)
        # Read as the record is now: the form's instance was read with this request.
        if loaded and self.instance.pk is not None and loaded != self.version_of(self.instance):
            name = self.instance._meta.verbose_name
            raise ValidationError(
                f"This {name} was changed since you opened this page: nothing was saved. Reload the page "
                "to see it as it is now, and make your change again.",
                code="stale",
            )
        return cleaned


def _action_permitted_or_403(model_admin: admin.ModelAdmin, request) -> None:
    """PermissionDenied when the list is posted an action of this admin the user may not run."""
    if request.method == "POST" and request.POST.get("action"):
        name = request.POST["action"]
        known = {action_name for _, action_name, _ in model_admin._get_base_actions()}
        if name in known and name not in model_admin.get_actions(request):
            raise PermissionDenied


class ShopModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose every action and custom view answers 403 without its permission.

    Django only hides an action the user may not run (`allowed_permissions`): posted anyway,
    it is dropped with a "no action selected" message. A refusal the caller can see is
    clearer, and lets the tests tell "refused" from "did nothing"."""

    def changelist_view(self, request, extra_context=None):
        _action_permitted_or_403(self, request)
        return super().changelist_view(request, extra_context)

    def get_changelist_instance(self, request):
        # A filter's value Django takes but the database cannot (`?created_at__year=99999`)
        # fails only as the list is counted: an address to correct, as Django answers a filter
        # it cannot parse, not a 500.
        try:
            return super().get_changelist_instance(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        # A change form that carries its record's version (LoadedVersionForm) renders it as a
        # hidden input with the first fieldset.
        declared = getattr(self.form, "declared_fields", {})
        named = {name for _, options in fieldsets for name in options.get("fields", ())}
        if obj is not None and LOADED_VERSION in declared and LOADED_VERSION not in named and fieldsets:
            (title, options), *rest = fieldsets
            fieldsets = [(title, {**options, "fields": [*options["fields"], LOADED_VERSION]}), *rest]
        return fieldsets

    def save_model(self, request, obj, form, change):
        # Saved with nothing changed on the form, a record is not written back: a full save
        # would put back every column as the page read it, undoing what a worker wrote since
        # (an order completed while its page was open).
        if change and not form.changed_data:
            return
        super().save_model(request, obj, form, change)

    def log_action(self, request, objects, message: str) -> None:
        """An action's change in each record's history, as Django records a change saved on the
        record's page or its list (who, when, what): actions change records through services
        and querysets, which leave none, so a product restocked or a sale closed by an action
        could not be traced to the merchant who did it."""
        for obj in objects:
            self.log_change(request, obj, message)

    def permission_view(self, view, permission: str):
        """Wraps a custom admin view: staff sign-in as admin_view asks, then `has_<permission>
        _permission` ("view", "change", ...) on this model, else 403. The permission is kept
        on the view so tests can find every custom view and what it needs."""

        def checked(request, *args, **kwargs):
            if not getattr(self, f"has_{permission}_permission")(request):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        checked = update_wrapper(checked, view)
        checked.admin_permission = permission
        return self.admin_site.admin_view(checked)


class ReadOnlyAdmin(ShopModelAdmin):
    """Records merchants look at but never add, change or delete (receipts, audit trails)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _actions_refused_with_403(cls: type[admin.ModelAdmin]) -> None:
    """Has a library's admin answer an action posted without its permission with 403, as the
    shop's own do (ShopModelAdmin), not with "no action selected"."""
    view = cls.changelist_view

    def changelist_view(self, request, extra_context=None):
        _action_permitted_or_403(self, request)
        return view(self, request, extra_context)

    cls.changelist_view = update_wrapper(changelist_view, view)


def _third_party_actions_checked() -> None:
    """django-axes' admin offers "clean up expired attempts" to anybody who may see the list:
    deleting the attempts is the delete permission's to give. Django's users and groups and
    django-axes' lists refuse an action without its permission with 403."""
    from django.contrib.auth.admin import GroupAdmin, UserAdmin

    for cls in (UserAdmin, GroupAdmin):
        _actions_refused_with_403(cls)
    try:
        from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
    except ImportError:  # axes not installed
        return
    AccessAttemptAdmin.cleanup_expired_attempts.allowed_permissions = ("delete",)
    for cls in (AccessAttemptAdmin, AccessLogAdmin, AccessFailureLogAdmin):
        _actions_refused_with_403(cls)


_third_party_actions_checked()


def short_datetime(value, *, seconds: bool = False) -> str:
    """A date as 30 Nov 14:05 (with the year only when it is not this one; 30 Nov 14:05:09 with
    `seconds`), in the shop's time zone: change lists stay narrow. The live sale dashboard's
    script dates its charts and tables the same way (readmodels/static/readmodels/dashboard.js)."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    day = "j M" if local.year == timezone.localtime().year else "j M Y"
    return date_format(local, f"{day} H:i:s" if seconds else f"{day} H:i")
