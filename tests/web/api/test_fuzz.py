"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis),
against the live server: for any generated input, no 500, and every answer matches the
schema (status documented, body shaped as declared, problem details for errors).

Each operation gets REGISTRY_UI_FUZZ_EXAMPLES generated cases (default 15; docs/api.md
reports a longer run). Hypothesis drives each operation's strategy here rather than through
schemathesis' pytest plugin, so the number of cases run is counted and reported.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from registry_ui.web.api import tokens
from registry_ui.web.auth.roles import AUTHORS, REVIEWERS
from registry_ui.web.models import API_SCOPES
from tests.support import mirror_rows
from tests.support.users import member

EXAMPLES = int(os.environ.get("REGISTRY_UI_FUZZ_EXAMPLES", "15"))
# Every check but two. "Schema-valid data is accepted" does not hold for an API with rules
# beyond its schema (a render missing a variable's value, a request the policy refuses, a
# template name with a segment ending in '-'); "schema-violating data is refused" does not
# hold for query parameters the API does not know, which it ignores, as Django views do.
# Those answers are checked by the other checks like every other answer.
EXCLUDED = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]
# Inputs that fit the schema, and inputs that do not (each must get a documented 4xx).
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri"),
]


@pytest.fixture
def filed_not_run(monkeypatch):
    """Operations are filed, never carried out here: the fuzz is of the API, not MLflow."""
    from registry_ui.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    monkeypatch.setenv("REGISTRY_UI_API_RATE_PER_MINUTE", "1000000")
    yield
    app.conf.task_always_eager = previous


def test_no_generated_input_gets_a_500_or_an_answer_off_the_schema(live_server, filed_not_run):
    greeting = mirror_rows.template("team/greeting")
    mirror_rows.version(greeting, "1.0.0", stage="production", was_production=True)
    mirror_rows.version(greeting, "1.1.0", "Hello {who} {place}")
    fuzzer = member("fuzzer", AUTHORS, REVIEWERS)
    _, raw = tokens.token_create(fuzzer, name="fuzz", scopes=list(API_SCOPES))
    headers = {"Authorization": f"Bearer {raw}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    ran: Counter = Counter()
    statuses: Counter = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]

    def fuzzer(operation, mode):
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case):
            response = case.call_and_validate(
                base_url=live_server.url, headers=headers, excluded_checks=EXCLUDED
            )
            ran[operation.label, mode] += 1
            statuses[response.status_code] += 1

        return fuzz

    for operation, mode in itertools.product(operations, MODES):
        fuzzer(operation, mode)()

    print(f"\nfuzzed {sum(ran.values())} cases, {len(operations)} operations; {dict(statuses)}")
    assert len(ran) == len(operations) * len(MODES) and len(operations) >= 15
    assert 500 not in statuses
