"""The menu each role sees offers no link that answers 403, and an address that leads
nowhere gets our own 404 page."""

from __future__ import annotations

import pytest

from registry_ui.web.templatetags.navigation import nav_items_for
from tests.support.mirror_rows import signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (
            "alice",
            ["Templates", "Native prompts", "Requests", "Experiments", "Operations", "Audit log"],
        ),
        (
            "bob",
            ["Templates", "Native prompts", "Requests", "Experiments", "Operations", "Audit log"],
        ),
        (
            "dave",
            ["Templates", "Native prompts", "Requests", "Experiments", "Operations", "Audit log"],
        ),
        ("reader", ["Templates", "Native prompts", "Operations", "Audit log"]),
        (
            "root",
            ["Templates", "Native prompts", "Requests", "Experiments", "Operations", "Audit log"],
        ),
    ],
)
def test_each_role_sees_only_links_it_may_open(request, who, expected):
    user = request.getfixturevalue(who)

    items = nav_items_for(user, "/requests/")

    assert [item.label for item in items] == expected
    assert [item.label for item in items if item.current] == (
        ["Requests"] if "Requests" in expected else []
    )
    client = signed_in(user)
    for item in items:
        assert client.get(item.url).status_code == 200, item.label


def test_the_requests_page_says_why_an_action_is_not_offered(bob, alice, reader):
    reviewer = signed_in(bob).get("/requests/")
    author = signed_in(alice).get("/requests/", {"tab": "mine"})

    assert ">Request a promotion</a>" not in reviewer.text
    assert "Requesting promotions and releases is for authors; you approve them." in (reviewer.text)
    assert ">Roll production back</a>" not in author.text
    assert ">Request a promotion</a>" in author.text


def test_a_missing_page_gets_our_own_404(client, settings, reader):
    settings.DEBUG = False

    page = signed_in(reader).get("/templates/t/nope")

    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text
    assert "no template named &#x27;t/nope&#x27; in the mirror" in page.text
    assert 'href="/"' in page.text  # back to the list
