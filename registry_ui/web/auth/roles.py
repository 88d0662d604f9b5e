"""The four roles as Django groups, and the permissions each one holds.

The groups are created by a migration (0003) and kept in step after every migrate, so a
permission added later reaches its groups. Services check permissions, never group names.
"""

from __future__ import annotations

AUTHORS = "authors"


REVIEWERS = "reviewers"


ANALYSTS = "analysts"


ADMINS = "admins"


# Accounts a pipeline signs in as, not people: what they register names the person who
# asked for it (registry_ui.web.prompts.authorship).
CI = "ci"


_READ = [
    "registry_web.view_template",
    "registry_web.view_templateversion",
    "registry_web.view_promotionrequest",
    "registry_web.view_approval",
    "registry_web.view_requestcomment",
    "registry_web.view_auditevent",
    "registry_web.view_batch",
    "registry_web.view_operation",
    "registry_web.view_checkrun",
]


GROUP_PERMISSIONS: dict[str, list[str]] = {
    # The content team: register versions, request promotions and releases, comment.
    AUTHORS: [
        *_READ,
        "registry_web.register_version",
        "registry_web.request_promotion",
        "registry_web.comment_request",
    ],
    # Approve, reject, roll back; they read and export the audit trail.
    REVIEWERS: [
        *_READ,
        "registry_web.approve_promotion",
        "registry_web.rollback_production",
        "registry_web.comment_request",
        "registry_web.export_auditevent",
    ],
    # View and compare metrics, define experiments.
    ANALYSTS: [*_READ, "registry_web.view_metrics", "registry_web.define_experiment"],
    # A pipeline's account: registers and files requests, always on behalf of a person.
    CI: [
        *_READ,
        "registry_web.register_version",
        "registry_web.request_promotion",
        "registry_web.register_on_behalf",
    ],
    ADMINS: [
        *_READ,
        "registry_web.register_version",
        "registry_web.request_promotion",
        "registry_web.comment_request",
        "registry_web.approve_promotion",
        "registry_web.rollback_production",
        "registry_web.export_auditevent",
        "registry_web.view_metrics",
        "registry_web.define_experiment",
    ],
}


def sync_groups(apps=None) -> None:
    """Create the groups and give each exactly its permissions (idempotent).

    After every migrate, so a change of the table above reaches the database, audited as
    "migrate" (registry_ui.web.auth.changes). On a database whose trail is still empty (a new
    deployment, a test database) the groups are being created from this table: that is not
    audited, its history is this file's.
    """
    if apps is not None:  # a migration's frozen models: no signals reach the audit trail
        _sync(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
        return
    from django.contrib.auth.models import Group, Permission

    from registry_ui.web.audit import trail
    from registry_ui.web.auth import changes

    with changes.acting_as("migrate", "command", audited=trail.has_events()):
        _sync(Group, Permission)


def _sync(Group, Permission) -> None:
    for group_name, codes in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = []
        for code in codes:
            app_label, codename = code.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:  # created by a later migration: the next sync adds it
                wanted.append(permission)
        group.permissions.set(wanted)
