"""Who wrote a version, as accounts: the rules for the names written in a version's metadata.

A version's authors are accounts, never free text: the account that registered it, the
person a CI account registered it for, and the ``author`` named in its metadata resolved to
an account. The four-eyes rule refuses every one of them as a reviewer. This module holds
the pure rules: normalising a written name, resolving it against the usernames and an
explicit alias map, and (for names that resolve to nothing, as in versions written into
MLflow from outside) which names to refuse anyway. Pure Python: registry_ui.web feeds it
the accounts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Characters that join several names in one: refused, so whoever writes the metadata cannot
# name extra people (and so choose who may not review). One author per version.
SEPARATORS = frozenset(",;|/&+\n\r\t")

METADATA_KEY = "author"


class AuthorError(ValueError):
    """A written author name refused; the message says what was wrong and what is accepted."""


def normalise(name: object, *, where: str = "the metadata author") -> str:
    """The comparable form of one written name: spaces trimmed and collapsed, case folded.

    Refused: anything but text, an empty name, and several names in one (a separator).
    """
    if not isinstance(name, str):
        raise AuthorError(
            f"{where} must be one name as text (a username such as 'alice'), "
            f"not {type(name).__name__}"
        )
    text = " ".join(name.split()).casefold()
    if not text:
        raise AuthorError(f"{where} is empty: write the username of the person who wrote it")
    found = sorted(c for c in set(text) if c in SEPARATORS or not c.isprintable())
    if found:
        shown = " ".join(repr(c) for c in found)
        raise AuthorError(
            f"{where} {name.strip()[:60]!r} holds {shown}: name one account (one author per "
            "version; whoever registers it and whoever asked for it count as authors too)"
        )
    return text


def parse_aliases(raw: str | Mapping[str, str] | None) -> dict[str, str]:
    """The alias map (written name -> username) from its JSON setting, keys normalised.

    ``{"Robert": "bob", "R. Smith": "bob"}``: a version whose metadata says ``author:
    Robert`` is bob's. Refused with the key at fault: not an object, a key that is not one
    name, a username that is not text.
    """
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise AuthorError(
                f"the author aliases are not JSON ({error.msg} at character {error.pos}): "
                'write an object of name to username, e.g. {"Robert": "bob"}'
            ) from None
    if not isinstance(raw, Mapping):
        raise AuthorError(
            'the author aliases must be a JSON object of name to username, e.g. {"Robert": "bob"}'
        )
    aliases: dict[str, str] = {}
    for name, username in raw.items():
        key = normalise(name, where=f"the author alias {name!r}")
        if not isinstance(username, str) or not username.strip():
            raise AuthorError(f"the author alias {name!r} must map to a username (text)")
        aliases[key] = username.strip()
    return aliases


@dataclass(frozen=True)
class Directory:
    """The accounts a written name may resolve to, and the administrators' alias map."""

    usernames: Iterable[str]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_folded: dict[str, str] = {}
        for username in self.usernames:
            by_folded.setdefault(username.strip().casefold(), username)
        object.__setattr__(self, "_by_folded", by_folded)

    def resolve(self, name: str) -> str | None:
        """The username a normalised name stands for: an alias first (an administrator's
        explicit choice), else the username written in another case; None for no account."""
        by_folded: dict[str, str] = self._by_folded  # type: ignore[attr-defined]
        if name in self.aliases:
            target = self.aliases[name]
            return by_folded.get(target.casefold())
        return by_folded.get(name)


@dataclass(frozen=True)
class WrittenAuthor:
    """The metadata's author as the mirror keeps it: the account, or the name as written
    (normalised when it could be) when it names no account."""

    name: str  # the username, else the written name
    resolved: bool


def written_author(metadata: Mapping[str, object], directory: Directory) -> WrittenAuthor | None:
    """What a stored version's metadata says about its author (None: it names nobody).

    Never refuses: a version written into MLflow from outside is kept whatever its metadata
    says, and an author name that resolves to no account is kept unresolved.
    """
    value = metadata.get(METADATA_KEY)
    if value is None or value == "":
        return None
    try:
        name = normalise(value)
    except AuthorError:
        return WrittenAuthor(" ".join(str(value).split())[:150], resolved=False)
    username = directory.resolve(name)
    if username is None:
        # Mapped to a username with no account (yet): keep that username, so whoever
        # later holds it is refused too.
        return WrittenAuthor(directory.aliases.get(name, name)[:150], resolved=False)
    return WrittenAuthor(username, resolved=True)


def refused_names(written: str) -> set[str]:
    """Every name to refuse as a reviewer for a stored author field, erring on the safe side.

    A resolved author is one username. An unresolved one (from outside, or stored before
    names were checked) may be " bob " or "bob,carol": each part, normalised, is refused,
    so a reviewer whose username matches any of them cannot approve.
    """
    parts = [written]
    for separator in SEPARATORS:
        parts = [piece for part in parts for piece in part.split(separator)]
    return {" ".join(part.split()).casefold() for part in parts if part.strip()}
