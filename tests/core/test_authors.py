"""The rules for author names written in a version's metadata (registry_ui.core.authors)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_ui.core.authors import (
    AuthorError,
    Directory,
    WrittenAuthor,
    normalise,
    parse_aliases,
    refused_names,
    written_author,
)


@pytest.mark.parametrize(
    ("written", "normalised"),
    [(" bob ", "bob"), ("Bob", "bob"), ("\tBOB\n", "bob"), ("Robert  Smith", "robert smith")],
)
def test_it_trims_collapses_and_folds_a_name(written, normalised):
    assert normalise(written) == normalised


@pytest.mark.parametrize("written", ["bob,carol", "bob;carol", "bob | carol", "bob/carol", "a&b"])
def test_it_refuses_several_names_in_one(written):
    with pytest.raises(AuthorError, match="name one account"):
        normalise(written)


@pytest.mark.parametrize("written", ["", "   ", "\n"])
def test_it_refuses_an_empty_name(written):
    with pytest.raises(AuthorError, match="is empty"):
        normalise(written)


@pytest.mark.parametrize("written", [None, 3, ["bob"], {"name": "bob"}])
def test_it_refuses_a_name_that_is_not_text(written):
    with pytest.raises(AuthorError, match="one name as text"):
        normalise(written)


def test_a_refusal_says_where_what_and_what_is_accepted():
    with pytest.raises(AuthorError) as refused:
        normalise("bob,carol", where="t 1.0.0: metadata author")

    assert str(refused.value).startswith("t 1.0.0: metadata author 'bob,carol' holds ','")
    assert "one author per version" in str(refused.value)


def test_a_username_resolves_in_any_case_and_an_alias_to_its_account():
    directory = Directory(["bob", "Alice"], parse_aliases('{"Robert": "bob", "R. Smith": "BOB"}'))

    assert directory.resolve("bob") == "bob"
    assert directory.resolve("alice") == "Alice"
    assert directory.resolve("robert") == "bob"
    assert directory.resolve("r. smith") == "bob"
    assert directory.resolve("carol") is None


def test_an_alias_to_an_account_that_does_not_exist_resolves_to_nothing():
    assert Directory(["bob"], {"robert": "rob"}).resolve("robert") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"Robert": "bob"', "not JSON"),
        ('["bob"]', "JSON object of name to username"),
        ('{"bob,carol": "bob"}', "holds ','"),
        ('{"Robert": 3}', "must map to a username"),
    ],
)
def test_it_refuses_a_malformed_alias_map(raw, message):
    with pytest.raises(AuthorError, match=message):
        parse_aliases(raw)


def test_an_empty_alias_setting_is_no_alias():
    assert parse_aliases("") == {} == parse_aliases(None)


def test_a_stored_author_naming_an_account_is_that_account():
    directory = Directory(["bob"])

    assert written_author({"author": " Bob "}, directory) == WrittenAuthor("bob", resolved=True)
    assert written_author({}, directory) is None
    assert written_author({"author": ""}, directory) is None


def test_a_stored_author_naming_no_account_is_kept_as_written_unresolved():
    directory = Directory(["bob"])

    assert written_author({"author": "Robert"}, directory) == WrittenAuthor("robert", False)
    assert written_author({"author": "bob, carol"}, directory) == WrittenAuthor(
        "bob, carol", resolved=False
    )


def test_a_stored_author_mapped_to_a_username_with_no_account_keeps_that_username():
    directory = Directory(["carol"], {"robert": "bob"})

    assert written_author({"author": "Robert"}, directory) == WrittenAuthor("bob", False)


def test_every_part_of_an_unresolved_author_is_refused_as_a_reviewer():
    assert refused_names(" Bob ") == {"bob"}
    assert refused_names("bob,carol") == {"bob", "carol"}
    assert refused_names("Bob; Carol / Dan") == {"bob", "carol", "dan"}


@given(st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), min_size=1, max_size=4))
def test_a_reviewer_named_anywhere_in_an_author_field_is_refused(names):
    written = " , ".join(f" {name.upper()} " for name in names)

    assert set(names) <= refused_names(written)
