"""Approvals racing on PostgreSQL: the request's row lock makes exactly one operation."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from registry_ui.core.policy import PolicyError
from registry_ui.web.auth import roles
from registry_ui.web.models import Approval, Operation, PromotionRequest
from registry_ui.web.reviews import services as reviews
from tests.support.users import member
from tests.web.reviews.test_approvals import sync, template

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and real concurrency need PostgreSQL (CI sets DATABASE_URL to it)",
    ),
]

REVIEWERS = 50


def test_fifty_concurrent_approvals_of_one_production_request_make_one_operation(
    unique_name, in_process_tasks, monkeypatch, erin
):
    from registry_ui.web.operations.tasks import run_operation

    name = unique_name()
    template(name, [("1.0.0", "Hi {who}")], [("1.0.0", "staging")])
    sync(name)
    reviewers = [member(f"reviewer{number}", roles.REVIEWERS) for number in range(REVIEWERS)]
    request = reviews.file_request(
        erin, template_name=name, version="1.0.0", target="production", justification="j"
    )
    # Count the messages instead of running them: this test is about the decision only.
    sent = []
    monkeypatch.setattr(run_operation, "delay", lambda operation_id: sent.append(operation_id))

    barrier = threading.Barrier(REVIEWERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def approve(reviewer):
        try:
            reviewer = User.objects.get(pk=reviewer.pk)  # this thread's own connection
            barrier.wait()
            reviews.approve(reviewer, request.pk)
            result = "approved"
        except PolicyError as error:
            result = str(error)
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approve, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    request.refresh_from_db()
    assert request.status == "executing"
    assert Operation.objects.filter(request=request).count() == 1
    assert len(sent) == 1
    assert Approval.objects.filter(request=request).count() == 2
    assert outcomes.count("approved") == 2
    refused = [o for o in outcomes if o != "approved"]
    assert len(refused) == REVIEWERS - 2
    assert all("is executing: only open requests can be approved" in o for o in refused)
    assert PromotionRequest.objects.count() == 1
