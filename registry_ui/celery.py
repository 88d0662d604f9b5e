"""The Celery app. Workers start with `celery -A registry_ui.celery worker`."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_ui.settings")

app = Celery("registry_ui")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each domain keeps its tasks in its own tasks.py (task names are pinned with name=...).
app.autodiscover_tasks(
    [
        "registry_ui.web.api",
        "registry_ui.web.audit",
        "registry_ui.web.operations",
        "registry_ui.web.prompts",
        "registry_ui.web.reviews",
        "registry_ui.web.experiments",
    ]
)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_credentials(logger, **kwargs):
    # A worker replaces the handlers settings.LOGGING set up with its own: they mask
    # credentials in what they write too (registry_ui.core.redact).
    from registry_ui.core.redact import RedactingFilter

    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
