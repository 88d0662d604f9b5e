"""The Celery app. Workers start with `celery -A registry_ui.celery worker`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_ui.settings")

app = Celery("registry_ui")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each domain keeps its tasks in its own tasks.py (task names are pinned with name=...).
app.autodiscover_tasks(
    [
        "registry_ui.web.operations",
        "registry_ui.web.prompts",
        "registry_ui.web.reviews",
        "registry_ui.web.experiments",
    ]
)
