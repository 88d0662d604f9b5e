"""What a reviewer sees of outside changes, in Chromium at desktop width and at 390 px: the
flags on a template's page (marked as checked in place), a tampered version's page, and the
MLflow problems page. Screenshots go to var/screenshots/."""

from __future__ import annotations

import pytest
from django.utils import timezone

from registry_ui.web.models import MlflowProblem, TemplateFlag, TemplateVersion
from tests.browser.test_journey import make_user, sign_in
from tests.web.reviews.test_approvals import template

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


@pytest.mark.parametrize("width", [1280, 390])
def test_a_reviewer_sees_flags_and_problems_and_marks_a_flag_checked(
    width, new_page, screenshot, unique_name
):
    name = unique_name()
    template(name, [("1.0.0", "Hi {who}"), ("1.0.1", "Hello {who}")], [("1.0.0", "staging")])
    TemplateVersion.objects.filter(template__name=name, version="1.0.1").update(
        tampered_at=timezone.now()
    )
    from registry_ui.web.prompts.flags import raise_flag

    raise_flag(
        name,
        "content_mismatch",
        f"{name} 1.0.1: its text in MLflow was changed after it was registered and reviewed.",
        version="1.0.1",
    )
    raise_flag(
        name,
        "outside_change",
        f"{name}: stages were moved in MLflow outside registry_ui (1.0.0 to staging), "
        "without review.",
    )
    MlflowProblem.objects.create(
        registered_model_name="broken.model with spaces",
        mlflow_version="3",
        template_name="broken/model",
        problem="MLflow version 3 of 'broken.model with spaces': the registered model's name "
        "does not map to a template name (it belongs to template 'broken/model')",
        last_seen=timezone.now(),
    )
    make_user("vera", "reviewers")
    page, problems = sign_in(new_page, "vera")
    page.set_viewport_size({"width": width, "height": 900})

    page.goto(f"/templates/{name}")
    assert page.get_by_role("heading", name="Needs a reviewer's attention").is_visible()
    screenshot(page, f"template-flags-{width}")
    page.goto(f"/templates/{name}/-/versions/1.0.1")
    assert page.get_by_text("Changed in MLflow after review").is_visible()
    screenshot(page, f"version-tampered-{width}")
    page.goto("/")
    page.get_by_role("link", name="see MLflow problems").click()
    page.wait_for_load_state()
    screenshot(page, f"mlflow-problems-{width}")
    assert page.get_by_text("does not map to a template name").is_visible()
    screenshot(page, f"mlflow-problems-{width}")

    page.goto(f"/templates/{name}")
    page.get_by_role("button", name="Mark as checked").first.click()
    page.wait_for_load_state()
    assert TemplateFlag.objects.filter(template__name=name, resolved_at__isnull=False).count() == 1
    assert problems == []
