"""Template files with chat messages, model_config and response_format."""

from __future__ import annotations

from pathlib import Path

from registry_ui.core.records import content_hash
from registry_ui.core.template_files import load_template_file

CHAT_FILE = """\
name: persona/hook-chat
version: 1.0.0
template:
  - role: system
    content: |
      You write for {persona}.
  - role: user
    content: Write a hook about {topic}.
model_config:
  model_name: gpt-4o
  temperature: 0.3
  max_tokens: 200
response_format:
  type: object
  properties:
    hook: {type: string}
  required: [hook]
metadata:
  author: content-team
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_chat_template_with_model_configuration_is_read(tmp_path):
    [spec], problems = load_template_file(write(tmp_path, CHAT_FILE))
    assert problems == []
    assert spec.extra == {
        "messages": [
            {"role": "system", "content": "You write for {persona}.\n"},
            {"role": "user", "content": "Write a hook about {topic}."},
        ],
        "model_config": {"model_name": "gpt-4o", "temperature": 0.3, "max_tokens": 200},
        "response_format": {
            "type": "object",
            "properties": {"hook": {"type": "string"}},
            "required": ["hook"],
        },
    }
    assert spec.template == (
        "[system]\nYou write for {persona}.\n\n\n[user]\nWrite a hook about {topic}."
    )


def test_a_text_template_file_reads_as_before(tmp_path):
    [spec], problems = load_template_file(
        write(tmp_path, "name: a/b\nversion: 1.0.0\ntemplate: Hi {name}\n")
    )
    assert problems == [] and spec.extra == {}
    assert content_hash(spec.template, spec.version_metadata, spec.extra) == content_hash(
        "Hi {name}", {}
    )


def test_an_error_in_a_message_is_reported_at_its_place_in_the_file(tmp_path):
    text = CHAT_FILE.replace("Write a hook about {topic}.", "Write a hook about {topic.")
    _, problems = load_template_file(write(tmp_path, text))
    [problem] = problems
    assert (problem.line, problem.column) == (8, 33)
    assert problem.message.startswith("template message 2 (user): ")


def test_bad_roles_model_config_and_response_format_are_each_reported(tmp_path):
    text = (
        CHAT_FILE.replace("role: system", "role: boss")
        .replace("temperature: 0.3", "temperature: 5")
        .replace("type: object", "type: thing")
    )
    _, problems = load_template_file(write(tmp_path, text))
    messages = [p.message for p in problems]
    assert (
        "template message 1: role 'boss' is not one of system, developer, user, assistant, tool"
        in messages
    )
    assert "model_config.temperature is 5: use 0 to 2" in messages
    assert "response_format.type 'thing' is not a JSON schema type" in messages
    assert [p.line for p in problems] == [4, 10, 14]
