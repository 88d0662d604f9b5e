""" "Use in code" on a version's page: the snippets load the very version shown, from a real
MLflow, whether through PromptModel, a plain MlflowClient or the stage's alias."""

from __future__ import annotations

import html
import re

import pytest

from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.prompts.mirror import mirror_template
from tests.support.mirror_rows import signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sqlite_registry_uri")]


def snippets(page) -> dict[str, str]:
    found = re.findall(r'<pre id="(code-[\w-]+)"><code>(.*?)</code></pre>', page.text, re.S)
    return {key: html.unescape(code) for key, code in found}


def test_every_snippet_loads_the_version_shown(unique_name, reader):
    name = unique_name()
    PromptModel.register_many(
        [
            PromptModel(name, "Hi {who}", "1.0.0", metadata={"author": "al"}),
            PromptModel(name, "Hello {who}", "1.1.0", metadata={"author": "al"}),
        ]
    )
    get_registry().promote(name, "1.1.0", "staging")
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")

    page = signed_in(reader).get(f"/templates/{name}/-/versions/1.1.0")

    code = snippets(page)
    assert set(code) == {"code-prompt-model", "code-mlflow-client", "code-alias"}
    assert 'data-copy="code-mlflow-client"' in page.text  # a copy button for each
    for key in ("code-prompt-model", "code-mlflow-client"):
        scope: dict = {}
        exec(code[key].replace('who="..."', 'who="Ada"'), scope)
        assert scope["text"] == "Hello Ada"
    scope = {}
    exec(code["code-alias"], scope)
    assert scope["template"] == "Hello {who}"
    assert f"models:/{name.replace('/', '.')}@staging" in code["code-alias"]


def test_a_version_holding_no_stage_has_no_alias_snippet(unique_name, reader):
    name = unique_name()
    PromptModel.register_many([PromptModel(name, "Hi {who}", "1.0.0", metadata={"author": "a"})])
    mirror_template(name, get_registry().gateway.list_versions(name), source="external")

    page = signed_in(reader).get(f"/templates/{name}/-/versions/1.0.0")

    assert set(snippets(page)) == {"code-prompt-model", "code-mlflow-client"}
