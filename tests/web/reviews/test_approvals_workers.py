"""Approved requests and releases carried out by real Celery workers against `mlflow server`.

Needs Redis (REDIS_URL); CI always has one, so these run there.
"""

from __future__ import annotations

import os

import pytest

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import PromotionRequest
from registry_ui.web.reviews import releases
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.releases import ReleaseLine
from tests.support.workers import wait_for
from tests.web.reviews.test_approvals import mirror_stages, mlflow_stages, sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="needs Redis for real Celery workers: set REDIS_URL (CI does)",
    ),
]


def finished(request: PromotionRequest) -> bool:
    request.refresh_from_db()
    return request.status not in ("open", "executing")


def test_workers_carry_out_an_approved_request_and_a_release(
    start_worker, unique_name, erin, bob, carol
):
    start_worker()
    reviewers = [bob, carol]
    a, b = unique_name("a"), unique_name("b")
    PromptModel.register_many(
        [
            PromptModel(a, "Hi {who}", "1.0.0", metadata={"author": "alice"}),
            PromptModel(b, "Hey {who}", "1.0.0", metadata={"author": "alice"}),
        ]
    )
    sync(a)
    sync(b)

    request = reviews.file_request(
        erin, template_name=a, version="1.0.0", target="staging", justification="ready"
    )
    reviews.approve(reviewers[0], request.pk)
    wait_for(lambda: finished(request), timeout=120, message="the request to be carried out")
    assert (request.status, request.outcome) == ("done", "carried out")

    release = releases.file_release(
        erin,
        lines=[ReleaseLine(a, "1.0.0", "production"), ReleaseLine(b, "1.0.0", "staging")],
        justification="first release",
    )
    for reviewer in reviewers:
        reviews.approve(reviewer, release.pk)
    wait_for(lambda: finished(release), timeout=120, message="the release to be carried out")

    assert release.status == "done", release.outcome
    assert mlflow_stages(a) == mirror_stages(a) == {"1.0.0": "production"}
    assert mlflow_stages(b) == mirror_stages(b) == {"1.0.0": "staging"}
    assert get_registry().gateway.get_by_stage(a, "production").version == "1.0.0"
