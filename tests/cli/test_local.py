"""validate and test: template files checked with the core only, in a Python where Django
and MLflow cannot be imported, with the exit codes docs/api.md lists."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.conftest import BLOCKER, ROOT

EXAMPLES = str(ROOT / "examples" / "templates")

GOOD = """name: team/greeting
version: 1.0.0
template: "Hi {who}"
metadata:
  author: alice
tests:
  - name: says hi
    values: {who: Ann}
    contains: "Hi Ann"
"""
FAILING = GOOD.replace('contains: "Hi Ann"', 'contains: "Bye"')
BROKEN = 'name: team/greeting\nversion: 1.0\ntemplate: "Hi {who"\n'


@pytest.fixture
def files(tmp_path):
    def write(text: str, name: str = "t.yaml"):
        (tmp_path / name).write_text(text)
        return str(tmp_path)

    return write


def test_the_isolated_python_really_cannot_import_django_or_mlflow():
    for module in ("django", "mlflow"):
        completed = subprocess.run(
            [sys.executable, "-I", "-c", BLOCKER + f"import {module}"],
            capture_output=True,
            text=True,
        )
        assert completed.returncode == 1 and "is not importable here" in completed.stderr


def test_validate_passes_the_examples_without_django_or_mlflow(cli):
    result = cli("validate", EXAMPLES, isolated=True)

    assert result.code == 0, result
    assert "all valid" in result.out


def test_validate_names_problems_at_line_and_column_and_exits_1(cli, files):
    result = cli("validate", files(BROKEN), isolated=True)

    assert result.code == 1, result
    assert "t.yaml:2:" in result.out and "problem" in result.out


def test_validate_json(cli, files):
    result = cli("--json", "validate", files(BROKEN), isolated=True)

    body = result.json()
    assert result.code == 1 and body["valid"] is False
    assert body["problems"][0]["line"] == 2 and body["problems"][0]["column"] >= 1


def test_the_metadata_policy_of_the_environment_applies(cli, files):
    path = files(GOOD)

    loose = cli("validate", path, env={"REGISTRY_UI_REQUIRED_METADATA": "none"}, isolated=True)
    strict = cli("validate", path, env={"REGISTRY_UI_REQUIRED_METADATA": ""}, isolated=True)

    assert loose.code == 0, loose
    assert strict.code == 1 and "purpose" in strict.out, strict


def test_test_runs_cases_pass_and_fail(cli, files, tmp_path):
    passing = cli("test", files(GOOD), isolated=True)
    (tmp_path / "t.yaml").write_text(FAILING)
    failing = cli("--json", "test", str(tmp_path), isolated=True)

    assert passing.code == 0 and "PASS team/greeting 1.0.0: says hi" in passing.out, passing
    assert failing.code == 1, failing
    case = failing.json()["cases"][0]
    assert case["passed"] is False and "Bye" in case["failures"][0]
    assert case["line"] >= 1


CHAT = """name: team/reply
version: 1.0.0
template:
  - role: system
    content: You answer for {company}.
  - role: user
    content: "{question}"
response_format:
  type: object
  properties: {answer: {type: string}}
  required: [answer]
tests:
  - name: on brand
    values: {company: Acme, question: "Where is my parcel?"}
    messages:
      - {message: 1, role: system, contains: Acme}
    sample_output: '{"reply": "Today"}'
"""


def test_test_checks_single_messages_and_the_sample_answer_of_a_chat_template(cli, files):
    result = cli("--json", "test", files(CHAT), isolated=True)

    assert result.code == 1, result.out
    [case] = result.json()["cases"]
    assert case["failures"] == [
        "sample_output is JSON matching the response format: $: missing required field 'answer'"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "/no/such/dir"),
        ("test", "/no/such/dir"),
        ("frobnicate",),
        ("status", "not-a-number"),
    ],
)
def test_usage_errors_exit_2(cli, args):
    assert cli(*args, isolated=True).code == 2


def test_server_commands_need_the_url_and_token(cli):
    no_url = cli("status", "1")
    no_token = cli("status", "1", env={"REGISTRY_UI_URL": "http://127.0.0.1:9"})

    assert no_url.code == 2 and "REGISTRY_UI_URL" in no_url.err
    assert no_token.code == 2 and "REGISTRY_UI_TOKEN" in no_token.err


def test_an_unreachable_server_exits_4(cli):
    result = cli(
        "status", "1", env={"REGISTRY_UI_URL": "http://127.0.0.1:9", "REGISTRY_UI_TOKEN": "x"}
    )

    assert result.code == 4 and "cannot be reached" in result.err


def test_the_package_installs_the_console_script():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    assert project["scripts"]["registry-ui"] == "registry_ui.cli:main"
