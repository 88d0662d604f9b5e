"""The emergency path: rolling production back from the template and version pages, and a
rollback's request page and lineage speaking of rollback (mirror rows and audit events only;
the whole way through MLflow and the workers is tests/browser/test_rollback_journey.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry_ui.web.audit import trail
from registry_ui.web.models import AuditEvent, PromotionRequest
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import HTMX, signed_in, template, version

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """The audit trail's clock, set by the test: periods in production get real lengths."""
    now = [START]
    monkeypatch.setattr("django.utils.timezone.now", lambda: now[0])
    return now


def moved(name: str, number: str, was: str, now: str) -> None:
    trail.record(
        actor="bob",
        action="version.stage_changed",
        object_type="template_version",
        object_id=f"{name}@{number}",
        source=AuditEvent.Source.WORKER,
        before={"stage": was},
        after={"stage": now},
    )


@pytest.fixture
def hook(clock):
    """1.0.0 in production for 2 days, then 1.1.0 for 3 hours, then 1.2.0 (now)."""
    row = template("t/hook")
    version(row, "1.0.0", stage="archived", was_production=True)
    version(row, "1.1.0", "Hi {who}, see {plan}", stage="archived", was_production=True)
    version(row, "1.2.0", "Hi {who}, see {plan}!", stage="production", was_production=True)
    moved("t/hook", "1.0.0", "staging", "production")
    clock[0] = START + 2 * DAY
    moved("t/hook", "1.0.0", "production", "archived")
    moved("t/hook", "1.1.0", "staging", "production")
    clock[0] = START + 2 * DAY + timedelta(hours=3)
    moved("t/hook", "1.1.0", "production", "archived")
    moved("t/hook", "1.2.0", "staging", "production")
    clock[0] = START + 3 * DAY
    return row


def test_it_offers_the_versions_that_held_production_last_out_first_with_how_long(hook, bob):
    page = signed_in(bob).get("/rollback/new", {"template": "t/hook"})

    choices = page.context["form"].fields["version"].choices
    assert [value for value, _ in choices] == ["1.1.0", "1.0.0"]
    assert choices[0][1] == (
        "1.1.0: in production from 2026-11-03 09:00 UTC to 2026-11-03 12:00 UTC (3 hours)"
    )
    assert choices[1][1].endswith("(2 days)")
    assert page.context["form"]["version"].value() == "1.1.0"  # the last one out, chosen
    assert "1.2.0</a>: it leaves production" in page.text


def test_choosing_the_template_narrows_the_versions_in_place(hook, bob):
    other = template("t/other")
    version(other, "1.0.0", stage="archived", was_production=True)

    fragment = signed_in(bob).get("/rollback/new", {"template": "t/other"}, headers=HTMX)

    assert fragment.text.lstrip().startswith('<div id="filing-form">')
    assert 'value="1.0.0"' in fragment.text and "1.1.0" not in fragment.text


def test_the_template_page_offers_roll_back_to_the_last_holder_to_reviewers(hook, bob, alice):
    reviewer = signed_in(bob).get("/templates/t/hook")
    author = signed_in(alice).get("/templates/t/hook")

    assert 'href="/rollback/new?template=t/hook&amp;version=1.1.0">Roll back to 1.1.0' in (
        reviewer.text
    )
    assert ">Request a promotion</a>" not in reviewer.text  # reviewers approve; authors ask
    assert "Roll back to" not in author.text
    assert "Rolling production back is for reviewers." in author.text


def test_an_earlier_holders_version_page_offers_roll_back(hook, bob):
    earlier = signed_in(bob).get("/templates/t/hook/-/versions/1.0.0")
    current = signed_in(bob).get("/templates/t/hook/-/versions/1.2.0")

    assert "Roll production back to 1.0.0" in earlier.text
    assert "Roll production back to" not in current.text
    # A reviewer approves promotions and writes no versions: neither is offered.
    assert ">Request " not in earlier.text and "New version from the latest" not in earlier.text


def test_a_rollback_request_page_speaks_of_rollback(hook, bob):
    rollback = reviews.file_rollback(bob, template_name="t/hook", version="1.0.0", reason="bad")

    page = signed_in(bob).get(f"/requests/{rollback.pk}/")

    text = page.text
    assert "Rollback #" in text and "production back to 1.0.0" in text
    assert "What production will lose: 1.2.0" in text
    assert "production stops using it" in text  # the variable plan goes
    assert "Version bump" not in text and "bumped enough" not in text
    assert "a major bump" not in text
    assert "You filed this request, so another reviewer approves it" in text


def test_the_lineage_says_rollback_to_the_version_with_reason_and_approvers(hook, bob, carol):
    rollback = reviews.file_rollback(bob, template_name="t/hook", version="1.1.0", reason="bad")
    moved("t/hook", "1.2.0", "production", "archived")
    moved("t/hook", "1.1.0", "archived", "production")
    trail.record(
        actor="bob",
        action="request.executed",
        object_type="promotion_request",
        object_id=str(rollback.pk),
        source=AuditEvent.Source.WORKER,
        after={
            "kind": "rollback",
            "template": "t/hook",
            "version": "1.1.0",
            "target_stage": "production",
            "justification": "engagement fell by half",
            "approved_by": ["carol"],
        },
    )
    PromotionRequest.objects.filter(pk=rollback.pk).update(status="done")

    page = signed_in(carol).get("/templates/t/hook")
    polled = signed_in(carol).get(f"/requests/{rollback.pk}/", headers=HTMX)

    assert "Rollback to <a" in page.text
    assert "engagement fell by half</span> — approved by carol" in page.text
    # The request page's last poll brings the lineage with the move, out of band.
    assert '<section id="lineage" aria-labelledby="lineage-heading" hx-swap-oob="true">' in (
        polled.text
    )
    assert "Rollback to <a" in polled.text


def test_entries_close_together_show_their_seconds(hook, bob):
    page = signed_in(bob).get("/templates/t/hook")

    assert 'data-local="seconds">2026-11-03 12:00:00 UTC</time>' in page.text
    assert 'title="2026-11-01 09:00:00 UTC"' in page.text
