"""`manage.py validate_templates PATH`: every problem as file:line:col, a summary, the status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

PROJECT = Path(__file__).resolve().parents[3]

VALID = "name: a/b\nversion: 1.0.0\ntemplate: Hi {name}\n"


def write(directory: Path, text: str, name: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_it_says_all_valid_when_there_is_no_problem(tmp_path, monkeypatch, capsys):
    write(tmp_path, VALID, "templates/a.yaml")
    write(tmp_path, VALID.replace("1.0.0", "1.1.0"), "templates/b/c.yml")
    monkeypatch.chdir(tmp_path)

    call_command("validate_templates", "templates")

    assert capsys.readouterr().out.splitlines() == [
        "checked 2 template versions in 2 files: all valid"
    ]


def test_it_prints_every_problem_then_fails_with_a_summary(tmp_path, monkeypatch, capsys):
    write(tmp_path, VALID, "templates/a.yaml")
    write(tmp_path, "name: a/c\nversion: 1.0\ntemplate: |\n  Hi {name\n", "templates/b.yaml")
    write(tmp_path, VALID.replace("Hi", "Hello"), "templates/c.yaml")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError) as raised:
        call_command("validate_templates", "templates/")

    assert capsys.readouterr().out.splitlines() == [
        "templates/b.yaml:2:10: version 1.0 is read by YAML as a number, not a version: write "
        'MAJOR.MINOR.PATCH, e.g. version: "1.0.0" (quoted, a version is always read as text)',
        "templates/b.yaml:4:6: template: '{' is never closed: close the field with '}' or write "
        "'{{' for a literal brace",
        "templates/c.yaml:1:1: a/b 1.0.0 is already defined at templates/a.yaml:1:1: define each "
        "version once, and give a changed template a new version",
    ]
    assert str(raised.value) == "checked 3 template versions in 3 files: 3 problems"


def test_it_prints_paths_relative_to_the_current_directory_when_under_it(
    tmp_path, monkeypatch, capsys
):
    path = write(tmp_path, "name: a/b\n", "templates/a.yaml")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError, match=r"checked 1 template version in 1 file: 1 problem$"):
        call_command("validate_templates", str(path))

    assert capsys.readouterr().out.startswith("templates/a.yaml:1:1: missing 'version' and")


def test_it_prints_paths_as_given_when_outside_the_current_directory(tmp_path, monkeypatch, capsys):
    path = write(tmp_path, "name: a/b\n", "templates/a.yaml")
    monkeypatch.chdir(PROJECT)

    with pytest.raises(CommandError):
        call_command("validate_templates", str(path))

    assert capsys.readouterr().out.startswith(f"{path}:1:1: missing")


def test_it_names_a_path_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError, match=r"^no-such-dir: no such file or directory$"):
        call_command("validate_templates", "no-such-dir")


def test_it_fails_when_a_directory_holds_no_template_files(tmp_path, monkeypatch):
    write(tmp_path, "# not a template\n", "templates/README.md")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError, match=r"^templates: no template files \(\*\.yaml, \*\.yml\)"):
        call_command("validate_templates", "templates")


def run_manage_py(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "validate_templates", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_example_templates_validate_cleanly_with_exit_status_0():
    result = run_manage_py("examples/templates")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["checked 5 template versions in 4 files: all valid"]


def test_it_exits_with_status_1_and_the_summary_on_stderr_when_a_file_has_problems(tmp_path):
    path = write(tmp_path, VALID + "owner: me\n", "a.yaml")

    result = run_manage_py(str(path))

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:4:1: unknown key 'owner': the accepted keys are name, version, template, "
        "metadata, tests, model_config and response_format (anything else about the template "
        "goes under metadata)"
    ]
    assert "CommandError: checked 1 template version in 1 file: 1 problem" in result.stderr
