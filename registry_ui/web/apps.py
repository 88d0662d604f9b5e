import logging

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate

from registry_ui.core.redact import redact

logger = logging.getLogger("registry_ui")


class WebConfig(AppConfig):
    name = "registry_ui.web"
    label = "registry_web"
    verbose_name = "Prompt template registry"

    def ready(self) -> None:
        # Importing the Celery app here binds @shared_task to it in every process.
        from registry_ui.celery import app  # noqa: F401

        # Importing it registers the system checks on the audit key (registry_web.E001...).
        from registry_ui.web.audit import keys  # noqa: F401
        from registry_ui.web.auth import changes, signin

        # Importing these modules connects their receivers: open requests go stale when
        # the mirror moves their template's stages (stages_moved), and open production
        # requests get their metric gate evaluated again when an experiment on their
        # version is defined or stopped (experiment_changed).
        from registry_ui.web.reviews import gates, staleness  # noqa: F401

        signin.connect_signals()
        # New versions of a template chosen for publishing are published as native prompt
        # versions after the mirror's commit (versions_added).
        from registry_ui.web.prompts import signals as prompt_signals
        from registry_ui.web.prompts import tasks as prompt_tasks

        prompt_signals.versions_added.connect(
            prompt_tasks.publish_after_new_versions, dispatch_uid="publish_after_new_versions"
        )
        # Native prompts' alias requests are emailed like templates' requests.
        from registry_ui.web.reviews import tasks as review_tasks

        prompt_signals.native_request_event.connect(
            review_tasks.queue_native_notification, dispatch_uid="queue_native_notification"
        )
        # Users, groups and permissions: audited wherever they change (the admin, the shell).
        changes.connect_signals()

        # PromptModel's promotions are filed as requests where the dashboard is deployed.
        from registry_ui.prompt_model import govern_promotions
        from registry_ui.web.reviews.library import DashboardGovernor

        govern_promotions(DashboardGovernor())

        # The role groups follow every migrate (and every test-database flush).
        post_migrate.connect(_sync_role_groups, sender=self)

        if _reloader_parent():
            pass  # runserver's reloading parent: its child says it (each line once)
        elif settings.CELERY_TASK_ALWAYS_EAGER:
            logger.info("REDIS_URL is unset: background tasks run in-process (no Celery worker)")
        else:
            logger.info("background tasks go to Celery on %s", redact(settings.REDIS_URL))


def _reloader_parent() -> bool:
    """The process runserver's autoreloader watches files from (it starts the server in a
    child process, with RUN_MAIN set, which loads the apps again)."""
    import os
    import sys

    return (
        len(sys.argv) > 1
        and sys.argv[1] == "runserver"
        and "--noreload" not in sys.argv
        and os.environ.get("RUN_MAIN") != "true"
    )


def _sync_role_groups(sender, **kwargs) -> None:
    from registry_ui.web.auth.roles import sync_groups

    sync_groups()
