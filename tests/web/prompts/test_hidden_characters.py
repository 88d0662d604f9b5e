"""Trojan Source: bidirectional controls and zero-width characters in template text are never
sent to a browser as they are. Every page that shows template text (version, diff, request,
preview, check results) shows each as a <U+202E> badge under a warning banner; the editor and
validate_templates warn at line:column, and refuse them when the setting says so."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from registry_ui.core.limits import InputLimits
from registry_ui.web.reviews import services as reviews
from tests.support.mirror_rows import HTMX, signed_in, template, version

pytestmark = pytest.mark.django_db
RLO, LRI, PDI, ZWSP = "\u202e", "\u2066", "\u2069", "\u200b"
# A browser shows it as "== {user}  admin"; the model is sent "admin" before "{user}".
TROJAN = f"== {RLO}{LRI} admin {PDI}{LRI}{ZWSP}{{user}}{ZWSP}"
HIDDEN = (RLO, LRI, PDI, ZWSP)
BADGE = '<span class="hidden-char" title="RIGHT-TO-LEFT OVERRIDE">&lt;U+202E&gt;</span>'
BANNER = "<strong>Hidden characters</strong>: this text holds 4 that change the order"


def shows_no_hidden_character(page) -> bool:
    return not any(char in page.text for char in HIDDEN)


def test_the_version_page_and_its_preview_show_them_as_badges(reader):
    version(template("t/trojan"), "1.0.0", TROJAN)

    page = signed_in(reader).get("/templates/t/trojan/-/versions/1.0.0", {"v.user": "ann"})

    assert page.status_code == 200
    assert shows_no_hidden_character(page)
    assert page.text.count(BADGE) == 2  # the text, and the preview's output
    assert page.text.count(BANNER) == 2
    assert '&lt;U+200B&gt;</span>ann<span class="hidden-char"' in page.text


def test_the_diff_shows_them_as_badges_on_both_layouts(reader):
    row = template("t/trojan-diff")
    version(row, "1.0.0", "== {user} admin")
    version(row, "1.1.0", TROJAN)
    client = signed_in(reader)

    for layout in ("side", "inline"):
        page = client.get(
            "/templates/t/trojan-diff/-/diff", {"from": "1.0.0", "to": "1.1.0", "view": layout}
        )

        assert page.status_code == 200
        assert shows_no_hidden_character(page)
        assert BADGE in page.text
        assert BANNER in page.text


def test_the_request_page_shows_them_as_badges(erin, bob):
    version(template("t/trojan-request"), "1.0.0", TROJAN)
    request = reviews.file_request(
        erin, template_name="t/trojan-request", version="1.0.0", target="staging",
        justification="ready",
    )  # fmt: skip

    page = signed_in(bob).get(f"/requests/{request.pk}/")

    assert shows_no_hidden_character(page)
    assert BADGE in page.text
    assert BANNER in page.text


def test_the_check_results_show_the_rendered_text_with_badges(reader):
    case = {"name": "renders", "values": {"user": "ann"}, "contains": "ann"}
    row = version(template("t/trojan-checks"), "1.0.0", TROJAN, metadata={"test_cases": [case]})
    from registry_ui.web.checks import services as checks

    checks.run_checks(row, trigger="on_demand", actor="test")

    page = signed_in(reader).get("/templates/t/trojan-checks/-/versions/1.0.0")

    assert shows_no_hidden_character(page)
    assert page.text.count(BADGE) == 2  # the text, and the case's rendered text


def test_the_editor_warns_at_line_and_column_and_files_nothing_hidden_unseen(alice):
    draft = {"name": "t/new", "version": "1.0.0", "metadata": "{}", "template": TROJAN}

    check = signed_in(alice).post("/versions/validate", draft, headers=HTMX)

    assert "<h3>Hidden characters in the template text</h3>" in check.text
    assert "line 1, column 4</span> (1:4): U+202E RIGHT-TO-LEFT OVERRIDE at 1:4" in check.text
    assert "✓ No problems found" in check.text  # a warning: the author may mean it


def test_the_editor_refuses_them_when_the_setting_says_so(alice, settings):
    settings.INPUT_LIMITS = InputLimits(refuse_hidden_characters=True)
    draft = {"name": "t/new", "version": "1.0.0", "metadata": "{}", "template": TROJAN}

    check = signed_in(alice).post("/versions/validate", draft, headers=HTMX)

    assert "✗ 6 problems" in check.text
    assert "line 1, column 4</span> (1:4): U+202E RIGHT-TO-LEFT OVERRIDE at 1:4" in check.text


def test_validate_templates_warns_and_passes_unless_the_setting_refuses(tmp_path, capsys, settings):
    path = tmp_path / "t.yaml"
    path.write_text(f"name: t/a\nversion: 1.0.0\ntemplate: '{TROJAN}'\n", encoding="utf-8")

    call_command("validate_templates", str(path))
    out = capsys.readouterr().out

    assert ":3:15: warning: template: U+202E RIGHT-TO-LEFT OVERRIDE" in out
    assert out.rstrip().endswith("all valid")
    settings.INPUT_LIMITS = InputLimits(refuse_hidden_characters=True)
    with pytest.raises(Exception, match="6 problems"):
        call_command("validate_templates", str(path))
