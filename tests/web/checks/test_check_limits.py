"""A version's test cases cannot make the server build gigabytes or search forever: a case
whose render passes the limits fails with the limit named, and its results are stored small.

Each run happens in a child process whose memory and CPU time are capped, so a check that
builds the whole text or backtracks (as before the limits) runs out there instead of passing.
"""

from __future__ import annotations

import pytest

from registry_ui.core import checks as core_checks
from tests.support.limited import run_limited
from tests.support.mirror_rows import signed_in, template, version

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
    case = {"name": "wide", "values": {"x": 1, "w": 300_000_000}, "max_length": 500}
    version(template("t/wide-case"), "1.0.0", "{x:>{w}}", metadata={"test_cases": [case]})

    run = run_checks_in_child("t/wide-case", "1.0.0")

    assert run["passed"] is False
    [result] = run["results"]
    assert result["rendered"] is None
    assert result["failures"][0]["message"] == (
        "field 'x' at 1:1 asks for a width of 300,000,000 with format spec '>{w}', which the "
        "values make '>300000000': a width may be at most 1,000 here"
    )


def test_cases_rendering_300_million_characters_without_a_spec_fail_without_building_them():
    case = {"name": "many", "values": {"x": "y" * 10_000}, "max_length": 500}
    version(template("t/many-case"), "1.0.0", "{x}" * 30_000, metadata={"test_cases": [case]})

    run = run_checks_in_child("t/many-case", "1.0.0")

    [result] = run["results"]
    assert result["failures"][0]["message"].startswith(
        "the rendered text would be longer than 1,000,000 characters"
    )


TRAP = {
    "name": "trap",
    "values": {"x": "a" * 40 + "!"},
    "contains": [{"regex": "(a+)+$"}],  # backtracks exponentially in Python's re
}


def test_the_worker_check_of_a_backtracking_pattern_ends_within_its_cpu_time():
    version(template("t/trap"), "1.0.0", "{x}", metadata={"test_cases": [TRAP]})

    run = run_checks_in_child("t/trap", "1.0.0")

    assert run["passed"] is False
    assert run["results"][0]["failures"][0]["message"] == "not found in the rendered text"


def test_pages_read_stored_results_and_run_no_case_again_on_later_views(reader, monkeypatch):
    row = template("t/stored")
    case = {"name": "greets", "values": {"who": "Ann"}, "contains": "Ann"}
    version(row, "1.0.0", "Hi {who}", metadata={"test_cases": [case]})
    version(row, "1.1.0", "Hello {who}", metadata={"test_cases": [case]})
    runs = []
    real_run_case = core_checks.run_case
    monkeypatch.setattr(
        core_checks, "run_case", lambda *a, **k: runs.append(1) or real_run_case(*a, **k)
    )
    client = signed_in(reader)
    pages = [
        "/templates/t/stored/-/versions/1.1.0",
        "/templates/t/stored/-/diff?from=1.0.0&to=1.1.0",
    ]

    for page in pages:
        client.get(page)  # the first view compares the two versions once, and keeps it
    first = len(runs)
    for _ in range(3):
        for page in pages:
            assert client.get(page).status_code == 200

    assert first == 2  # the one case on both texts, once
    assert len(runs) == first


def test_a_version_page_checking_the_previous_text_with_a_backtracking_pattern_answers(reader):
    # Fast on the new text (cut to 3 characters), exponential on the previous one's.
    row = template("t/stealth")
    version(row, "1.0.0", "{x}", metadata={})
    version(row, "1.1.0", "{x:.3}", metadata={"test_cases": [TRAP]})

    child = run_limited(
        """
        response = signed_in("reader").get("/templates/t/stealth/-/versions/1.1.0")
        print(json.dumps(response.status_code))
        """,
        memory_mb=CHILD_MEMORY_MB,
        cpu_seconds=20,
        django=True,
    )

    assert not child.ran_out, child.stderr[-2000:]
    assert child.result == 200


def test_test_templates_runs_a_backtracking_pattern_within_its_cpu_time(tmp_path):
    (tmp_path / "trap.yaml").write_text(
        "name: t/trap\nversion: 1.0.0\ntemplate: '{x}'\ntests:\n"
        "  - name: trap\n    values: {x: " + "a" * 40 + "!}\n"
        "    contains: [{regex: '(a+)+$'}]\n",
        encoding="utf-8",
    )

    child = run_limited(
        f"""
        from django.core.management import CommandError, call_command
        try:
            call_command("test_templates", {str(tmp_path)!r})
        except CommandError as error:
            print(json.dumps(str(error)))
        """,
        memory_mb=CHILD_MEMORY_MB,
        cpu_seconds=20,
        django=True,
    )

    assert not child.ran_out, child.stderr[-2000:]
    assert child.result.endswith("1 failed")


@pytest.mark.parametrize("command", ["validate_templates", "test_templates", "register_templates"])
def test_every_command_reading_template_files_refuses_an_alias_bomb_in_bounded_memory(
    command, tmp_path
):
    from tests.core.test_template_file_limits import BOMB_IN_TESTS

    (tmp_path / "bomb.yaml").write_text(BOMB_IN_TESTS, encoding="utf-8")

    child = run_limited(
        f"""
        from django.core.management import CommandError, call_command
        try:
            call_command({command!r}, {str(tmp_path)!r})
        except CommandError as error:
            print(json.dumps(str(error)))
        """,
        memory_mb=CHILD_MEMORY_MB,
        cpu_seconds=30,
        django=True,
    )

    assert not child.ran_out, child.stderr[-2000:]
    assert "bomb.yaml:14:11: YAML aliases repeat 490,329,036 nodes" in child.stdout
    assert "1 problem" in child.result
