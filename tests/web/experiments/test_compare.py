"""The compare page: pick-lists, one number format, the difference with its interval, the
p-value, the verdict, confidence bands and the CSV of the daily figures."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from scipy import stats

from registry_ui.core.experiment_stats import Sample
from registry_ui.core.verdict import units_per_arm
from tests.web.experiments.test_experiments import (
    NOW,
    define,
    event,
    ingest,
    mirror,
    outcomes,
    signed_in,
)

pytestmark = pytest.mark.django_db

URL = "/experiments/compare"


@pytest.fixture
def hook(db):
    mirror("t/hook", {"1.0.0": "archived", "1.1.0": "production", "1.2.0": "staging"})
    return define()


def test_a_template_alone_offers_its_versions_production_as_the_baseline(client, hook, dave):
    page = signed_in(client, dave).get(URL, {"template": "t/hook"})

    assert page.status_code == 200
    assert page.context["form"]["a"].value() == "1.2.0"
    assert page.context["form"]["b"].value() == "1.1.0"
    assert '<option value="1.1.0" selected>1.1.0 (production)</option>' in page.text
    assert '<option value="1.2.0" selected>1.2.0 (staging)</option>' in page.text
    # Suggested names: the templates with an experiment (or run metrics), not every one.
    mirror("t/quiet", {"1.0.0": "production"})
    names = signed_in(client, dave).get(URL).text
    assert '<option value="t/hook"></option>' in names
    assert "t/quiet" not in names


def test_it_shows_the_difference_its_interval_the_p_value_and_a_verdict(client, hook, dave):
    ingest(outcomes("control", 60, 1000) + outcomes("treatment", 69, 1000))

    page = signed_in(client, dave).get(URL, {"template": "t/hook", "a": "1.2.0", "b": "1.1.0"})

    text = page.text
    # One format: percent, as on the experiment pages; each figure on its version's row.
    assert '<th scope="row">1.2.0</th><td>1,000</td><td>6.90%' in text
    assert '<th scope="row">1.1.0</th><td>1,000</td><td>6.00%' in text
    assert "1.2.0 minus 1.1.0" in text
    assert "+0.90 pts (" in text  # the difference with its interval
    p = stats.chi2_contingency([[60, 940], [69, 931]], correction=False)[1]
    assert f"{p:.2g}" in text
    needed = units_per_arm(Sample(1000, 60, 60), Sample(1000, 69, 69), "rate")
    more = round(needed - 1000, -3)
    assert (
        f"1.2.0 is ahead of 1.1.0 by 0.90 pts, not yet significant (p = {p:.2g}), "
        f"~{more:,} more units per arm needed" in text
    )
    assert '<polygon class="band series-0"' in text and '<polygon class="band series-1"' in text


def test_the_daily_figures_download_as_csv(client, hook, dave):
    ingest(outcomes("control", 6, 100, day=0) + outcomes("treatment", 9, 100, day=0))
    ingest(outcomes("control", 4, 50, day=1), service_name="later")

    response = signed_in(client, dave).get(
        URL + ".csv", {"template": "t/hook", "a": "1.2.0", "b": "1.1.0"}
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="t_hook_1.2.0_vs_1.1.0.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    control = [r for r in rows if r["version"] == "1.1.0"]
    assert [(r["n"], r["cumulative_n"], r["cumulative_estimate"]) for r in control] == [
        ("100", "100", "0.06"),
        ("50", "150", "0.0666667"),
    ]
    assert [r["version"] for r in rows].count("1.2.0") == 1


def test_the_same_version_twice_is_refused_naming_the_field(client, hook, dave):
    page = signed_in(client, dave).get(URL, {"template": "t/hook", "a": "1.1.0", "b": "1.1.0"})

    assert page.status_code == 400
    assert "Against: choose a version other than the first one." in page.text


def test_an_unknown_template_is_refused_naming_the_field(client, hook, dave):
    page = signed_in(client, dave).get(URL, {"template": "t/nope"})

    assert page.status_code == 400
    assert "Template: no template named &#x27;t/nope&#x27; has versions" in page.text
    assert signed_in(client, dave).get(URL + ".csv", {"template": "t/nope"}).status_code == 400


def test_authors_read_the_comparison(client, hook, alice):
    assert signed_in(client, alice).get(URL, {"template": "t/hook"}).status_code == 200


def test_the_page_makes_the_same_queries_for_1_and_30_days(client, db, dave):
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    define(start_at=NOW - timedelta(days=31), stop_at=NOW + timedelta(days=1))
    start = NOW - timedelta(days=30)
    signed_in(client, dave)
    ingest([event(0, at=start), event(0, variant="treatment", at=start)])
    query = {"template": "t/hook", "a": "1.2.0", "b": "1.1.0"}
    with CaptureQueriesContext(connection) as one:
        assert client.get(URL, query).status_code == 200

    days = [start + timedelta(days=d) for d in range(1, 30)]
    ingest(
        [event(d, at=at) for d, at in enumerate(days, 1)]
        + [event(d, variant="treatment", at=at) for d, at in enumerate(days, 1)],
        service_name="later",
    )
    with CaptureQueriesContext(connection) as thirty:
        assert client.get(URL, query).status_code == 200

    assert len(one) == len(thirty)
