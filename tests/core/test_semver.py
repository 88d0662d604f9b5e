"""Semantic versions, and how much a change to a template must bump them."""

from __future__ import annotations

import pickle

import pytest

from registry_ui.core.semver import (
    Bump,
    BumpRequirement,
    InvalidVersionError,
    SemVer,
    VersionBumpError,
    check_bump,
    declared_bump,
    required_bump,
)
from registry_ui.core.template import TemplateValidationError

HOOK_V1 = "Check this: {text}"
HOOK_V2 = "🚀 Check this: {text} - {cta}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0", SemVer(0, 0, 0)), ("1.2.3", SemVer(1, 2, 3)), ("10.20.30", SemVer(10, 20, 30)),
     ("0.10.0", SemVer(0, 10, 0)), ("123456789.0.1", SemVer(123456789, 0, 1))],
)  # fmt: skip
def test_it_parses_strict_major_minor_patch(text, expected):
    assert SemVer.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1.0", "1", "1.0.0.0", "01.0.0", "1.02.0", "1.0.00", "v1.0.0", " 1.0.0", "1.0.0 ", "1.0.0-rc1",
     "1.0.0+build", "1.-1.0", "1..0", "", "a.b.c", "1.0.0\n", "1" * 70 + ".0.0",
     "\u0661.\u0662.\u0663"],  # Arabic-Indic digits match \d, not SemVer
)  # fmt: skip
def test_it_refuses_anything_else(text):
    with pytest.raises(InvalidVersionError):
        SemVer.parse(text)


def test_it_says_what_was_given_and_what_is_accepted():
    with pytest.raises(InvalidVersionError) as raised:
        SemVer.parse("1.0")

    assert str(raised.value) == (
        "'1.0' is not a semantic version: use MAJOR.MINOR.PATCH with whole numbers and no "
        "leading zeros, e.g. '1.0.0'"
    )


def test_it_refuses_a_version_that_is_not_text_with_the_same_explanation():
    with pytest.raises(InvalidVersionError, match=r"^1\.0 is not a semantic version"):
        SemVer.parse(1.0)


def test_it_orders_numerically_not_as_text():
    texts = ["1.10.0", "1.9.0", "0.1.0", "1.9.10", "1.9.2", "2.0.0"]

    assert sorted(texts, key=SemVer.sort_key) == ["0.1.0", "1.9.0", "1.9.2", "1.9.10", "1.10.0",
                                                  "2.0.0"]  # fmt: skip
    assert SemVer.parse("1.10.0") > SemVer.parse("1.9.0")
    assert max(map(SemVer.parse, texts)) == SemVer(2, 0, 0)


def test_it_prints_as_it_is_written():
    assert str(SemVer.parse("1.20.3")) == "1.20.3"


@pytest.mark.parametrize(
    ("bump", "expected"),
    [(Bump.MAJOR, "2.0.0"), (Bump.MINOR, "1.3.0"), (Bump.PATCH, "1.2.4"), (Bump.NONE, "1.2.3")],
)
def test_it_bumps_one_component_and_resets_the_ones_after_it(bump, expected):
    assert str(SemVer(1, 2, 3).bumped(bump)) == expected


def test_bumps_are_ordered_and_print_their_names():
    assert Bump.NONE < Bump.PATCH < Bump.MINOR < Bump.MAJOR
    assert [str(b) for b in Bump] == ["none", "patch", "minor", "major"]
    assert f"{Bump.MAJOR}" == "major"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [("1.2.3", "2.0.0", Bump.MAJOR), ("1.2.3", "1.3.0", Bump.MINOR), ("1.2.3", "1.2.4", Bump.PATCH),
     ("1.2.3", "1.3.7", Bump.MINOR), ("1.2.3", "1.2.3", Bump.NONE), ("1.2.3", "1.1.9", Bump.NONE)],
)  # fmt: skip
def test_it_tells_which_component_a_new_version_increases(old, new, expected):
    assert declared_bump(SemVer.parse(old), SemVer.parse(new)) is expected


# -- what a change requires -------------------------------------------------------------------


def test_removing_a_variable_requires_a_major_bump():
    assert required_bump(HOOK_V2, HOOK_V1) == BumpRequirement(
        Bump.MAJOR, ("removes variable 'cta'",)
    )


def test_adding_a_variable_requires_a_minor_bump():
    assert required_bump(HOOK_V1, HOOK_V2) == BumpRequirement(Bump.MINOR, ("adds variable 'cta'",))


@pytest.mark.parametrize(
    ("old", "new"),
    [("Check: {text}", "Look: {text}"), ("{n:.2f}", "{n:.3f}"), ("{n}", "{n!r}")],
)
def test_any_other_change_to_the_text_requires_a_patch(old, new):
    assert required_bump(old, new) == BumpRequirement(Bump.PATCH, ("changes the template text",))


def test_a_change_of_metadata_requires_a_patch():
    requirement = required_bump(HOOK_V1, HOOK_V1, {"author": "a"}, {"author": "b"})

    assert requirement == BumpRequirement(Bump.PATCH, ("changes the metadata",))


def test_metadata_values_that_differ_as_json_count_as_a_change():
    assert required_bump("x", "x", {"n": 1}, {"n": 1.0}).bump is Bump.PATCH
    assert required_bump("x", "x", {"n": 1}, {"n": True}).bump is Bump.PATCH


def test_nothing_changed_requires_nothing():
    assert required_bump(HOOK_V1, HOOK_V1, None, {}) == BumpRequirement(Bump.NONE, ())


def test_it_gives_every_reason_with_the_largest_bump():
    requirement = required_bump("{a} {b}", "{a} {c} {d}", {"x": 1}, {"x": 2})

    assert requirement.bump is Bump.MAJOR
    assert requirement.reasons == (
        "removes variable 'b'",
        "adds variable 'c'",
        "adds variable 'd'",
        "changes the metadata",
    )


def test_it_refuses_an_invalid_template():
    with pytest.raises(TemplateValidationError):
        required_bump("{a}", "{a")


# -- checking a declared version --------------------------------------------------------------


def test_it_accepts_a_bump_as_large_as_the_change_needs_or_larger():
    assert check_bump("1.0.0", HOOK_V2, "2.0.0", HOOK_V1).bump is Bump.MAJOR
    assert check_bump("1.0.0", HOOK_V1, "1.1.0", HOOK_V2).bump is Bump.MINOR
    assert check_bump("1.0.0", HOOK_V1, "2.0.0", HOOK_V2).bump is Bump.MINOR
    assert check_bump(SemVer(1, 0, 0), HOOK_V1, SemVer(1, 0, 1), HOOK_V1).bump is Bump.NONE


def test_it_refuses_a_bump_too_small_and_names_the_version_that_would_do():
    with pytest.raises(VersionBumpError) as raised:
        check_bump("1.0.0", HOOK_V2, "1.1.0", HOOK_V1)

    assert str(raised.value) == "removes variable 'cta': needs 2.0.0 or later"
    assert raised.value.required is Bump.MAJOR
    assert raised.value.minimum == SemVer(2, 0, 0)


def test_it_names_only_the_reasons_the_declared_bump_does_not_cover():
    with pytest.raises(VersionBumpError) as raised:
        check_bump("1.4.2", "{a} {b}", "1.5.0", "{a} {c}", {"x": 1}, {"x": 2})

    assert str(raised.value) == "removes variable 'b': needs 2.0.0 or later"


def test_it_joins_several_reasons():
    with pytest.raises(VersionBumpError) as raised:
        check_bump("1.4.2", "{a}", "1.4.3", "{a} {b} {c}")

    assert str(raised.value) == "adds variable 'b'; adds variable 'c': needs 1.5.0 or later"


def test_it_refuses_a_version_not_greater_than_the_latest():
    with pytest.raises(VersionBumpError) as raised:
        check_bump("1.2.0", HOOK_V1, "1.0.0", "Look: {text}")

    assert str(raised.value) == (
        "version 1.0.0 is not greater than the latest version 1.2.0: use 1.2.1 or later"
    )
    assert raised.value.minimum == SemVer(1, 2, 1)


def test_it_suggests_the_version_the_change_needs_when_the_number_went_down():
    with pytest.raises(VersionBumpError, match=r"use 2\.0\.0 or later$"):
        check_bump("1.2.0", HOOK_V2, "1.2.0", HOOK_V1)


def test_a_bump_error_survives_pickling():
    error = VersionBumpError("needs 2.0.0", required=Bump.MAJOR, minimum=SemVer(2, 0, 0))

    copy = pickle.loads(pickle.dumps(error))

    assert (str(copy), copy.required, copy.minimum) == ("needs 2.0.0", Bump.MAJOR, SemVer(2, 0, 0))
