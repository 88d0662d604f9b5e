from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from registry_ui.prompt_model import get_registry

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks"),
]


def write(tmp_path, name: str, version: str, template: str) -> None:
    path = tmp_path / f"{name.replace('/', '_')}-{version}.yaml"
    path.write_text(
        f"name: {name}\nversion: {version}\ntemplate: '{template}'\nmetadata:\n  author: alice\n"
    )


def test_it_registers_the_files_as_one_batch_and_a_rerun_does_nothing(
    tmp_path, unique_name, capsys, alice
):
    name = unique_name()
    write(tmp_path, name, "1.0.0", "Hi {who}")
    write(tmp_path, name, "1.1.0", "Hi {who} at {when}")

    call_command("register_templates", str(tmp_path), "--user", "alice")
    first = capsys.readouterr().out
    call_command("register_templates", str(tmp_path), "--user", "alice")
    second = capsys.readouterr().out

    assert "2 registered, 0 failed" in first
    assert "nothing to register: all 2 version(s) are in the registry already" in second
    records = get_registry().gateway.list_versions(name)
    assert [(r.version, r.registered_by) for r in records] == [
        ("1.0.0", "alice"),
        ("1.1.0", "alice"),
    ]


def test_it_registers_nothing_when_a_file_has_a_problem(tmp_path, unique_name, capsys, alice):
    good, bad = unique_name("good"), unique_name("bad")
    write(tmp_path, good, "1.0.0", "Hi {who}")
    write(tmp_path, bad, "1.0.0", "Hi {who")

    with pytest.raises(CommandError, match="nothing was registered"):
        call_command("register_templates", str(tmp_path), "--user", "alice")

    assert ":" in capsys.readouterr().out
    assert get_registry().gateway.list_versions(good) == []


def test_it_refuses_a_version_bumped_too_little_before_filing_anything(
    tmp_path, unique_name, alice
):
    name = unique_name()
    write(tmp_path, name, "1.0.0", "Hi {who}")
    call_command("register_templates", str(tmp_path), "--user", "alice")
    write(tmp_path, name, "1.0.1", "Hi {who} at {when}")

    with pytest.raises(CommandError, match=r"adds variable 'when': needs 1\.1\.0"):
        call_command("register_templates", str(tmp_path), "--user", "alice")
