"""`manage.py test_templates PATH`: each case passes or fails, the rendered text and the
expectation it missed, a summary, and the exit status CI reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

PROJECT = Path(__file__).resolve().parents[3]

HOOK = """\
name: persona/hook
version: 1.0.0
template: |-
  🔥 {hook_text}
  👉 {cta} #{hashtag}
tests:
  - name: fits a Threads post
    values: {hook_text: AI changed it, cta: See how, hashtag: AI}
    max_length: 500
  - name: trending
    values: {hook_text: AI changed it, cta: See how, hashtag: AI}
    contains: "#trending"
    not_contains: {regex: "#A\\\\w"}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_it_prints_pass_or_fail_per_case_with_the_rendered_text_and_fails(
    tmp_path, monkeypatch, capsys
):
    write(tmp_path, "templates/hook.yaml", HOOK)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError) as raised:
        call_command("test_templates", "templates")

    assert capsys.readouterr().out.splitlines() == [
        "templates/hook.yaml:7:5: PASS persona/hook 1.0.0: fits a Threads post",
        "templates/hook.yaml:10:5: FAIL persona/hook 1.0.0: trending",
        "    rendered text:",
        "    | 🔥 AI changed it",
        "    | 👉 See how #AI",
        "    failed: contains '#trending': not found in the rendered text",
        "    failed: does not match regular expression '#A\\w': '#AI' at character 27 matches it",
    ]
    assert str(raised.value) == "ran 2 test cases of 1 template version in 1 file: 1 failed"


def test_it_says_all_pass_and_reads_cases_kept_in_the_metadata(tmp_path, monkeypatch, capsys):
    write(
        tmp_path,
        "t.yaml",
        "name: a/b\nversion: 1.0.0\ntemplate: Hi {name}\nmetadata:\n  test_cases:\n"
        "    - {name: greets, values: {name: Ada}, expected: Hi Ada, no_leftover_braces: true}\n",
    )
    monkeypatch.chdir(tmp_path)

    call_command("test_templates", "t.yaml")

    assert capsys.readouterr().out.splitlines() == [
        "t.yaml:6:7: PASS a/b 1.0.0: greets",
        "ran 1 test case of 1 template version in 1 file: all pass",
    ]


def test_a_case_that_does_not_render_says_why(tmp_path, monkeypatch, capsys):
    write(tmp_path, "t.yaml", "name: a/b\nversion: 1.0.0\ntemplate: Hi {name}\ntests:\n- name: x\n")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError, match="1 failed"):
        call_command("test_templates", "t.yaml")

    assert capsys.readouterr().out.splitlines()[1:] == [
        "    did not render: missing a value for variable 'name'"
    ]


def test_a_file_whose_cases_cannot_be_read_is_a_problem_and_a_failure(
    tmp_path, monkeypatch, capsys
):
    write(tmp_path, "bad.yaml", HOOK.replace('contains: "#trending"', "contains: {regex: '(#'}"))
    write(
        tmp_path,
        "good.yaml",
        HOOK.replace("persona/hook", "persona/other").split("  - name: trending")[0],
    )
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError) as raised:
        call_command("test_templates", ".")

    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "bad.yaml:12:24: tests: test case 'trending': contains: regular expression '(#' "
        "cannot be used, at position 0: a '(' is never closed"
    )
    assert out[1] == "good.yaml:7:5: PASS persona/other 1.0.0: fits a Threads post"
    assert str(raised.value) == (
        "ran 1 test case of 1 template version in 2 files: 0 failed, 1 problem"
    )


def test_files_without_cases_have_nothing_to_run(tmp_path, monkeypatch, capsys):
    write(tmp_path, "t.yaml", "name: a/b\nversion: 1.0.0\ntemplate: Hi {name}\n")
    monkeypatch.chdir(tmp_path)

    call_command("test_templates", "t.yaml")

    assert capsys.readouterr().out.splitlines() == [
        "ran 0 test cases of 0 template versions in 1 file: nothing to run"
    ]


def run_manage_py(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "test_templates", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_example_templates_pass_with_exit_status_0():
    result = run_manage_py("examples/templates")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "ran 3 test cases of 2 template versions in 4 files: all pass"
    )


def test_a_failing_case_exits_with_status_1_and_the_summary_on_stderr(tmp_path):
    path = write(tmp_path, "hook.yaml", HOOK)

    result = run_manage_py(str(path))

    assert result.returncode == 1
    assert f"{path}:10:5: FAIL persona/hook 1.0.0: trending" in result.stdout.splitlines()
    assert "CommandError: ran 2 test cases of 1 template version in 1 file: 1 failed" in (
        result.stderr
    )


CHAT = """\
name: team/reply
version: 1.0.0
template:
  - role: system
    content: You answer for {company}.
  - role: user
    content: "{question}"
response_format:
  type: object
  properties: {answer: {type: string}}
tests:
  - name: on brand
    values: {company: Acme, question: "Where is my parcel?"}
    messages:
      - {role: user, contains: Acme}
    sample_output: '{"answer": 3}'
"""


def test_a_chat_templates_message_and_answer_checks_are_run_and_reported(
    tmp_path, monkeypatch, capsys
):
    write(tmp_path, "templates/reply.yaml", CHAT)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError):
        call_command("test_templates", "templates")

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "templates/reply.yaml:12:5: FAIL team/reply 1.0.0: on brand"
    assert out[-2:] == [
        "    failed: message 2 (user) contains 'Acme': not found in the rendered text",
        "    failed: sample_output is JSON matching the response format: $.answer: expected "
        "string, found a number",
    ]
