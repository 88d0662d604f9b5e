"""Template files cannot make a command build gigabytes: YAML aliases are counted on the
composed nodes before anything is built from them, and the file, with its aliases written
out, is size-checked as a whole, wherever the aliases stand (metadata, tests, anywhere)."""

from __future__ import annotations

from registry_ui.core.limits import InputLimits
from registry_ui.core.template_files import load_template_file
from tests.support.limited import run_limited

# 9 levels of 9 aliases each: about 387 million values once written out, in under 800 bytes.
ANCHORS = ["      a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"      a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)
]
BOMB_IN_TESTS = (
    "name: t/bomb\nversion: 1.0.0\ntemplate: '{a8}'\ntests:\n  - name: bomb\n    values:\n"
    + "\n".join(ANCHORS)
    + "\n"
)


def write(tmp_path, text: str, name: str = "bomb.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_alias_bomb_in_test_values_is_refused_within_bounded_memory_and_time(tmp_path):
    path = write(tmp_path, BOMB_IN_TESTS)
    assert path.stat().st_size < 800

    child = run_limited(
        f"""
        from registry_ui.core.template_files import scan_templates
        scan = scan_templates({str(path)!r})
        print(json.dumps([[p.line, p.column, p.message] for p in scan.problems]))
        """,
        memory_mb=300,
        cpu_seconds=20,
    )

    assert not child.ran_out, child.stderr[-2000:]
    [[line, column, message]] = child.result
    assert (line, column) == (14, 11)  # the anchor &a7, repeated 9 times by &a8
    assert message.startswith("YAML aliases repeat 490,329,036 nodes in this file")


def test_a_few_aliases_are_read_as_before(tmp_path):
    path = write(
        tmp_path,
        "templates:\n"
        "  - {name: t/a, version: 1.0.0, template: &t 'Hi {x}', metadata: &m {author: ann}}\n"
        "  - {name: t/a, version: 1.1.0, template: *t, metadata: {<<: *m, tags: [x]}}\n",
    )

    specs, problems = load_template_file(path)

    assert problems == []
    assert [(s.version, s.metadata) for s in specs] == [
        ("1.0.0", {"author": "ann"}),
        ("1.1.0", {"author": "ann", "tags": ["x"]}),
    ]


def test_the_alias_budget_is_the_one_given(tmp_path):
    path = write(tmp_path, BOMB_IN_TESTS.replace("a8", "a2").split("      a3")[0] + "\n")

    _, within = load_template_file(path, limits=InputLimits(yaml_alias_nodes=1_000))
    _, past = load_template_file(path, limits=InputLimits(yaml_alias_nodes=10))

    assert not any("aliases" in p.message for p in within)
    assert past[0].message.startswith("YAML aliases repeat")


def test_a_file_too_large_with_its_aliases_written_out_is_refused(tmp_path):
    words = ", ".join(["abcdefghij"] * 50)
    text = (
        "name: t/a\nversion: 1.0.0\ntemplate: 'Hi {x}'\nmetadata:\n"
        f"  a: &a [{words}]\n  b: [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    )
    path = write(tmp_path, text)

    _, problems = load_template_file(path, limits=InputLimits(template_file_size=5_000))

    assert [(p.line, p.column) for p in problems] == [(1, 1)]
    assert problems[0].message.startswith("with its YAML aliases written out, the file is ")
    assert problems[0].message.endswith("at most 5,000 are read; use fewer aliases")


def test_a_file_over_the_size_limit_is_not_read(tmp_path):
    path = write(tmp_path, "name: t/a\nversion: 1.0.0\ntemplate: '" + "x" * 200 + "'\n")

    _, problems = load_template_file(path, limits=InputLimits(template_file_size=100))

    assert [str(p) for p in problems] == [
        f"{path}:1:1: the file is over 100 bytes, the most that is read: split it"
    ]


def test_an_alias_inside_itself_is_counted_once_and_reported(tmp_path):
    path = write(tmp_path, "name: t/a\nversion: 1.0.0\ntemplate: 'Hi'\nmetadata:\n  a: &a [*a]\n")

    _, problems = load_template_file(path)

    assert [p.message for p in problems] == [
        "metadata.a[0] contains itself (a YAML alias): JSON cannot hold that"
    ]
