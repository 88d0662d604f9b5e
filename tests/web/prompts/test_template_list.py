"""The templates list: read from the mirror, searched as you type, filtered, in folders, paged."""

import pytest

from registry_ui.prompt_model import PromptModel
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import HTMX, signed_in, template, version

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [row.template.name for row in response.context["rows"]]


def test_it_asks_anonymous_visitors_to_sign_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_lists_templates_registered_in_mlflow_once_mirrored(
    sqlite_registry_uri, unique_name, reader
):
    name = unique_name("listed")
    v1, v2 = PromptModel.register_many(
        [PromptModel(name, "Hi {who}", "1.0.0"), PromptModel(name, "Hello {who}", "1.0.1")]
    )
    v1.promote_to_staging()
    v1.promote_to_production()
    v2.promote_to_staging()
    from registry_ui.prompt_model import get_registry

    mirror_template(name, get_registry().gateway.list_versions(name), source="external")
    client = signed_in(reader)

    response = client.get("/", {"q": name})

    [row] = response.context["rows"]
    assert (row.production.version, row.staging.version, row.version_count) == ("1.0.0", "1.0.1", 2)
    assert name.rsplit("/", 1)[-1] in response.text


def test_each_row_shows_the_version_in_each_stage_and_pending_requests(alice):
    hook = template("persona/hook")
    version(hook, "1.0.0", stage="production", was_production=True)
    version(hook, "1.1.0", stage="staging")
    version(hook, "1.2.0")
    version(hook, "1.3.0")
    filed = reviews.file_request(
        alice, template_name="persona/hook", version="1.2.0", target="staging", justification="j"
    )

    response = signed_in(alice).get("/")

    [row] = response.context["rows"]
    assert row.production.version == "1.0.0"
    assert row.staging.version == "1.1.0"
    assert row.newest_dev.version == "1.3.0"
    assert [r.pk for r in row.pending] == [filed.pk]
    assert f'href="/requests/{filed.pk}/"' in response.text
    assert "#" + str(filed.pk) + " 1.2.0 to staging" in response.text


def test_search_filters_by_part_of_a_name_and_htmx_gets_only_the_results(alice):
    for name in ("persona/hook", "persona/story", "system/error"):
        version(template(name), "1.0.0")
    client = signed_in(alice)

    page = client.get("/", {"q": "PERS"})
    fragment = client.get("/", {"q": "story"}, headers=HTMX)

    assert names(page) == ["persona/hook", "persona/story"]
    assert 'hx-trigger="input changed delay:300ms' in page.text
    assert '<label for="filter-q">' in page.text
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert ">story</a>" in fragment.text and ">hook</a>" not in fragment.text
    assert 'id="results-status" hx-swap-oob="innerHTML">1 template matches' in fragment.text


def test_it_filters_by_stage_author_and_tag(alice):
    a = template("a/one")
    version(a, "1.0.0", stage="production", author="ann", metadata={"tags": ["ai", "x"]})
    b = template("b/two")
    version(b, "1.0.0", stage="staging", author="ben", metadata={"tags": "ai-tools"})
    c = template("c/three")
    version(c, "1.0.0", author="ann", metadata={"tags": ["onboarding"]})
    client = signed_in(alice)

    assert names(client.get("/", {"stage": "production"})) == ["a/one"]
    assert names(client.get("/", {"author": "ann"})) == ["a/one", "c/three"]
    assert names(client.get("/", {"tag": "ai"})) == ["a/one"]
    assert names(client.get("/", {"tag": "ai-tools"})) == ["b/two"]
    assert names(client.get("/", {"author": "ann", "stage": "dev"})) == ["c/three"]


def test_a_bad_filter_says_what_is_accepted(alice):
    response = signed_in(alice).get("/", {"stage": "prod", "tag": '"><b>'})

    assert response.status_code == 400
    assert "stage &#x27;prod&#x27; is not one of: dev, staging, production, archived" in (
        response.text
    )
    assert "a tag is up to 60 letters" in response.text
    assert "<b>" not in response.text


def test_hierarchical_names_are_folders_with_breadcrumbs(alice):
    for name in ("persona/entrepreneur/hook", "persona/entrepreneur/story", "persona/x", "top"):
        version(template(name), "1.0.0")
    client = signed_in(alice)

    root = client.get("/")
    inside = client.get("/", {"folder": "persona/entrepreneur"})

    assert [f.folder for f in root.context["subfolders"]] == ["persona"]
    assert '<a class="folder" href="?folder=persona/entrepreneur">entrepreneur</a>' in root.text
    assert names(inside) == ["persona/entrepreneur/hook", "persona/entrepreneur/story"]
    assert '<a href="?folder=persona">persona</a>' in inside.text
    assert '<span aria-current="page">entrepreneur</span>' in inside.text


def test_it_pages_fifty_templates_at_a_time_keeping_the_filters(alice):
    for number in range(55):
        version(template(f"bulk/t{number:02d}"), "1.0.0")

    client = signed_in(alice)
    first = client.get("/", {"q": "bulk"})
    second = client.get("/", {"q": "bulk", "page": 2})

    assert len(first.context["rows"]) == 50
    assert names(second) == [f"bulk/t{n}" for n in range(50, 55)]
    assert 'href="?q=bulk&amp;page=2" rel="next"' in first.text


def test_empty_states_say_what_to_do_next(alice):
    client = signed_in(alice)

    nothing = client.get("/")
    no_match = client.get("/", {"q": "nothing-like-this"})

    assert "No templates yet" in nothing.text and 'href="/versions/new"' in nothing.text
    assert "No template matches these filters" in no_match.text
    assert "Clear the filters" in no_match.text
