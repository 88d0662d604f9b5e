"""Filing a new version's draft, once NewVersionForm (registry_ui.web.prompts.forms) has
checked it as the author typed."""

from __future__ import annotations

from typing import Any

from registry_ui.core.errors import BatchRegistrationError
from registry_ui.core.policy import PolicyError
from registry_ui.core.semver import SemVer
from registry_ui.registry import NewVersion
from registry_ui.web import permissions
from registry_ui.web.models import AuditEvent, Batch
from registry_ui.web.operations import queue
from registry_ui.web.prompts import authorship


class DraftRefused(PolicyError):
    """Every reason the draft was not filed, each with the form field it is about (None: the
    registry's, about the draft as a whole)."""

    def __init__(self, problems: list[tuple[str | None, str]], message: str = ""):
        self.problems = problems
        super().__init__(message or "the version was not filed: fix the errors shown")


def version_file(
    user,
    *,
    name: str,
    version: str,
    template: str,
    metadata: dict[str, Any],
    reason: str,
    extra: dict[str, Any] | None = None,
) -> Batch:
    """File a one-version batch registering a draft; refused whole with every error.

    NewVersionForm checked it against the mirror first, so bad input never reaches MLflow.
    No MLflow call is made here (the page answers while MLflow is down or slow): the batch
    is checked against the mirror, and the worker checks it against MLflow before writing;
    a refusal then shows on the batch's page, where the editor sends the author.
    """
    permissions.require(user, "register_version", "registering a version")
    new = NewVersion(name, str(SemVer.parse(version)), template, metadata, extra=extra or {})
    try:
        batch = queue.batch_register(
            versions=[new],
            actor=user.get_username(),
            reason=reason.strip(),
            user=user,
            source=AuditEvent.Source.DASHBOARD,
            against_mirror=True,
        )
    except authorship.MetadataAuthorRefused as error:
        raise DraftRefused([("metadata", problem) for problem in error.errors]) from None
    except BatchRegistrationError as error:
        raise DraftRefused([(None, problem) for problem in error.errors]) from None
    except PolicyError as error:  # a CI account signed in: it registers only for a person
        raise DraftRefused([(None, str(error))]) from None
    if batch is None:
        filed = f"{name} {version} is registered already with this content: nothing to file"
        raise DraftRefused([("version", filed)])
    return batch
