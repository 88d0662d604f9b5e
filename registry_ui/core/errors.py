"""Errors about the registry that callers can act on (no Django, no MLflow)."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class for registry failures."""


class RegistryUnavailableError(RegistryError):
    """A transient failure (refused connection, timeout, 5xx): the same call may succeed later."""


class RegistryRejectedError(RegistryError, ValueError):
    """MLflow refused the request as invalid: retrying the same call will not help."""


class BatchRegistrationError(RegistryError, ValueError):
    """A batch was refused before anything was written; .errors lists every problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        listed = "\n".join(f"- {error}" for error in self.errors)
        super().__init__(f"{len(self.errors)} problem(s), nothing was registered:\n{listed}")


class NameCollisionError(RegistryError, ValueError):
    """Two template names would map to the same registered model."""


class NotFoundError(RegistryError, LookupError):
    """No such template, version or stage holder in the registry."""


class ContentMismatchError(RegistryError, ValueError):
    """A version's text or metadata no longer matches the content hash it was registered with."""


class AmbiguousVersionError(RegistryError, LookupError):
    """A semantic version is registered more than once in MLflow: a pin cannot choose."""
