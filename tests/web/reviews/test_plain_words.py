"""Codes become words: the metric gate and test cases as a verdict with the figures behind
a toggle, in the inbox and on a request's page; the inbox's whole row opens the request;
the operations list names the template."""

from __future__ import annotations

import pytest

from registry_ui.web import display
from registry_ui.web.models import PromotionRequest
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import signed_in, template, version

pytestmark = pytest.mark.django_db

FIGURES = "1.2.0: engagement 4.10% (95% CI 3.20% to 5.20%), n=1,200; production 1.1.0 6.00%"


@pytest.mark.parametrize(
    ("gate", "verdict", "figures"),
    [
        (
            {"status": "no_target", "detail": "the template sets no engagement_target"},
            "No target set: add engagement_target to the metadata to use the metric gate",
            "",
        ),
        (
            {"status": "no_data", "detail": "no data: no experiment has measured it (target 0.05)"},
            "No data yet: no experiment has measured this version",
            "",
        ),
        (
            {
                "status": "no_data",
                "detail": f"no data: 2,000 samples per variant needed; {FIGURES} (target 0.05)",
            },
            "No data yet: 2,000 samples per variant needed",
            f"{FIGURES} (target 0.05)",
        ),
        (
            {"status": "fail", "detail": f"below the target 0.05 (its 95% lower bound): {FIGURES}"},
            "Metric gate fails: below the target 0.05 (its 95% lower bound)",
            FIGURES,
        ),
        (
            {"status": "pass", "detail": f"meets the target 0.05: {FIGURES}"},
            "Metric gate passes: meets the target 0.05",
            FIGURES,
        ),
    ],
)
def test_a_gate_reads_as_a_verdict_and_its_figures(gate, verdict, figures):
    words = display.gate_words(gate)

    assert (words.verdict, words.figures) == (verdict, figures)
    assert "_" not in words.verdict.replace("engagement_target", "")


def test_no_gate_is_no_words():
    assert display.gate_words({}) is None and display.gate_words(None) is None


@pytest.fixture
def filed(erin):
    version(template("t/a"), "1.0.0", stage="staging")
    request = reviews.file_request(
        erin, template_name="t/a", version="1.0.0", target="production", justification="ready"
    )
    PromotionRequest.objects.filter(pk=request.pk).update(
        gate={"status": "fail", "detail": f"below the target 0.05: {FIGURES}"}
    )
    return request


def test_the_inbox_shows_the_gate_verdict_with_figures_behind_a_toggle(filed, bob):
    page = signed_in(bob).get("/requests/", {"tab": "all"})

    assert (
        '<details class="gate-words"><summary><span class="gate fail">Metric gate fails: below '
        "the target 0.05</span>" in page.text
    )
    assert "no_target" not in page.text and "metric gate fail<" not in page.text
    assert f'<tr data-href="/requests/{filed.pk}/">' in page.text  # the whole row opens it


def test_the_request_page_says_the_gate_in_words_and_why_approve_is_not_offered(filed, erin):
    page = signed_in(erin).get(f"/requests/{filed.pk}/")

    assert "Metric gate fails: below the target 0.05" in page.text
    assert "Approving is for reviewers: you can comment, and a reviewer decides." in page.text


def test_the_decision_comes_before_the_text_and_the_diff(filed, bob):
    page = signed_in(bob).get(f"/requests/{filed.pk}/")

    text = page.text
    assert text.index('id="request-review-heading"') < text.index("<h2>Template text")
    assert text.index('id="approve-heading"') < text.index("<h2>Template text")
