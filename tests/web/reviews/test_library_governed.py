"""PromptModel's promotions where the dashboard is deployed: filed for review, never moved on
their own; break glass moves, audited and flagged (registry_ui.web.reviews.library)."""

from __future__ import annotations

import pytest

from registry_ui.core.policy import PolicyError
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import AuditEvent, PromotionRequest, TemplateFlag
from registry_ui.web.prompts.mirror import sync_registry

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


@pytest.fixture
def governed(settings, erin):
    settings.GOVERN_LIBRARY_PROMOTIONS = True
    settings.LIBRARY_USER = erin.username
    return settings


def registered(name: str) -> PromptModel:
    [model] = PromptModel.register_many([PromptModel(name, "Hi {x}", "1.0.0", metadata={})])
    sync_registry()
    return model


def test_a_library_promotion_is_filed_for_review_and_moves_nothing(governed, unique_name):
    name = unique_name()
    model = registered(name)

    filed = model.promote_to_staging()

    assert isinstance(filed, PromotionRequest)
    assert (filed.status, filed.requester.username, filed.target_stage) == (
        "open",
        "erin",
        "staging",
    )
    assert get_registry().gateway.alias_map(name) == {}  # nothing moved


def test_transition_many_files_each_move_for_review(governed, unique_name):
    a, b = unique_name("a"), unique_name("b")
    registered(a), registered(b)

    filed = PromptModel.transition_many([(a, "1.0.0", "staging"), (b, "1.0.0", "staging")])

    assert [type(r) for r in filed] == [PromotionRequest, PromotionRequest]
    assert get_registry().gateway.alias_map(a) == get_registry().gateway.alias_map(b) == {}


def test_without_a_library_account_the_library_is_told_what_to_do(governed, unique_name):
    governed.LIBRARY_USER = ""
    model = registered(unique_name())

    with pytest.raises(PolicyError, match="REGISTRY_UI_LIBRARY_USER"):
        model.promote_to_staging()


def test_break_glass_moves_now_audited_and_flagged(governed, unique_name):
    name = unique_name()
    model = registered(name)

    with pytest.raises(ValueError, match="needs reason="):
        model.promote_to_staging(break_glass=True)
    moved = model.promote_to_staging(break_glass=True, reason="incident 42: hotfix")

    assert moved is model and model.stage == "staging"
    assert get_registry().gateway.alias_map(name) == {"staging": model.mlflow_version}
    event = AuditEvent.objects.get(action="version.break_glass", object_id=f"{name}@1.0.0")
    assert event.after == {"stage": "staging", "reason": "incident 42: hotfix"}
    flag = TemplateFlag.objects.get(template__name=name)
    assert flag.kind == "break_glass" and "incident 42" in flag.message


def test_outside_a_governed_deployment_the_library_moves_as_before(settings, unique_name):
    settings.GOVERN_LIBRARY_PROMOTIONS = False
    name = unique_name()
    model = registered(name)

    assert model.promote_to_staging() is model
    assert model.stage == "staging"
