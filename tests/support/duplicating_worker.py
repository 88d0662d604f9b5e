"""A Celery worker whose every operation send goes out twice: at-least-once delivery, made
certain.

    python -m tests.support.duplicating_worker -A registry_ui.celery worker ...

takes the same arguments as `celery`. Before the worker starts (and forks its pool), it
wraps registry_ui.web.operations.tasks.send_after_commit so that each operation id is sent
twice in a row, the way a broker redelivering every message would. The tests patch the
same function in their own process with ``doubled`` for the sends made there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence


def doubled(send: Callable[[Sequence], None]) -> Callable[[Sequence], None]:
    """``send``, sending each id twice, side by side so that two workers take the pair."""

    def send_twice(operation_ids: Sequence) -> None:
        send([operation_id for operation_id in operation_ids for _ in range(2)])

    return send_twice


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_ui.settings")
    django.setup()
    from registry_ui.web.operations import tasks as operation_tasks

    operation_tasks.send_after_commit = doubled(operation_tasks.send_after_commit)
    from celery.__main__ import main as celery_main

    celery_main()  # runs the worker, then exits with its status


if __name__ == "__main__":
    main()
