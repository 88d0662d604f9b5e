"""The Celery app. Workers start with `celery -A registry_ui.celery worker`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_ui.settings")

app = Celery("registry_ui")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
