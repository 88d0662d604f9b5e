"""Hidden characters in template text: each bidirectional control and invisible character is
found with its line and column, emoji sequences are left alone, and template files warn about
them where they are written (or refuse them, when the limits say so)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from registry_ui.core.hidden_text import (
    BIDI_CONTROLS,
    INVISIBLE,
    hidden_character_warnings,
    hidden_characters,
    pieces,
)
from registry_ui.core.limits import InputLimits
from registry_ui.core.template_files import load_template_file, scan_templates

RLO, LRI, PDI, ZWSP = "\u202e", "\u2066", "\u2069", "\u200b"
# Shown as "== {user}  admin" by a browser; the model gets "admin" before "{user}".
TROJAN = f"== {RLO}{LRI} admin {PDI}{LRI}{ZWSP}{{user}}{ZWSP}"


def test_it_finds_each_bidirectional_control_and_zero_width_character_where_it_is():
    found = hidden_characters("Hello\n" + TROJAN)

    assert [(h.codepoint, h.line, h.column) for h in found] == [
        ("U+202E", 2, 4),
        ("U+2066", 2, 5),
        ("U+2069", 2, 13),
        ("U+2066", 2, 14),
        ("U+200B", 2, 15),
        ("U+200B", 2, 22),
    ]


def test_each_warning_says_what_the_character_does_and_where():
    warnings = hidden_character_warnings(TROJAN)

    assert warnings[0].code == "hidden-character"
    assert str(warnings[0]) == (
        "1:4: U+202E RIGHT-TO-LEFT OVERRIDE at 1:4 changes the order in which the text around "
        "it is shown, so what a reader sees is not what the model is sent: remove it unless it "
        "is meant (pages show it as a badge)"
    )
    assert "ZERO WIDTH SPACE at 1:15 cannot be seen" in str(warnings[4])


def test_emoji_joined_with_zero_width_joiners_and_tag_flags_are_left_alone():
    text = "👩\u200d💻 ❤️\u200d🔥 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"

    assert hidden_characters(text) == []
    assert [h.codepoint for h in hidden_characters("a\u200db \U000e0041")] == ["U+200D", "U+E0041"]


@given(st.text(st.one_of(st.characters(), st.sampled_from(sorted(BIDI_CONTROLS | INVISIBLE)))))
def test_the_pieces_join_back_to_the_text(text):
    joined = "".join(plain or hidden.char for plain, hidden in pieces(text))

    assert joined == text


def test_a_template_file_warns_where_the_character_is_written(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(f"name: t/a\nversion: 1.0.0\ntemplate: |\n  Hi\n  {TROJAN}\n", "utf-8")

    scan = scan_templates(path)

    assert scan.problems == []
    assert len(scan.specs) == 1
    assert str(scan.warnings[0]) == (
        f"{path}:5:6: warning: template: U+202E RIGHT-TO-LEFT OVERRIDE changes the order in "
        "which the text around it is shown, so what a reader sees is not what the model is "
        "sent: remove it unless it is meant (pages show it as a badge)"
    )


def test_a_template_file_refuses_them_when_the_limits_say_so(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(f"name: t/a\nversion: 1.0.0\ntemplate: '{TROJAN}'\n", "utf-8")

    specs, problems = load_template_file(path, limits=InputLimits(refuse_hidden_characters=True))

    assert specs == []
    assert [(p.line, p.column) for p in problems][:2] == [(3, 15), (3, 16)]
    assert problems[0].message.startswith("template: U+202E RIGHT-TO-LEFT OVERRIDE")
