"""Every change of users, groups and permissions is an audit event, wherever it is made.

Through Django's signals, so the admin, `manage.py shell`, createsuperuser and
changepassword are covered as well as this app's own pages: post_save and post_delete of
User and Group, and m2m_changed of user.groups, user.user_permissions and group.permissions,
from either side (``user.groups.add(g)`` and ``g.user_set.add(user)`` alike).

Who made the change is the signed-in user of the request being served (AuditActorMiddleware
notes the request); outside a request it is "system", from a command or the shell. Password
hashes are never recorded: only that the password changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.http import HttpRequest

from registry_ui.web.audit import trail

# What a user's events show of it (never the password hash, nor last_login: signing in is
# audited on its own, as auth.signed_in).
USER_FIELDS = (
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
)

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_acting: ContextVar[tuple[str, str] | None] = ContextVar("audit_acting", default=None)
_quiet: ContextVar[bool] = ContextVar("audit_quiet", default=False)


class AuditActorMiddleware:
    """Notes the request being served, so a change made while serving it names its user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextmanager
def acting_as(actor: str, source: str, *, audited: bool = True) -> Iterator[None]:
    """Changes made inside are audited as ``actor`` from ``source`` (or not at all)."""
    acting, quiet = _acting.set((actor, source)), _quiet.set(not audited)
    try:
        yield
    finally:
        _acting.reset(acting)
        _quiet.reset(quiet)


def _actor() -> tuple[str, str]:
    if (acting := _acting.get()) is not None:
        return acting
    request = _request.get()
    if request is None:
        return "system", "command"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username(), "dashboard"
    return "anonymous", "dashboard"


def _record(action: str, object_type: str, object_id: str, *, before=None, after=None) -> None:
    if _quiet.get():
        return
    actor, source = _actor()
    trail.record(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        source=source,
        before=before,
        after=after,
    )


# -- users ---------------------------------------------------------------------------------


def _user_state(user) -> dict:
    return {field: getattr(user, field) for field in USER_FIELDS}


def _user_saving(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    instance._audit_before = None
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every sign-in: audited as auth.signed_in
    if (
        update_fields is not None
        and set(update_fields) == {"password"}
        and not _new_password(instance)
    ):
        return  # Django re-hashing a password on sign-in: "not a password change" (its words)
    instance._audit_before = (
        sender._default_manager.filter(pk=instance.pk).values(*USER_FIELDS, "password").first()
    )


def _new_password(user) -> bool:
    # set_password() keeps the raw password until save(); check_password()'s re-hash drops it.
    return getattr(user, "_password", None) is not None


def _user_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    if created:
        _record("user.created", "user", instance.get_username(), after=_user_state(instance))
        return
    old = getattr(instance, "_audit_before", None)
    instance._audit_before = None
    if old is None:
        return
    new = _user_state(instance)
    changed = [field for field in USER_FIELDS if old[field] != new[field]]
    before = {field: old[field] for field in changed}
    after = {field: new[field] for field in changed}
    if old["password"] != instance.password:
        after["password_changed"] = True
    if after:
        _record("user.changed", "user", instance.get_username(), before=before or None, after=after)


def _user_deleted(sender, instance, **kwargs) -> None:
    _record("user.deleted", "user", instance.get_username(), before=_user_state(instance))


# -- groups --------------------------------------------------------------------------------


def _group_saving(sender, instance, raw=False, **kwargs) -> None:
    instance._audit_before = None
    if not raw and not instance._state.adding and instance.pk is not None:
        instance._audit_before = (
            sender._default_manager.filter(pk=instance.pk).values_list("name", flat=True).first()
        )


def _group_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    old_name = getattr(instance, "_audit_before", None)
    instance._audit_before = None
    if created:
        _record("group.created", "group", instance.name, after={"name": instance.name})
    elif old_name is not None and old_name != instance.name:
        _record(
            "group.renamed",
            "group",
            instance.name,
            before={"name": old_name},
            after={"name": instance.name},
        )


def _group_deleted(sender, instance, **kwargs) -> None:
    _record("group.deleted", "group", instance.name, before={"name": instance.name})


# -- memberships and permissions, from either side -------------------------------------------


def _kind(model) -> str:
    if issubclass(model, Group):
        return "group"
    if issubclass(model, Permission):
        return "permission"
    return "user"


def _describe(obj) -> tuple[str, str]:
    """(object_type, object_id) of a user, group or permission, as events name them."""
    kind = _kind(type(obj))
    if kind == "group":
        return kind, obj.name
    if kind == "permission":
        return kind, f"{obj.content_type.app_label}.{obj.codename}"
    return kind, obj.get_username()


def _fk_to(through, model) -> str:
    return next(
        field.name
        for field in through._meta.fields
        if field.is_relation and field.related_model is model._meta.concrete_model
    )


def _relations_changed(sender, instance, action, model, pk_set, **kwargs) -> None:
    if action == "pre_clear":
        mine, theirs = _fk_to(sender, type(instance)), _fk_to(sender, model)
        instance._audit_cleared = set(
            sender._default_manager.filter(**{mine: instance.pk}).values_list(
                f"{theirs}_id", flat=True
            )
        )
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_audit_cleared", set())
        instance._audit_cleared = set()
    if not pk_set:
        return
    related = model._default_manager.filter(pk__in=pk_set)
    if model is Permission:
        related = related.select_related("content_type")
    names = sorted(_describe(obj)[1] for obj in related)
    kind, object_id = _describe(instance)
    what = f"{_kind(model)}s"  # groups, permissions, users
    if action == "post_add":
        _record(f"{kind}.{what}_added", kind, object_id, after={what: names})
    else:
        _record(f"{kind}.{what}_removed", kind, object_id, before={what: names})


def connect_signals() -> None:
    User = get_user_model()
    uid = "registry_ui.auth.changes."
    pre_save.connect(_user_saving, sender=User, dispatch_uid=uid + "user_saving")
    post_save.connect(_user_saved, sender=User, dispatch_uid=uid + "user_saved")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid=uid + "user_deleted")
    pre_save.connect(_group_saving, sender=Group, dispatch_uid=uid + "group_saving")
    post_save.connect(_group_saved, sender=Group, dispatch_uid=uid + "group_saved")
    post_delete.connect(_group_deleted, sender=Group, dispatch_uid=uid + "group_deleted")
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(
            _relations_changed, sender=through, dispatch_uid=uid + through._meta.model_name
        )
