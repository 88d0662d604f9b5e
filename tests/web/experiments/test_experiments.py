"""A/B experiments in the dashboard: the outcome API, aggregates, pages, the metric gate,
and the MLflow side (publishing, logging, importing) against a real MLflow SQLite store."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from scipy import stats

from registry_ui.core.policy import PolicyError
from registry_ui.web.experiments import definitions, ingestion, mlflow_metrics, publishing, tokens
from registry_ui.web.experiments import results as experiment_results
from registry_ui.web.experiments.definitions import VariantLine
from registry_ui.web.models import (
    AuditEvent,
    Experiment,
    OutcomeAggregate,
    OutcomeEvent,
    RunMetric,
    ServiceToken,
    Template,
    TemplateVersion,
)
from registry_ui.web.reviews import services as reviews

pytestmark = pytest.mark.django_db
API = "/api/v1/outcomes"
NOW = timezone.now()
START = (NOW - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)


# -- the cast and the world ------------------------------------------------------------------


@pytest.fixture
def cast(alice, bob, dave, root):
    """Who acts here, from the shared cast (tests/web/conftest.py)."""
    return {user.username: user for user in (alice, bob, dave, root)}


def mirror(name: str, stages: dict[str, str], target: float | None = 0.05) -> Template:
    """Mirror rows only (no MLflow): enough for the API, the pages and the gate."""
    template = Template.objects.create(name=name, registered_model_name=name.replace("/", "."))
    for number, stage in stages.items():
        major, minor, patch = (int(n) for n in number.split("."))
        metadata = {"author": "writer"}
        if target is not None:
            metadata["engagement_target"] = target
        TemplateVersion.objects.create(
            template=template,
            version=number,
            major=major,
            minor=minor,
            patch=patch,
            stage=stage,
            text=f"Hi {{who}} ({number})",
            variables=["who"],
            metadata=metadata,
            author="writer",
            content_sha256=f"{number:0>64}"[-64:],
            mlflow_version=str(patch + minor * 10 + 1),
            was_production=stage == "production",
        )
    return template


def define(key="hook-test", template="t/hook", kind="rate", min_samples=100, target=None, **kw):
    return definitions.create_experiment(
        actor="dave",
        template_name=template,
        key=key,
        title=kw.pop("title", "CTA on its own line"),
        variants=kw.pop(
            "variants", [VariantLine("control", "1.1.0", 50), VariantLine("treatment", "1.2.0", 50)]
        ),
        metric=kw.pop("metric", "engagement"),
        kind=kind,
        min_samples=min_samples,
        target=target,
        start_at=kw.pop("start_at", START),
        stop_at=kw.pop("stop_at", START + timedelta(days=14)),
    )


@pytest.fixture
def hook(db):
    mirror("t/hook", {"1.0.0": "archived", "1.1.0": "production", "1.2.0": "staging"})
    return define()


@pytest.fixture
def token(cast, hook):
    _, raw = tokens.service_token_create(
        cast["root"], name="content-service", experiments=["hook-test"]
    )
    return raw


def event(i, *, variant="control", value=1, metric="engagement", at=None, key="hook-test"):
    return {
        "experiment": key,
        "variant": variant,
        "unit_id": f"user-{i}",
        "metric": metric,
        "value": value,
        "time": (at or START + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "event_id": f"evt-{variant}-{metric}-{i}",
    }


def post(client, events, token, **extra):
    return client.post(
        API,
        json.dumps({"events": events}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
        **extra,
    )


def outcomes(variant: str, successes: int, n: int, day: int = 0, key="hook-test"):
    at = START + timedelta(days=day, hours=2)
    return [
        event(f"{day}-{i}", variant=variant, value=int(i < successes), at=at, key=key)
        for i in range(n)
    ]


def ingest(events, service_name="seed"):
    service = ServiceToken.objects.filter(name=service_name).first() or ServiceToken.objects.create(
        name=service_name, token_sha256=service_name.ljust(64, "0"), prefix="x", created_by="t"
    )
    service.experiments.add(*Experiment.objects.all())  # the seed reports every experiment
    for first in range(0, len(events), 1000):
        ingestion.record_outcomes(service, {"events": events[first : first + 1000]})


# -- the outcome API -------------------------------------------------------------------------


def test_it_refuses_a_call_without_a_valid_token(client, hook, token, cast):
    body = json.dumps({"events": [event(1)]})

    missing = client.post(API, body, content_type="application/json")
    wrong = client.post(
        API, body, content_type="application/json", headers={"Authorization": "Bearer nope"}
    )
    tokens.service_token_revoke(cast["root"], ServiceToken.objects.values_list("pk", flat=True))
    revoked = post(client, [event(1)], token)

    assert [missing.status_code, wrong.status_code, revoked.status_code] == [401, 401, 401]
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer <token>" in missing.json()["error"]
    assert not OutcomeEvent.objects.exists()


def test_it_stores_a_batch_and_adds_it_to_the_days_aggregates(client, hook, token):
    day_two = START + timedelta(days=1, hours=3)
    batch = [
        event(1, value=1),
        event(2, value=0),
        event(3, variant="treatment", value=1),
        event(4, variant="treatment", value=1, at=day_two),
        event(5, variant="treatment", metric="read_seconds", value=12.5),
        event(6, variant="treatment", metric="read_seconds", value=7.5),
    ]

    response = post(client, batch, token)

    assert response.status_code == 200, response.content
    assert response.json() == {"received": 6, "accepted": 6, "duplicates": 0}
    rows = {
        (a.variant.name, a.metric, a.day.isoformat()): (a.count, a.sum, a.sumsq)
        for a in OutcomeAggregate.objects.select_related("variant")
    }
    first, second = START.date().isoformat(), day_two.date().isoformat()
    assert rows == {
        ("control", "engagement", first): (2, 1.0, 1.0),
        ("treatment", "engagement", first): (1, 1.0, 1.0),
        ("treatment", "engagement", second): (1, 1.0, 1.0),
        ("treatment", "read_seconds", first): (2, 20.0, 12.5**2 + 7.5**2),
    }


def test_a_batch_sent_again_counts_once(client, hook, token):
    batch = [event(i, value=i % 2) for i in range(10)]
    post(client, batch, token)

    again = post(client, [*batch, event(10, value=1), event(10, value=1)], token)

    assert again.json() == {"received": 12, "accepted": 1, "duplicates": 11}
    aggregate = OutcomeAggregate.objects.get()
    assert (aggregate.count, aggregate.sum) == (11, 6.0)
    assert OutcomeEvent.objects.count() == 11


def test_the_same_event_id_from_another_service_counts_once(client, hook, token, cast):
    """Finding 4: duplicate event ids were caught only within one service."""
    _, other = tokens.service_token_create(
        cast["root"], name="mobile-app", experiments=["hook-test"]
    )

    post(client, [event(1)], token)
    response = post(client, [event(1)], other)

    assert response.json() == {"received": 1, "accepted": 0, "duplicates": 1}
    assert OutcomeAggregate.objects.get().count == 1


def test_the_same_event_id_in_two_experiments_is_two_events(client, hook, cast):
    mirror("t/other", {"1.0.0": "production", "1.1.0": "staging"})
    define(
        key="other-test",
        template="t/other",
        variants=[VariantLine("control", "1.0.0", 50), VariantLine("treatment", "1.1.0", 50)],
    )
    _, raw = tokens.service_token_create(
        cast["root"], name="both", experiments=["hook-test", "other-test"]
    )

    response = post(client, [event(1), event(1, key="other-test")], raw)

    assert response.json()["accepted"] == 2


def test_a_token_reports_only_the_experiments_it_was_given(client, hook, cast):
    """Finding 4: any service token could post outcomes for any experiment."""
    mirror("t/other", {"1.0.0": "production", "1.1.0": "staging"})
    define(
        key="other-test",
        template="t/other",
        variants=[VariantLine("control", "1.0.0", 50), VariantLine("treatment", "1.1.0", 50)],
    )
    _, raw = tokens.service_token_create(
        cast["root"], name="other-only", experiments=["other-test"]
    )

    refused = post(client, [event(1, key="other-test"), event(2)], raw)

    assert refused.status_code == 403
    assert "events[1].experiment" in refused.text and "'hook-test'" in refused.text
    assert not OutcomeEvent.objects.exists()  # nothing of the batch stored
    assert post(client, [event(1, key="other-test")], raw).json()["accepted"] == 1


def test_an_experiment_names_the_services_that_report_it(client, db, cast):
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    tokens.service_token_create(cast["root"], name="web-app")
    signed_in(client, cast["dave"])

    page = client.get("/experiments/new")
    response = client.post("/experiments/new", form(reporting_services=["web-app"]))

    assert "Services that report its outcomes" in page.text and "web-app" in page.text
    assert response.status_code == 303, response.text
    experiment = Experiment.objects.get()
    assert [s.name for s in experiment.reporting_services.all()] == ["web-app"]
    event = AuditEvent.objects.get(action="experiment.defined")
    assert event.after["reporting_services"] == ["web-app"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"value": "high"}, "events[1].value: must be a finite number, got 'high'"),
        ({"value": True}, "events[1].value: must be a finite number"),
        ({"value": 2}, "events[1].value: engagement is a rate, so each outcome is 0 or 1"),
        ({"experiment": "nope"}, "events[1].experiment: no experiment has the key 'nope'"),
        ({"experiment": "\udc00"}, "events[1].experiment: no experiment has the key"),
        ({"variant": "b"}, "events[1].variant: 'b' is not a variant of hook-test"),
        ({"unit_id": ""}, "events[1].unit_id: must be a string of 1 to 200 characters"),
        ({"unit_id": "\ud800"}, "events[1].unit_id: must be a string of 1 to 200 characters"),
        ({"metric": "Eng Rate"}, "events[1].metric: 'Eng Rate' is not a metric name"),
        ({"time": "yesterday"}, "events[1].time: 'yesterday' is not an ISO 8601 time"),
        ({"time": "2026-11-28T10:00:00"}, "events[1].time: '2026-11-28T10:00:00' has no time"),
        ({"time": "2020-01-01T00:00:00Z"}, "events[1].time: 2020-01-01T00:00:00Z is before"),
        ({"time": "2999-01-01T00:00:00Z"}, "is in the future"),
        ({"event_id": 7}, "events[1].event_id: must be a string"),
        ({"colour": "red"}, "events[1].colour: unknown field"),
        ({"event_id": None, "drop": "event_id"}, "events[1].event_id: required"),
    ],
)
def test_a_bad_event_refuses_the_whole_batch_naming_the_field(client, hook, token, change, message):
    bad = {**event(2), **change}
    if "drop" in change:
        bad.pop("drop")
        bad.pop(change["drop"])

    response = post(client, [event(1), bad, event(3)], token)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not OutcomeEvent.objects.exists() and not OutcomeAggregate.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "body: not JSON"),
        ("[1, 2]", "body: must be a JSON object"),
        ('{"events": {"a": 1}}', "events: must be a list"),
        ('{"events": [7]}', "events[0]: must be an object"),
    ],
)
def test_a_malformed_body_is_refused(client, hook, token, body, message):
    response = client.post(
        API, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_more_than_1000_events_are_refused_saying_the_limit(client, hook, token):
    response = post(client, [event(i) for i in range(1001)], token)

    assert response.status_code == 413
    assert "1,001 in one batch, at most 1,000 accepted" in response.json()["error"]
    assert not OutcomeEvent.objects.exists()


def test_the_api_needs_no_session_and_no_csrf_token(hook, token):
    from django.test import Client

    response = post(Client(enforce_csrf_checks=True), [event(1)], token)

    assert response.status_code == 200
    assert Client().get(API).status_code == 405


# -- results ---------------------------------------------------------------------------------


def test_results_match_scipy(hook):
    ingest(outcomes("control", 60, 1000) + outcomes("treatment", 85, 1000))

    result = experiment_results.results(Experiment.objects.get())

    control, treatment = result.variants
    assert (control.sample.n, treatment.sample.n) == (1000, 1000)
    wilson = stats.binomtest(85, 1000).proportion_ci(method="wilson")
    assert treatment.estimate.ci.low == pytest.approx(wilson.low)
    _, p, _, _ = stats.chi2_contingency([[60, 940], [85, 915]], correction=False)
    assert treatment.comparison.p_value == pytest.approx(p)
    assert treatment.comparison.uplift == pytest.approx(85 / 60 - 1)
    assert control.comparison is None and result.enough


def test_a_mean_metric_uses_welch(db):
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    define(kind="mean", metric="read_seconds", min_samples=2)
    a, b = [3.0, 5.0, 4.0, 6.0], [7.0, 9.0, 6.5, 8.0, 10.0]
    ingest(
        [{**event(f"a{i}", metric="read_seconds", value=v)} for i, v in enumerate(a)]
        + [
            {**event(f"b{i}", variant="treatment", metric="read_seconds", value=v)}
            for i, v in enumerate(b)
        ]
    )

    result = experiment_results.results(Experiment.objects.get())

    expected = stats.ttest_ind(b, a, equal_var=False)
    assert result.variants[1].comparison.p_value == pytest.approx(expected.pvalue)
    assert result.variants[1].estimate.value == pytest.approx(sum(b) / len(b))


def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_results_page_shows_the_chart_the_table_and_progress(client, hook, cast):
    ingest(outcomes("control", 12, 200, day=0) + outcomes("treatment", 30, 200, day=1))
    ingest(outcomes("control", 3, 50, day=2))

    page = signed_in(client, cast["dave"]).get("/experiments/hook-test/")

    assert page.status_code == 200
    text = page.text
    assert "<svg" in text and 'class="series series-0"' in text and "<polyline" in text
    assert '<progress id="progress-control" max="100" value="100">' in text
    assert "6.00%" in text  # control: 15 of 250
    assert "15.00%" in text  # treatment: 30 of 200
    p = stats.chi2_contingency([[15, 235], [30, 170]], correction=False)[1]
    assert f"{p:.2g}" in text  # two significant figures, as on every page
    assert '<polygon class="band series-0"' in text  # the confidence band


def test_below_the_minimum_sample_the_page_says_not_enough_data(client, db, cast):
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    define(min_samples=500)
    ingest(outcomes("control", 5, 100) + outcomes("treatment", 9, 100))

    page = signed_in(client, cast["dave"]).get("/experiments/hook-test/")

    assert "not enough data (100 of 500)" in page.text
    assert "p-value" in page.text and "significant</span>" not in page.text


def test_authors_and_reviewers_read_results_and_others_do_not(client, hook, cast, reader):
    for who in ("alice", "bob"):
        assert signed_in(client, cast[who]).get("/experiments/hook-test/").status_code == 200
        assert signed_in(client, cast[who]).get("/experiments/").status_code == 200
    refused = signed_in(client, reader).get("/experiments/hook-test/")
    assert refused.status_code == 403
    assert signed_in(client, reader).get("/experiments/").status_code == 403


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_list_makes_the_same_queries_for_1_and_100_experiments(client, db, cast):
    signed_in(client, cast["dave"])
    for t in range(100):
        mirror(f"t/hook-{t}", {"1.1.0": "production", "1.2.0": "staging"})
    define(key="exp-0", template="t/hook-0")
    ingest(outcomes("control", 1, 3, key="exp-0"))
    one = queries(client, "/experiments/")

    for t in range(1, 100):
        define(key=f"exp-{t}", template=f"t/hook-{t}")
        ingest(outcomes("treatment", 1, 2, key=f"exp-{t}"), service_name="more")
    hundred = queries(client, "/experiments/")

    assert one == hundred
    assert client.get("/experiments/").text.count('<progress max="100"') == 100


def test_the_results_page_makes_the_same_queries_for_1_and_100_days(client, db, cast):
    signed_in(client, cast["dave"])
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    define(start_at=NOW - timedelta(days=101), stop_at=NOW + timedelta(days=1))
    start = NOW - timedelta(days=100)
    ingest([event(0, at=start), event(0, variant="treatment", at=start)])
    one = queries(client, "/experiments/hook-test/")

    ingest(
        [event(d, at=start + timedelta(days=d)) for d in range(1, 100)]
        + [event(d, variant="treatment", at=start + timedelta(days=d)) for d in range(1, 100)],
        service_name="later",
    )
    hundred = queries(client, "/experiments/hook-test/")

    assert OutcomeAggregate.objects.count() == 200
    assert one == hundred


def test_two_versions_side_by_side(client, hook, cast):
    ingest(outcomes("control", 6, 100) + outcomes("treatment", 9, 100))
    version = TemplateVersion.objects.get(version="1.2.0")
    RunMetric.objects.create(
        version=version, run_id="r1", key="engagement_rate", value=0.07, imported_at=NOW
    )

    page = signed_in(client, cast["dave"]).get(
        "/experiments/compare", {"template": "t/hook", "a": "1.1.0", "b": "1.2.0"}
    )
    missing = client.get("/experiments/compare", {"template": "t/hook", "a": "1.1.0", "b": "9.9.9"})

    assert page.status_code == 200
    assert "6.00%" in page.text and "9.00%" in page.text  # as the experiment page writes them
    assert "1 MLflow run: mean 0.07" in page.text
    assert missing.status_code == 400
    assert "Against: 9.9.9 is not one of the choices offered." in missing.text


# -- defining and stopping -------------------------------------------------------------------


def form(**change):
    return {
        "template": "t/hook",
        "key": "cta-line",
        "title": "CTA line",
        "variants": "control 1.1.0 50\ntreatment 1.2.0 50",
        "metric": "engagement",
        "kind": "rate",
        "min_samples": "1000",
        "target": "0.06",
        "start_at": "2026-12-01 09:00",
        "stop_at": "2026-12-15 09:00",
        **change,
    }


def test_an_analyst_defines_an_experiment_and_it_is_audited(client, db, cast):
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})

    response = signed_in(client, cast["dave"]).post("/experiments/new", form())

    assert response.status_code == 303
    assert response["Location"] == "/experiments/cta-line/"
    experiment = Experiment.objects.get(key="cta-line")
    assert [(v.name, v.version.version, v.weight) for v in experiment.variants.all()] == [
        ("control", "1.1.0", 50),
        ("treatment", "1.2.0", 50),
    ]
    assert experiment.start_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    event = AuditEvent.objects.get(action="experiment.defined")
    assert (event.actor, event.object_id) == ("dave", "cta-line")
    assert event.after["variants"][1] == {"name": "treatment", "version": "1.2.0", "weight": 50}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variants": "control 1.1.0 50"}, "at least two lines"),
        ({"variants": "control 1.1.0 50\ntreatment 7.0.0 50"}, "has no version 7.0.0"),
        ({"variants": "control 1.1.0\ntreatment 1.2.0 50"}, "line 1: write"),
        ({"key": "Bad Key"}, "Key &#x27;Bad Key&#x27;"),
        ({"stop_at": "2026-11-30 09:00"}, "Stop must be after start"),
        ({"target": "6"}, "a rate&#x27;s target is between 0 and 1"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_field(client, db, cast, change, message):
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})

    response = signed_in(client, cast["dave"]).post("/experiments/new", form(**change))

    assert response.status_code == 400
    assert message in response.text
    assert not Experiment.objects.exists()


def test_overlapping_experiments_on_one_template_are_refused(hook):
    with pytest.raises(PolicyError, match="runs on t/hook at the same time"):
        define(key="another")


def test_authors_cannot_define_or_stop_experiments(client, hook, cast):
    signed_in(client, cast["alice"])

    assert client.post("/experiments/new", form(key="x-1")).status_code == 403
    assert client.post("/experiments/hook-test/stop", {"reason": "no"}).status_code == 403
    assert Experiment.objects.get().status == "running"


def test_an_analyst_stops_an_experiment_with_a_reason(client, hook, cast):
    signed_in(client, cast["dave"])

    refused = client.post("/experiments/hook-test/stop", {"reason": ""})
    stopped = client.post("/experiments/hook-test/stop", {"reason": "enough evidence"})
    again = client.post("/experiments/hook-test/stop", {"reason": "retried click"})

    assert refused.status_code == 400 and "Why stop it now is required" in refused.text
    assert stopped.status_code == again.status_code == 303
    experiment = Experiment.objects.get()
    assert (experiment.status, experiment.stop_reason) == ("stopped", "enough evidence")
    assert AuditEvent.objects.filter(action="experiment.stopped").count() == 1
    assert publishing.config_of(experiment).status == "stopped"


# -- the metric gate -------------------------------------------------------------------------


def production_request(cast):
    return reviews.file_request(
        cast["alice"], template_name="t/hook", version="1.2.0", target="production",
        justification="the experiment is in",
    )  # fmt: skip


def test_without_an_experiment_the_gate_reads_no_data(db, cast):
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})

    request = production_request(cast)

    assert request.gate["status"] == "no_data"
    assert "no experiment has measured it" in request.gate["detail"]


def test_the_gate_passes_when_staging_meets_the_target_and_is_not_worse(db, cast, settings):
    settings.GATE_MIN_SAMPLES = 100
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    define(min_samples=1000, target=0.05)
    ingest(outcomes("control", 60, 1000) + outcomes("treatment", 75, 1000))

    request = production_request(cast)

    assert request.gate["status"] == "pass", request.gate
    detail = request.gate["detail"]
    p = stats.chi2_contingency([[60, 940], [75, 925]], correction=False)[1]
    ci = stats.binomtest(75, 1000).proportion_ci(method="wilson")
    assert f"1.2.0: engagement 7.50% (95% CI {ci.low:.2%} to {ci.high:.2%}), n=1,000" in detail
    assert "difference +1.50 pts" in detail
    assert "production 1.1.0 6.00%, n=1,000" in detail and f"p={p:.3g}" in detail


def test_the_gate_fails_when_staging_is_significantly_worse(db, cast, settings):
    settings.GATE_MIN_SAMPLES = 100
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"}, target=0.01)
    define(min_samples=1000)
    ingest(outcomes("control", 120, 1000) + outcomes("treatment", 60, 1000))

    request = production_request(cast)

    assert request.gate["status"] == "fail"
    assert "significantly worse than production" in request.gate["detail"]
    assert "below the target" not in request.gate["detail"]


def test_the_gate_reads_no_data_below_the_experiments_minimum(db, cast, settings):
    settings.GATE_MIN_SAMPLES = 10
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    define(min_samples=500)
    ingest(outcomes("control", 6, 100) + outcomes("treatment", 9, 100))

    request = production_request(cast)

    assert request.gate["status"] == "no_data"
    assert "500 samples per variant needed" in request.gate["detail"]
    assert "n=100" in request.gate["detail"]


def test_reviewers_see_the_gates_figures_in_the_inbox(client, db, cast, settings):
    settings.GATE_MIN_SAMPLES = 100
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"})
    define(min_samples=100, target=0.05)
    ingest(outcomes("control", 60, 1000) + outcomes("treatment", 75, 1000))
    production_request(cast)

    page = signed_in(client, cast["bob"]).get("/requests/?tab=open")

    assert "engagement 7.50%" in page.text and "n=1,000" in page.text


# -- MLflow: publishing, assignment, logging and importing -------------------------------------


@pytest.fixture
def registered(sqlite_registry_uri, unique_name):
    """A template registered in MLflow and mirrored, production 1.1.0 and staging 1.2.0."""
    from registry_ui.prompt_model import PromptModel, get_registry
    from registry_ui.web.prompts.mirror import mirror_template

    name = unique_name()
    models = [
        PromptModel(name, text, version, metadata={"author": "writer", "engagement_target": 0.05})
        for version, text in (("1.1.0", "Hi {who}"), ("1.2.0", "Hello {who}"))
    ]
    PromptModel.register_many(models)
    models[0].promote_to_staging()
    models[0].promote_to_production()
    models[1].promote_to_staging()
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")
    return name


def test_a_defined_experiment_is_published_and_services_assign_units_from_mlflow(
    registered, django_capture_on_commit_callbacks, in_process_tasks
):
    from registry_ui.experiments import choose_variant
    from registry_ui.prompt_model import get_registry

    with django_capture_on_commit_callbacks(execute=True):
        define(key="pub-test", template=registered)
    get_registry().invalidate()

    assignments = [choose_variant("pub-test", f"user-{i}") for i in range(200)]
    cached_calls = get_registry().gateway.calls
    again = [choose_variant("pub-test", f"user-{i}") for i in range(200)]

    assert {a.version for a in assignments} == {"1.1.0", "1.2.0"}
    assert again == assignments
    assert get_registry().gateway.calls == cached_calls  # served from the cache
    assert assignments[0].load().version == assignments[0].version
    assert Experiment.objects.get().published_at is not None


def test_a_refused_publication_is_kept_for_the_page_without_credentials(
    hook, sqlite_registry_uri, monkeypatch
):
    from registry_ui.core.errors import RegistryRejectedError
    from registry_ui.prompt_model import get_registry

    def refuse(*args, **kwargs):
        raise RegistryRejectedError("refused by http://svc:S3cretPassw0rd@mlflow:5000/api")

    monkeypatch.setattr(get_registry().gateway, "set_experiment_config", refuse)
    publishing.publish(hook.pk)

    hook.refresh_from_db()
    assert hook.publish_error == "refused by http://***@mlflow:5000/api"


def test_stopping_publishes_the_control_for_everyone(
    registered, cast, django_capture_on_commit_callbacks, in_process_tasks
):
    from registry_ui.experiments import choose_variant
    from registry_ui.prompt_model import get_registry

    with django_capture_on_commit_callbacks(execute=True):
        define(key="stop-test", template=registered)
    with django_capture_on_commit_callbacks(execute=True):
        definitions.experiment_stop(cast["dave"], "stop-test", reason="done")
    get_registry().invalidate()

    chosen = {choose_variant("stop-test", f"u{i}", template=registered) for i in range(50)}

    assert {(a.variant, a.in_experiment) for a in chosen} == {("control", False)}


def test_aggregates_are_logged_to_mlflow_runs_tagged_with_template_and_version(registered):
    from registry_ui.prompt_model import get_mlflow_client

    experiment = define(key="log-test", template=registered)
    ingest(outcomes("control", 3, 10, key="log-test") + outcomes("treatment", 4, 8, key="log-test"))

    logged = mlflow_metrics.log_metrics_to_mlflow(experiment.pk)
    again = mlflow_metrics.log_metrics_to_mlflow(experiment.pk)

    assert (logged, again) == (2, 0)
    client = get_mlflow_client()
    runs = {
        v.name: client.get_run(v.mlflow_run_id)
        for v in experiment.variants.select_related("version")
    }
    treatment = runs["treatment"]
    assert treatment.data.tags["registry_ui.template_name"] == registered
    assert treatment.data.tags["registry_ui.version"] == "1.2.0"
    assert treatment.data.metrics == {"engagement": 0.5, "engagement_count": 8.0}
    assert runs["control"].data.metrics["engagement"] == pytest.approx(0.3)


def test_metrics_logged_to_runs_tagged_with_a_version_are_imported(client, registered, cast):
    from registry_ui.prompt_model import get_mlflow_client

    mlflow = get_mlflow_client()
    experiment_id = mlflow.create_experiment(f"services-{registered.replace('/', '-')}")
    for value in (0.061, 0.065):
        run = mlflow.create_run(
            experiment_id,
            tags={"registry_ui.template_name": registered, "registry_ui.version": "1.2.0"},
        )
        mlflow.log_metric(run.info.run_id, "engagement_rate_b", value)

    imported = mlflow_metrics.import_run_metrics()
    mlflow_metrics.import_run_metrics()  # again: nothing doubles

    rows = RunMetric.objects.filter(version__template__name=registered)
    assert imported["metrics"] >= 2
    assert sorted(rows.values_list("key", "value")) == [
        ("engagement_rate_b", 0.061),
        ("engagement_rate_b", 0.065),
    ]
    page = signed_in(client, cast["dave"]).get(
        "/experiments/compare", {"template": registered, "a": "1.1.0", "b": "1.2.0"}
    )
    assert "2 MLflow runs: mean 0.063" in page.text


# -- service tokens in the admin -------------------------------------------------------------


def test_the_admin_adds_a_token_shown_once_and_revokes_it(admin_client, hook):
    response = admin_client.post(
        "/admin/registry_web/servicetoken/add/",
        {"name": "newsletter", "experiments": [hook.pk]},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    token = next(m for m in shown if "newsletter" in m).split(" is ", 1)[1].split(" ")[0]
    row = ServiceToken.objects.get(name="newsletter")
    assert token not in str(list(ServiceToken.objects.values()))  # only its hash is kept
    assert row.token_sha256 == __import__("hashlib").sha256(token.encode()).hexdigest()
    created = AuditEvent.objects.get(action="service_token.created")
    assert created.after["experiments"] == ["hook-test"]
    assert [e.key for e in row.experiments.all()] == ["hook-test"]
    assert post(admin_client.__class__(), [event(1)], token).status_code == 200

    admin_client.post(
        "/admin/registry_web/servicetoken/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )

    assert ServiceToken.objects.get(pk=row.pk).revoked_at is not None
    assert post(admin_client.__class__(), [event(2)], token).status_code == 401


# -- the demo --------------------------------------------------------------------------------


def test_the_demo_has_a_running_experiment_with_believable_data(tmp_path, mlflow_sqlite_uri):
    from django.contrib.auth import get_user_model

    from registry_ui import prompt_model
    from registry_ui.web.management.commands.load_demo_data import (
        Command,
        load_demo_experiment,
        load_demo_templates,
    )

    prompt_model.configure_mlflow_with_registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        Command()._create_users(get_user_model())  # the demo's history is made by its users
        load_demo_templates()
        summary = load_demo_experiment(units=2000)
        again = load_demo_experiment(units=2000)
    finally:
        prompt_model.configure_mlflow_with_registry(mlflow_sqlite_uri)

    experiment = Experiment.objects.get(key=summary["key"])
    result = experiment_results.results(experiment)
    assert again["events"] == 0 and summary["events"] > 5000
    assert len(result.days) == 14
    rates = [v.estimate.value for v in result.variants]
    assert all(0.03 < rate < 0.12 for rate in rates)
    assert {v.variant.version.stage for v in result.variants} == {"production", "staging"}
    assert not math.isnan(result.variants[1].comparison.p_value)


def test_the_template_page_lists_its_experiments(client, hook, cast, reader):
    page = signed_in(client, cast["dave"]).get("/templates/t/hook")
    author = signed_in(client, cast["alice"]).get("/templates/t/hook")
    hidden = signed_in(client, reader).get("/templates/t/hook")

    assert page.status_code == 200
    assert 'href="/experiments/hook-test/"' in page.text and "running" in page.text
    assert "/experiments/new?template=t/hook" in page.text
    # The author reads the experiment on her template; defining one stays the analysts'.
    assert 'href="/experiments/hook-test/"' in author.text
    assert "/experiments/new?template=t/hook" not in author.text
    assert hidden.status_code == 200 and "/experiments/hook-test/" not in hidden.text


def test_the_command_logs_and_imports_now(registered, capsys):
    from django.core.management import call_command

    experiment = define(key="cmd-test", template=registered)
    ingest(outcomes("control", 1, 4, key="cmd-test"))

    call_command("experiment_metrics")

    out = capsys.readouterr().out
    assert "logged 1 variant-day(s) to MLflow" in out and "imported" in out
    assert experiment.variants.get(name="control").mlflow_run_id


@pytest.mark.parametrize(
    ("start_days", "stop_days", "status", "state"),
    [
        (1, 8, "running", "scheduled"),
        (-1, 6, "running", "running"),
        (-8, -1, "running", "ended"),
        (-1, 6, "stopped", "stopped"),
    ],
)
def test_an_experiments_state_follows_its_window_unless_stopped(
    start_days, stop_days, status, state
):
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    experiment = Experiment(
        start_at=now + timedelta(days=start_days),
        stop_at=now + timedelta(days=stop_days),
        status=status,
    )

    assert experiment.state(now) == state


# -- the gate reads every experiment that served the version (issue 16, finding 4) -------------


def test_a_failing_experiment_is_not_hidden_by_stopping_it_and_defining_an_emptier_one(
    db, cast, settings
):
    """The finding: stop the failing experiment, define one starting in 40 days; the next
    request read "no data" and two reviewers approved it without a gate reason."""
    settings.GATE_MIN_SAMPLES = 100
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"}, target=0.01)
    define(min_samples=1000)
    ingest(outcomes("control", 120, 1000) + outcomes("treatment", 60, 1000))
    definitions.experiment_stop(cast["dave"], "hook-test", reason="not looking good")
    later = START + timedelta(days=40)
    define(key="fresh-start", start_at=later, stop_at=later + timedelta(days=14))

    request = production_request(cast)

    assert request.gate["status"] == "fail", request.gate
    assert "experiment hook-test" in request.gate["detail"]
    assert "fresh-start: no data" in request.gate["detail"]


def test_defining_or_stopping_an_experiment_re_evaluates_open_production_gates(db, cast, settings):
    settings.GATE_MIN_SAMPLES = 100
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"}, target=0.01)
    request = production_request(cast)
    assert request.gate["status"] == "no_data"

    define(min_samples=1000)  # the analyst's change reaches the open request, audited
    events = AuditEvent.objects.filter(action="request.gate_reevaluated", object_id=str(request.pk))
    assert events.count() == 1
    assert events.get().after["cause"] == "experiment hook-test defined"
    assert events.get().after["changed"] is False  # no data yet either way

    ingest(outcomes("control", 120, 1000) + outcomes("treatment", 60, 1000))
    definitions.experiment_stop(cast["dave"], "hook-test", reason="looks bad")

    request.refresh_from_db()
    assert request.gate["status"] == "fail"
    stopped = events.order_by("-pk").first()
    assert stopped.after["cause"] == "experiment hook-test stopped"
    assert stopped.after["before"]["status"] == "no_data" and stopped.after["changed"] is True


def test_approving_reads_the_gate_as_it_is_now_not_as_it_was_when_filed(db, cast, settings, carol):
    settings.GATE_MIN_SAMPLES = 100
    mirror("t/hook", {"1.1.0": "production", "1.2.0": "staging"}, target=0.01)
    define(min_samples=1000)
    request = production_request(cast)
    assert request.gate["status"] == "no_data"
    # Outcomes counted after filing turn the gate to "fail": no signal, so approval reads it.
    ingest(outcomes("control", 120, 1000) + outcomes("treatment", 60, 1000))

    with pytest.raises(PolicyError, match="the metric gate fails"):
        reviews.approve(cast["bob"], request.pk)

    request.refresh_from_db()
    assert request.gate["status"] == "fail"
    assert not request.approvals.exists()
    reviews.approve(cast["bob"], request.pk, gate_reason="accepted: the drop is seasonal")
    assert request.approvals.get().gate_override_reason == "accepted: the drop is seasonal"
    event = AuditEvent.objects.get(action="request.approved", object_id=str(request.pk))
    assert event.after["gate_override_reason"] == "accepted: the drop is seasonal"
    assert event.after["gate"]["status"] == "fail"
