"""Template files: every problem, where it is in the YAML file, and what is accepted instead."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_ui import prompt_model
from registry_ui.core import template_files
from registry_ui.core.template import validate_template
from registry_ui.core.template_files import (
    FileProblem,
    TemplateSpec,
    find_template_files,
    load_template_file,
    load_templates,
    scan_templates,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "templates"

VALID = "name: a/b\nversion: 1.0.0\ntemplate: Hi {name}\n"


def write(directory: Path, text: str, name: str = "t.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def positions(problems: list[FileProblem]) -> list[tuple[int, int]]:
    return [(problem.line, problem.column) for problem in problems]


# -- a valid file -----------------------------------------------------------------------------


def test_it_reads_one_template_version_with_its_metadata(tmp_path):
    path = write(
        tmp_path,
        "# a comment first\n"
        "name: persona/entrepreneur/hook-generator\n"
        "version: 1.2.0\n"
        "template: |\n"
        "  🔥 {hook_text}\n"
        "  👉 {cta} #trending #{hashtag}\n"
        "metadata:\n"
        "  author: content-team\n"
        "  performance_metrics: {engagement_rate: 0.06}\n",
    )

    specs, problems = load_template_file(path)

    assert problems == []
    assert specs == [
        TemplateSpec(
            path=str(path),
            line=2,
            name="persona/entrepreneur/hook-generator",
            version="1.2.0",
            template="🔥 {hook_text}\n👉 {cta} #trending #{hashtag}\n",
            metadata={"author": "content-team", "performance_metrics": {"engagement_rate": 0.06}},
            tests=[],
        )
    ]


def test_it_reads_a_list_of_versions_under_templates_with_the_line_of_each(tmp_path):
    path = write(
        tmp_path,
        "templates:\n"
        "  - name: a/b\n"
        "    version: 1.0.0\n"
        "    template: Hi {name}\n"
        "  - name: a/b\n"
        "    version: 1.1.0\n"
        "    template: Hi {name}, {greeting}\n"
        "    metadata:\n",
    )

    specs, problems = load_template_file(path)

    assert problems == []
    assert [(s.line, s.name, s.version, s.template, s.metadata) for s in specs] == [
        (2, "a/b", "1.0.0", "Hi {name}", {}),
        (5, "a/b", "1.1.0", "Hi {name}, {greeting}", {}),
    ]


def test_it_keeps_tests_as_written_and_registers_them_in_the_metadata(tmp_path):
    path = write(
        tmp_path,
        VALID + "tests:\n  - name: greets\n    values: {name: Ada}\n    expected: Hi Ada\n",
    )

    [spec], problems = load_template_file(path)

    assert problems == []
    assert spec.tests == [{"name": "greets", "values": {"name": "Ada"}, "expected": "Hi Ada"}]
    assert spec.version_metadata == {"test_cases": spec.tests}


def test_it_accepts_merge_keys_and_aliases_in_metadata(tmp_path):
    path = write(
        tmp_path,
        VALID + "metadata:\n  base: &base {author: alice}\n  <<: *base\n  purpose: greet\n",
    )

    [spec], problems = load_template_file(path)

    assert problems == []
    assert spec.metadata == {"base": {"author": "alice"}, "author": "alice", "purpose": "greet"}


def test_its_size_limits_are_the_ones_prompt_model_enforces():
    assert template_files.MAX_TEMPLATE_LENGTH == prompt_model.MAX_TEMPLATE_LENGTH
    assert template_files.MAX_METADATA_JSON_LENGTH == prompt_model.MAX_METADATA_JSON_LENGTH


# -- every kind of problem, where it is in the file -------------------------------------------

PROBLEMS = [
    pytest.param(
        "name: a/b\nversion: 1.0.0\ntemplate: [Hi\n",
        (4, 1),
        "invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow "
        "sequence that starts at line 3, column 11)",
        id="yaml-syntax",
    ),
    pytest.param(
        "name: a/b\n  version: 1.0.0\n",
        (2, 10),
        "invalid YAML: mapping values are not allowed here",
        id="yaml-bad-indentation",
    ),
    pytest.param(
        "name: a/b\ntemplate: Hi \x07\n",
        (2, 14),
        "character U+0007 is not allowed in YAML: special characters are not allowed; remove "
        "it, or write it as an escape in double quotes",
        id="control-character",
    ),
    pytest.param("", (1, 1), "the file is empty: a template file holds", id="empty"),
    pytest.param(
        "# only a comment\n", (1, 1), "the file is empty: a template file holds", id="comment"
    ),
    pytest.param(
        "- name: a/b\n",
        (1, 1),
        "found a list: a template file holds one template version (a mapping with name, "
        "version and template) or a list of them under 'templates:'",
        id="top-level-list",
    ),
    pytest.param("\nHello {name}\n", (2, 1), "found the text 'Hello {name}'", id="top-level-text"),
    pytest.param(
        "# comment\nname: a/b\n",
        (2, 1),
        "missing 'version' and 'template': every template version needs name, version and "
        "template (metadata and tests are optional)",
        id="missing-keys",
    ),
    pytest.param(
        VALID + "versoin: 1.0.1\n",
        (4, 1),
        "unknown key 'versoin' (did you mean 'version'?): the accepted keys are name, version, "
        "template, metadata, tests, model_config and response_format",
        id="unknown-key",
    ),
    pytest.param(
        VALID + "owner: me\n",
        (4, 1),
        "unknown key 'owner': the accepted keys are name, version, template, metadata, tests, "
        "model_config and response_format (anything else about the template goes under metadata)",
        id="unknown-key-no-guess",
    ),
    pytest.param(
        VALID + "1: x\n", (4, 1), "unknown key '1': the accepted keys are", id="number-key"
    ),
    pytest.param(
        VALID + "name: a/c\n",
        (4, 1),
        "key 'name' appears twice in this mapping (first at line 1, column 1): YAML would keep "
        "only the last one; keep one",
        id="key-twice",
    ),
    pytest.param(
        "name: 42\nversion: 1.0.0\ntemplate: Hi\n",
        (1, 7),
        "name must be text, e.g. persona/entrepreneur/hook-generator; found the number 42",
        id="name-not-text",
    ),
    pytest.param(
        "name: Hook Generator\nversion: 1.0.0\ntemplate: Hi\n",
        (1, 7),
        "template name 'Hook Generator': segment 1 'Hook Generator' is not accepted: segments "
        "are separated by '/' and use letters, digits, '-' and '_'",
        id="name-invalid",
    ),
    pytest.param(
        "name: a/b\nversion: 1.0\ntemplate: Hi\n",
        (2, 10),
        "version 1.0 is read by YAML as a number, not a version: write MAJOR.MINOR.PATCH, e.g. "
        'version: "1.0.0" (quoted, a version is always read as text)',
        id="version-float",
    ),
    pytest.param(
        "name: a/b\nversion: 2\ntemplate: Hi\n",
        (2, 10),
        "version 2 is read by YAML as a number, not a version: write MAJOR.MINOR.PATCH, e.g. "
        'version: "2.0.0"',
        id="version-int",
    ),
    pytest.param(
        "name: a/b\nversion: v1.0.0\ntemplate: Hi\n",
        (2, 10),
        "version 'v1.0.0' is not a semantic version: use MAJOR.MINOR.PATCH",
        id="version-invalid",
    ),
    pytest.param(
        "name: a/b\nversion:\ntemplate: Hi\n",
        (2, 9),
        "version must be MAJOR.MINOR.PATCH, e.g. version: 1.0.0; found nothing (null)",
        id="version-missing-value",
    ),
    pytest.param(
        "name: a/b\nversion: 1.0.0\ntemplate:\n  - Hi\n",
        (4, 3),
        "template must be text; found a list: write it as a block, 'template: |' followed by "
        "the indented text",
        id="template-not-text",
    ),
    pytest.param(
        "name: a/b\nversion: 1.0.0\ntemplate: ''\n",
        (3, 11),
        "template is empty: write the template text",
        id="template-empty",
    ),
    pytest.param(
        VALID + "metadata: [author]\n",
        (4, 11),
        "metadata must be a mapping of names to values, e.g. 'author: content-team' on the next "
        "line, indented; found a list",
        id="metadata-list",
    ),
    pytest.param(
        VALID + "metadata: content-team\n",
        (4, 11),
        "metadata must be a mapping of names to values, e.g. 'author: content-team' on the next "
        "line, indented; found the text 'content-team'",
        id="metadata-text",
    ),
    pytest.param(
        VALID + "metadata:\n  reviewed: 2024-05-14\n",
        (5, 13),
        "metadata.reviewed is 2024-05-14, which YAML reads as a date: quote it to keep it as "
        'text ("2024-05-14"); metadata holds JSON values only',
        id="metadata-date",
    ),
    pytest.param(
        VALID + "metadata:\n  yes: 1\n",
        (5, 3),
        "metadata key yes is read by YAML as the boolean true: metadata keys must be text; "
        "quote it, as in 'yes':",
        id="metadata-boolean-key",
    ),
    pytest.param(
        VALID + "metadata:\n  scores: [1, .inf]\n",
        (5, 15),
        "metadata.scores[1] is .inf (JSON has no infinity or NaN): metadata holds JSON values "
        "only: text, numbers, true/false, null, lists, mappings",
        id="metadata-infinity",
    ),
    pytest.param(
        VALID + "metadata:\n  blob: !!binary aGk=\n",
        (5, 9),
        "metadata.blob is binary data: metadata holds JSON values only",
        id="metadata-binary",
    ),
    pytest.param(
        VALID + "metadata:\n  tags: !!set {a, b}\n",
        (5, 9),
        "metadata.tags is tagged tag:yaml.org,2002:set: metadata holds JSON values only",
        id="metadata-set",
    ),
    pytest.param(
        VALID + "metadata:\n  loop: &loop [1, *loop]\n",
        (5, 9),
        "metadata.loop[1] contains itself (a YAML alias): JSON cannot hold that",
        id="metadata-recursive",
    ),
    pytest.param(
        VALID + "metadata:\n  when: !local 12:00\n",
        (5, 9),
        "invalid value: could not determine a constructor for the tag '!local'",
        id="unknown-tag",
    ),
    pytest.param(
        VALID + "tests: {values: {name: Ada}}\n",
        (4, 8),
        "tests must be a list ('- ...' items); found a mapping",
        id="tests-not-a-list",
    ),
    pytest.param(
        "templates:\n  name: a/b\n",
        (2, 3),
        "'templates' must be a list of template versions ('- name: ...'), found a mapping",
        id="templates-not-a-list",
    ),
    pytest.param(
        "templates: []\n",
        (1, 12),
        "'templates' is empty: list at least one version",
        id="templates-empty",
    ),
    pytest.param(
        "templates:\n  - Hi {name}\n",
        (2, 5),
        "templates item 1: found the text 'Hi {name}': a template version is a mapping with "
        "the keys name, version, template, metadata, tests, model_config and response_format",
        id="templates-item-not-a-mapping",
    ),
    pytest.param(
        "name: a/b\ntemplates:\n  - " + VALID.replace("\n", "\n    ").rstrip() + "\n",
        (1, 1),
        "key 'name' is not accepted next to 'templates': a template file holds one template "
        "version",
        id="keys-next-to-templates",
    ),
]


@pytest.mark.parametrize(("text", "position", "message"), PROBLEMS)
def test_it_reports_each_problem_at_its_place_in_the_file(tmp_path, text, position, message):
    path = write(tmp_path, text)

    _, problems = load_template_file(path)

    assert len(problems) == 1, problems
    [problem] = problems
    assert (problem.path, (problem.line, problem.column)) == (str(path), position)
    assert problem.message.startswith(message), problem.message


def test_it_reports_a_file_that_is_not_utf8_where_the_bad_byte_is(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes(b"name: a/b\nversion: 1.0.0\ntemplate: caf\xe9 {x}\n")

    specs, problems = load_template_file(path)

    assert specs == []
    assert [str(problem) for problem in problems] == [
        f"{path}:3:14: the file is not UTF-8 text: save it as UTF-8"
    ]


def test_it_reads_a_file_starting_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes("\ufeff".encode() + VALID.encode())

    specs, problems = load_template_file(path)

    assert (len(specs), problems) == (1, [])


def test_it_refuses_a_template_longer_than_mlflow_keeps(tmp_path):
    path = write(tmp_path, "name: a/b\nversion: 1.0.0\ntemplate: " + "x" * 100_001 + "\n")

    specs, problems = load_template_file(path)

    assert specs == []
    assert [str(p) for p in problems] == [
        f"{path}:3:11: template is 100,001 characters long: MLflow keeps at most 100,000"
    ]


def test_it_refuses_aliases_that_repeat_too_much_without_writing_them_out(tmp_path):
    # Each level doubles the one before: 2**40 leaves when written out, a few lines here.
    levels = ["  l0: &l0 [xxxxxxxxxx, xxxxxxxxxx]"]
    levels += [f"  l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 40)]
    path = write(tmp_path, VALID + "metadata:\n" + "\n".join(levels) + "\n")

    specs, problems = load_template_file(path)

    assert specs == []
    assert [(p.line, p.column) for p in problems] == [(43, 8)]  # the anchor &l38
    assert problems[0].message == (
        "YAML aliases repeat 4,398,046,511,018 nodes in this file, most of them through the "
        "value anchored here: at most 10,000 are accepted; write the repeated values out, or "
        "use fewer aliases"
    )


def test_it_refuses_metadata_longer_than_mlflow_keeps_without_writing_out_aliases(tmp_path):
    # Within the aliases' budget, but far over the metadata's size once written out.
    big = "x" * 30_000
    levels = [f"  l0: &l0 [{big}, {big}]"]
    levels += [f"  l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 5)]
    path = write(tmp_path, VALID + "metadata:\n" + "\n".join(levels) + "\n")

    specs, problems = load_template_file(path)

    assert specs == []
    assert [(p.line, p.column) for p in problems] == [(5, 3)]
    assert problems[0].message.startswith("metadata is far over 100,000 characters as JSON")


# -- errors inside the template text, mapped to the file --------------------------------------

TEMPLATE_ERRORS = [
    pytest.param(
        "template: |\n  Hello {name}\n    and {0} then {a b\n",
        [(5, 10), (5, 18)],
        [
            "template: field '{0}' is positional",
            "template: '{' is never closed",
        ],
        id="literal-block",
    ),
    pytest.param(
        "template: |  # a comment\n\n      Hi {name\n",
        [(5, 10)],
        ["template: '{' is never closed"],
        id="literal-block-deeper-indent-leading-blank-line",
    ),
    pytest.param(
        "template: |2-\n     Hi}\n",
        [(4, 8)],
        ["template: '}' has no matching '{'"],
        id="literal-block-indentation-indicator",
    ),
    pytest.param(
        "template: Hi {name\n",
        [(3, 14)],
        ["template: '{' is never closed"],
        id="plain",
    ),
    pytest.param(
        'template: "Hi {name} {}"\n',
        [(3, 22)],
        ["template: field has no variable name"],
        id="double-quoted",
    ),
    pytest.param(
        "template:\n    'Hi {name!x}'\n",
        [(4, 14)],
        ["template: conversion '!x' is not supported"],
        id="single-quoted-on-the-next-line",
    ),
    pytest.param(
        "template: 'it''s {x'\n",
        [(3, 11)],
        ["template, at line 1, column 6 of its text: '{' is never closed"],
        id="single-quoted-with-escape-before-the-error",
    ),
    pytest.param(
        'template: "\\tHi {name"\n',
        [(3, 11)],
        ["template, at line 1, column 5 of its text: '{' is never closed"],
        id="double-quoted-with-escape",
    ),
    pytest.param(
        'template: "Hi {name} }\\t"\n',
        [(3, 22)],
        ["template: '}' has no matching '{'"],
        id="double-quoted-with-escape-after-the-error",
    ),
    pytest.param(
        "template: >\n  Hi {name}\n  and {0}\n",
        [(3, 11)],
        ["template, at line 1, column 16 of its text: field '{0}' is positional"],
        id="folded-block",
    ),
    pytest.param(
        "template: Hi {name}\n  and {0}\n",
        [(3, 11)],
        ["template, at line 1, column 16 of its text: field '{0}' is positional"],
        id="plain-over-two-lines",
    ),
]


@pytest.mark.parametrize(("template", "expected_positions", "messages"), TEMPLATE_ERRORS)
def test_it_maps_template_errors_to_their_line_and_column_in_the_file(
    tmp_path, template, expected_positions, messages
):
    path = write(tmp_path, "name: a/b\nversion: 1.0.0\n" + template)

    specs, problems = load_template_file(path)

    assert specs == []
    assert positions(problems) == expected_positions
    for problem, message in zip(problems, messages, strict=True):
        assert problem.message.startswith(message), problem.message


def test_a_mapped_position_points_at_the_character_in_error(tmp_path):
    text = "name: a/b\nversion: 1.0.0\ntemplate: |\n    🔥 {hook_text}\n    👉 {cta #trending\n"
    path = write(tmp_path, text)

    _, [problem] = load_template_file(path)

    line = text.split("\n")[problem.line - 1]
    assert line[problem.column - 1 :].startswith("{cta")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(alphabet="ab{}[]!:.0 \n", min_size=1, max_size=40).filter(
        lambda text: text.strip() and not text.startswith("\n")
    ),
    indent=st.integers(min_value=1, max_value=8),
)
def test_every_error_in_a_literal_block_is_mapped_to_the_same_character_in_the_file(text, indent):
    chomping = "+" if text.endswith("\n") else "-"
    body = "".join(" " * indent + line if line else line for line in text.splitlines(True))
    source = f"name: a/b\nversion: 1.0.0\ntemplate: |{indent}{chomping}\n{body}"
    errors = validate_template(text)
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory), source)

        _, problems = load_template_file(path)

    assert yaml.safe_load(source)["template"] == text
    assert len(problems) == len(errors)
    file_lines, text_lines = source.split("\n"), text.split("\n")
    for problem, error in zip(problems, errors, strict=True):
        assert problem.message.startswith("template: ")
        written = file_lines[problem.line - 1][problem.column - 1 :]
        assert written.startswith(text_lines[error.line - 1][error.column - 1 :])


# -- several problems at once -----------------------------------------------------------------


def test_it_reports_every_problem_in_a_file_in_order(tmp_path):
    path = write(
        tmp_path,
        "name: Bad Name\n"
        "version: 1.0\n"
        "owner: me\n"
        "template: |\n"
        "  Hi {0}\n"
        "  {a b\n"
        "metadata:\n"
        "  released: 2024-05-14\n",
    )

    specs, problems = load_template_file(path)

    assert specs == []
    assert positions(problems) == [(1, 7), (2, 10), (3, 1), (5, 7), (6, 3), (8, 13)]
    assert [p.message.split(" ")[0] for p in problems] == [
        "template",
        "version",
        "unknown",
        "template:",
        "template:",
        "metadata.released",
    ]


def test_it_reports_every_entry_of_a_list_and_keeps_the_valid_ones(tmp_path):
    path = write(
        tmp_path,
        "templates:\n"
        "  - name: a/b\n"
        "    version: 1.0.0\n"
        "    template: Hi {name}\n"
        "  - name: a/b\n"
        "    version: 1.1\n"
        "    template: Hi {name\n"
        "  - name: a/c\n"
        "    version: 1.0.0\n",
    )

    specs, problems = load_template_file(path)

    assert [(s.name, s.version) for s in specs] == [("a/b", "1.0.0")]
    assert positions(problems) == [(6, 14), (7, 18), (8, 5)]


# -- versions defined twice -------------------------------------------------------------------


def test_it_reports_a_version_defined_twice_in_one_file_with_both_places(tmp_path):
    entry = "  - name: a/b\n    version: 1.0.0\n    template: Hi {name}\n"
    path = write(tmp_path, "templates:\n" + entry + entry)

    specs, problems = load_template_file(path)

    assert [s.line for s in specs] == [2]
    assert [str(p) for p in problems] == [
        f"{path}:5:5: a/b 1.0.0 is already defined at {path}:2:5: define each version once, "
        "and give a changed template a new version"
    ]


def test_it_reports_a_version_defined_in_two_files_with_both_places(tmp_path):
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, "# the same again\n" + VALID.replace("Hi", "Hello"), "b/c.yml")

    specs, problems = load_templates(tmp_path)

    assert [s.path for s in specs] == [str(tmp_path / "a.yaml")]
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b/c.yml'}:2:1: a/b 1.0.0 is already defined at {tmp_path / 'a.yaml'}:1:1: "
        "define each version once, and give a changed template a new version"
    ]


def test_it_reports_a_version_defined_twice_even_if_one_has_other_problems(tmp_path):
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID.replace("Hi {name}", "Hi {name") + "owner: me\n", "b.yaml")

    _, problems = load_templates(tmp_path)

    assert [(Path(p.path).name, p.line, p.message.split(" ")[0]) for p in problems] == [
        ("b.yaml", 1, "a/b"),
        ("b.yaml", 3, "template:"),
        ("b.yaml", 4, "unknown"),
    ]


# -- finding files ----------------------------------------------------------------------------


def test_it_finds_yaml_files_recursively_in_order_skipping_hidden_ones(tmp_path):
    for name in [
        "b.yml",
        "a/z.yaml",
        "a.yaml",
        "notes.md",
        ".hidden.yaml",
        ".git/config.yaml",
        "c/.cache/x.yaml",
        "c/d/e.YAML",
    ]:
        write(tmp_path, VALID, name)

    found = find_template_files(tmp_path)

    assert [str(path.relative_to(tmp_path)) for path in found] == [
        "a/z.yaml",
        "a.yaml",
        "b.yml",
        "c/d/e.YAML",
    ]


def test_it_takes_a_file_named_directly_whatever_its_extension(tmp_path):
    path = write(tmp_path, VALID, "template.txt")

    assert find_template_files(path) == [path]


def test_it_refuses_a_path_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        load_templates(tmp_path / "no-such-dir")


def test_a_scan_counts_files_and_versions_including_those_with_problems(tmp_path):
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, "templates:\n  - name: x/y\n  - name: x/z\n", "b.yaml")
    write(tmp_path, "{{{", "c.yaml")

    scan = scan_templates(tmp_path)

    assert (len(scan.files), scan.entries, len(scan.specs)) == (3, 3, 1)
    assert [(Path(p.path).name, p.line) for p in scan.problems] == [
        ("b.yaml", 2),
        ("b.yaml", 3),
        ("c.yaml", 1),
    ]


# -- the examples -----------------------------------------------------------------------------


def test_the_example_files_are_valid_and_accepted_by_prompt_model():
    specs, problems = load_templates(EXAMPLES)

    assert problems == []
    assert len(specs) >= 4
    for spec in specs:
        model = prompt_model.PromptModel(
            spec.name, spec.template, spec.version, metadata=spec.metadata
        )
        assert model.version == spec.version


def test_characters_no_store_keeps_are_refused_where_they_are_written(tmp_path):
    write(
        tmp_path,
        "name: a/b\nversion: 1.0.0\n"
        'template: "Hi {name}\\0"\n'
        "metadata:\n"
        '  author: "bo\\0b"\n'
        '  "k\\udc00": 1\n'
        "tests:\n"
        '  - values: {name: "x\\ud83d"}\n',
    )

    specs, problems = load_templates(tmp_path)

    assert specs == []
    shown = [(p.line, p.column, p.message) for p in problems]
    assert shown[0][:2] == (3, 11) and "column 10 of its text: NUL character" in shown[0][2]
    assert shown[1] == (
        5,
        11,
        "metadata.author holds a NUL character (U+0000) at character 3, which PostgreSQL "
        "cannot store: remove it",
    )
    assert (
        shown[2][:2] == (6, 3)
        and "a key in metadata holds a lone surrogate (U+DC00)" in shown[2][2]
    )
    assert shown[3][:2] == (8, 20) and "tests[0].values.name holds a lone surrogate" in shown[3][2]
