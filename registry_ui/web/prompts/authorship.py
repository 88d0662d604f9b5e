"""Who wrote a version, as accounts (docs/security.md, "Authorship").

The four-eyes rule refuses a version's authors as its reviewers, so its authors are
accounts, not free text: the account that registered it; when that was a CI account, the
person who asked for it; and the ``author`` its metadata names, resolved to an account
through the usernames and the administrators' alias map (settings.AUTHOR_ALIASES). The pure
rules are registry_ui.core.authors.

- Registration (``registration_authors``, from operations.queue.batch_register) refuses a
  metadata author naming no author's account, several names in one, a CI account
  registering without the person it acts for, and a person claiming to act for another.
- The mirror (``bind_authors``) stores each new version's resolved author; a version
  written into MLflow from outside keeps an author naming no account as written, marked
  unresolved, and every name in it is still refused as a reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from registry_ui.core.authors import (
    METADATA_KEY,
    SEPARATORS,
    AuthorError,
    Directory,
    normalise,
    parse_aliases,
    refused_names,
    written_author,
)
from registry_ui.core.errors import BatchRegistrationError
from registry_ui.core.policy import PolicyError
from registry_ui.registry import NewVersion
from registry_ui.web import permissions

ALIAS_SETTING = "REGISTRY_UI_AUTHOR_ALIASES"


class MetadataAuthorRefused(BatchRegistrationError):
    """Versions whose metadata author is refused; .errors names each version and why."""


def _aliases() -> dict[str, str]:
    return parse_aliases(settings.AUTHOR_ALIASES)


def _accounts_named(names: Iterable[str], aliases: dict[str, str]):
    """The accounts these normalised names (or their aliases) could stand for: one query."""
    wanted = set(names)
    wanted |= {aliases[name].casefold() for name in wanted if name in aliases}
    if not wanted:
        return get_user_model().objects.none()
    field = get_user_model().USERNAME_FIELD
    return (
        get_user_model()
        .objects.annotate(folded=Lower(field))
        .filter(folded__in=sorted(n.lower() for n in wanted))
    )


def directory_for(names: Iterable[str]) -> Directory:
    aliases = _aliases()
    field = get_user_model().USERNAME_FIELD
    usernames = _accounts_named(names, aliases).values_list(field, flat=True)
    return Directory(list(usernames), aliases)


def bind_authors(rows: Sequence) -> None:
    """Set new mirror rows' author from their metadata: the account it names, else the name
    as written, marked unresolved. One query for all the rows (a first sync writes
    thousands)."""
    names = {name for row in rows if (name := _normalised_or_none(row.metadata))}
    directory = directory_for(names) if names else Directory(())
    for row in rows:
        written = written_author(row.metadata, directory)
        row.author = written.name if written else ""
        row.author_unresolved = bool(written and not written.resolved)


def _normalised_or_none(metadata) -> str | None:
    try:
        return normalise(metadata.get(METADATA_KEY))
    except AuthorError:
        return None


def refused_reviewers(version) -> set[str]:
    """Every name that may not approve this version: its registrant, the person a CI
    account registered it for, and its author. Each as spelled (the CHECK on approvals
    compares the username as spelled) and normalised, every part of one holding several
    names (an outside version's, written by anyone) included: on the safe side."""
    names: set[str] = set()
    for written in (version.registered_by, version.requested_by, version.author):
        if not written or not written.strip():
            continue
        names |= refused_names(written)
        if not set(written) & SEPARATORS:
            names.add(written.strip())
    return names


# -- registration ----------------------------------------------------------------------------


def _is_author_account(user) -> bool:
    return (
        user.is_active
        and permissions.has(user, "register_version")
        and not permissions.is_ci_account(user)
    )


Authors = dict[tuple[str, str], str]  # (template, version) -> the metadata author's username


def registration_authors(
    user, *, on_behalf_of: str, versions: Sequence[NewVersion]
) -> tuple[str, Authors]:
    """Check who registers these versions and whom their metadata names as author; returns
    the person a CI account acts for ("" when a person registers) and each version's
    metadata author as a username (versions naming none are left out).

    Refused (PolicyError, or BatchRegistrationError listing every version at fault): a CI
    account without the person who asked; a person naming someone to act for; a person
    who is not an active author; a metadata author that is not one name, or names no
    author's account.
    """
    username = user.get_username()
    requested_by = ""
    if permissions.is_ci_account(user):
        if not on_behalf_of.strip():
            raise PolicyError(
                f"{username} is a CI account: name the person who asked for these versions "
                "(register_templates --on-behalf-of USERNAME); they count as an author"
            )
        requested_by = _person(on_behalf_of)
    elif on_behalf_of.strip():
        raise PolicyError(
            f"only a CI account (the ci group) registers on behalf of someone: {username} "
            f"is a person and is the author of what it registers; drop --on-behalf-of"
        )
    authors, errors = _metadata_authors(versions)
    if errors:
        raise MetadataAuthorRefused(errors)
    return requested_by, authors


def _person(written: str) -> str:
    """The username of the person a CI account acts for: an active author, not a CI account."""
    try:
        name = normalise(written, where="--on-behalf-of")
    except AuthorError as error:
        raise PolicyError(str(error)) from None
    found = list(_accounts_named([name], {}))  # the username itself: no alias here
    account = next((u for u in found if u.get_username().casefold() == name), None)
    if account is None or not _is_author_account(account):
        raise PolicyError(
            f"--on-behalf-of {written.strip()[:60]!r}: no active author has that username; "
            "name the person who asked, an account holding the register_version permission "
            "(the authors group) that is not a CI account"
        )
    return account.get_username()


def _metadata_authors(versions: Sequence[NewVersion]) -> tuple[Authors, list[str]]:
    written: Authors = {}
    resolved: Authors = {}
    errors = []
    for new in versions:
        value = new.metadata.get(METADATA_KEY)
        if value is None:
            continue
        where = f"{new.name} {new.version}: metadata {METADATA_KEY}"
        try:
            written[(new.name, new.version)] = normalise(value, where=where)
        except AuthorError as error:
            errors.append(str(error))
    aliases = _aliases()
    accounts = {
        u.get_username(): u
        for u in _accounts_named(written.values(), aliases)
        if _is_author_account(u)
    }
    directory = Directory(list(accounts), aliases)
    for (name, version), author in written.items():
        username = directory.resolve(author)
        if username is not None:
            resolved[(name, version)] = username
        else:
            errors.append(
                f"{name} {version}: metadata {METADATA_KEY} {author!r} names no author's "
                "account: write the username of the person who wrote it (an active account "
                "holding register_version, not a CI account), or ask an administrator to map "
                f"the name to a username in {ALIAS_SETTING}"
            )
    return resolved, errors
