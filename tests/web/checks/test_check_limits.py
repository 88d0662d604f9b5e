"""A version's test cases cannot make the server build gigabytes or search forever: a case
whose render passes the limits fails with the limit named, and its results are stored small.

Each run happens in a child process whose memory and CPU time are capped, so a check that
builds the whole text or backtracks (as before the limits) runs out there instead of passing.
"""

from __future__ import annotations

import pytest

from tests.support.limited import run_limited
from tests.support.mirror_rows import template, version

pytestmark = pytest.mark.django_db(transaction=True)
# Django and the app take about 400 MB of address space in a child.
CHILD_MEMORY_MB = 900


def run_checks_in_child(name: str, number: str) -> dict:
    child = run_limited(
        f"""
        from registry_ui.web.checks import services
        from registry_ui.web.models import TemplateVersion
        row = TemplateVersion.objects.get(template__name={name!r}, version={number!r})
        run = services.run_checks(row, trigger="on_demand", actor="test")
        print(json.dumps({{"passed": run.passed, "results": run.results}}))
        """,
        memory_mb=CHILD_MEMORY_MB,
        cpu_seconds=60,
        django=True,
    )
    assert not child.ran_out, child.stderr[-2000:]
    return child.result


def test_a_case_rendering_a_300_million_wide_field_fails_without_building_it():
    case = {"name": "wide", "values": {"x": 1}, "max_length": 500}
    version(template("t/wide-case"), "1.0.0", "{x:>300000000}", metadata={"test_cases": [case]})

    run = run_checks_in_child("t/wide-case", "1.0.0")

    assert run["passed"] is False
    [result] = run["results"]
    assert result["rendered"] is None
    assert result["failures"][0]["message"] == (
        "field 'x' at 1:1 asks for a width of 300,000,000 with format spec '>300000000': a "
        "width may be at most 1,000 here"
    )
