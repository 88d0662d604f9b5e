import pytest

from registry_ui.core.stages import ModelStage, StageTransitionError, check_promotion


def test_it_allows_dev_to_staging_and_staging_to_production():
    assert check_promotion(ModelStage.DEV, ModelStage.STAGING) is True
    assert check_promotion(ModelStage.STAGING, ModelStage.PRODUCTION) is True


def test_it_treats_a_move_to_the_current_stage_as_already_done():
    assert check_promotion(ModelStage.PRODUCTION, ModelStage.PRODUCTION) is False


def test_it_refuses_skipping_staging_and_says_what_to_do():
    with pytest.raises(StageTransitionError, match="promote it to staging first"):
        check_promotion(ModelStage.DEV, ModelStage.PRODUCTION, label="hook 1.0.0")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (ModelStage.ARCHIVED, ModelStage.STAGING),
        (ModelStage.ARCHIVED, ModelStage.PRODUCTION),
        (ModelStage.PRODUCTION, ModelStage.STAGING),
        (ModelStage.STAGING, ModelStage.DEV),
        (ModelStage.DEV, ModelStage.ARCHIVED),
    ],
)
def test_it_refuses_every_move_off_the_promotion_path(current, target):
    with pytest.raises(StageTransitionError, match=r"dev -> staging -> production|archived"):
        check_promotion(current, target)


def test_it_maps_stages_to_mlflow_legacy_names_and_aliases():
    assert [s.legacy_name for s in ModelStage] == ["None", "Staging", "Production", "Archived"]
    assert [s.alias for s in ModelStage] == [None, "staging", "production", None]


@pytest.mark.parametrize(
    ("text", "stage"),
    [("production", ModelStage.PRODUCTION), ("Staging", ModelStage.STAGING),
     ("None", ModelStage.DEV), ("dev", ModelStage.DEV), ("ARCHIVED", ModelStage.ARCHIVED)],
)  # fmt: skip
def test_it_parses_our_and_mlflows_stage_names(text, stage):
    assert ModelStage.parse(text) is stage


def test_it_names_the_accepted_stages_for_an_unknown_one():
    with pytest.raises(ValueError, match="use one of dev, staging, production, archived"):
        ModelStage.parse("prod")
