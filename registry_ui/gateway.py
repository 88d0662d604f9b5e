"""The MLflow gateway: the only module of registry_ui that imports mlflow.

It speaks MLflow's registry API and translates between MLflow objects and our plain
records (registry_ui.core.records). How a template lives in MLflow is a contract other
programs rely on; it is written down in docs/mlflow-contract.md and implemented here:

- one registered model per template, named by registry_ui.core.names (the original
  hierarchical name is also in the tag ``registry_ui.template_name``);
- one model version per semantic version, with the template text, semver, metadata
  (JSON), content hash and operation id in tags; the version's source points into an
  MLflow run that records who registered it (one run may serve a whole batch);
- the aliases ``staging`` and ``production`` are the source of truth for stages; the
  stage is also in the tag ``registry_ui.stage`` and in MLflow's legacy stage.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.model_registry_pb2 import SearchModelVersions
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
from mlflow.tracking import MlflowClient
from mlflow.utils.rest_utils import http_request, verify_rest_response

from registry_ui import config
from registry_ui.core import native
from registry_ui.core.errors import (
    AmbiguousVersionError,
    NameCollisionError,
    NotFoundError,
    RegistryError,
    RegistryRejectedError,
    RegistryUnavailableError,
)
from registry_ui.core.experiments import tag_name as experiment_tag_name
from registry_ui.core.limits import MAX_TEXT
from registry_ui.core.names import (
    InvalidNameError,
    from_registered_model_name,
    to_registered_model_name,
)
from registry_ui.core.records import EntryProblem, RunMetrics, VersionRecord
from registry_ui.core.semver import SemVer
from registry_ui.core.stages import ModelStage

TAG_PREFIX = "registry_ui."
TAG_TEMPLATE_NAME = "registry_ui.template_name"
TAG_KIND = "registry_ui.kind"
KIND_PROMPT_TEMPLATE = "prompt_template"
TAG_TEMPLATE = "registry_ui.template"
TAG_VERSION = "registry_ui.version"
TAG_METADATA = "registry_ui.metadata"
TAG_STAGE = "registry_ui.stage"
TAG_CONTENT_SHA256 = "registry_ui.content_sha256"
TAG_OPERATION_ID = "registry_ui.operation_id"
TAG_REGISTERED_BY = "registry_ui.registered_by"
# Set when a CI account registered the version: the person who asked for it.
TAG_REQUESTED_BY = "registry_ui.requested_by"
TAG_REASON = "registry_ui.reason"
# A chat template's messages, model configuration and response format (JSON), when present.
TAG_EXTRA = {
    "messages": "registry_ui.messages",
    "model_config": "registry_ui.model_config",
    "response_format": "registry_ui.response_format",
}
REGISTRATION_EXPERIMENT = "registry_ui-registrations"
# Runs of A/B experiments' metrics: one run per variant, tagged with template and version.
TAG_EXPERIMENT = "registry_ui.experiment"
TAG_VARIANT = "registry_ui.variant"
# MLflow marks the registered models behind its Prompt Registry with this tag.
TAG_NATIVE_PROMPT = "mlflow.prompt.is_prompt"
EXPERIMENT_METRICS_EXPERIMENT = "registry_ui-experiments"
# log_batch takes at most 1,000 metrics per call.
_METRICS_PER_BATCH = 1000

# MLflow's defaults (120 s timeout, 7 retries with backoff factor 2) can hold a page or a
# worker for minutes. Ours fail fast; workers retry whole operations with backoff instead.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
# Always 0, whatever the environment says: MLflow's HTTP client retries every method,
# POSTs included, inside one call, so a create_model_version answered after the timeout is
# sent again and the same version is created twice (measured: 4 of 6 doubled with answers
# 11-12 s late). Retries are ours: reads below, writes as operations that first look for
# their own earlier effect (docs/mlflow-contract.md, "Retries").
HTTP_MAX_RETRIES = "0"
# Idempotent calls are retried here, after these pauses: reads (search_*, get_*) change
# nothing, and setting a tag, an alias, a legacy stage or a run's status to a value twice
# leaves what once does. Creates (versions, runs, models) and log_batch are never repeated.
READ_RETRY_PAUSES = (0.5, 1.5)
# search_model_versions accepts up to 200,000 per page; 10,000 keeps each response small.
_VERSION_PAGE_SIZE = 10_000
_MODEL_PAGE_SIZE = 1_000
# `name IN (...)` filters stay well under URL and SQL limits at this size.
_NAMES_PER_SEARCH = 100
# Changed models are listed newest first; an idle registry's pass reads one short page.
_CHANGED_PAGE_SIZE = 200

_IDEMPOTENT = ("search_", "get_", "set_", "delete_", "transition_")

_client_lock = threading.Lock()
_client: MlflowClient | None = None
_client_uri: str | None = None


def _settle_databricks_context() -> bool:
    """Ask once per process whether it runs in Databricks, not once per MLflow request.

    MLflow resolves request headers on every HTTP call, and its Databricks provider tries to
    import IPython, pyspark and Databricks modules each time to find out (failed imports are
    not cached): about 1.5 ms of CPU per call, more than the rest of the client's work on a
    create_model_version. The answer cannot change within a process, so outside Databricks
    the provider is told so once. Returns whether it was (False if MLflow's registry of
    providers is not where this expects it: nothing is changed then).
    """
    try:
        from mlflow.tracking.request_header.databricks_request_header_provider import (
            DatabricksRequestHeaderProvider,
        )
        from mlflow.tracking.request_header.registry import _request_header_provider_registry
    except ImportError:
        return False
    settled = False
    for provider in getattr(_request_header_provider_registry, "_registry", ()):
        if type(provider) is DatabricksRequestHeaderProvider and not provider.in_context():
            provider.in_context = _outside_databricks
            settled = True
    return settled


def _outside_databricks() -> bool:
    return False


_settle_databricks_context()


def configure_mlflow_with_registry(tracking_uri: str | None = None) -> str:
    """Point MLflow (tracking and registry) at one URI and set tight HTTP limits.

    Called once per process; returns the URI in use. Explicit MLFLOW_HTTP_* environment
    variables win over our defaults.
    """
    global _client, _client_uri
    uri = tracking_uri or config.mlflow_tracking_uri()
    _http_settings()
    with _client_lock:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        if _client_uri != uri:
            _client, _client_uri = None, uri
    return uri


def get_mlflow_client() -> MlflowClient:
    """One MlflowClient per process, shared by threads.

    MlflowClient is stateless apart from its URIs; HTTP connections are pooled by MLflow's
    own cached requests.Session (one per process and retry policy), so no pool of ours.
    """
    global _client
    client = _client
    if client is not None:
        return client
    with _client_lock:
        if _client is None:
            if _client_uri is None:
                _unlocked_configure()
            _client = MlflowClient(tracking_uri=_client_uri, registry_uri=_client_uri)
        return _client


def _http_settings() -> None:
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = HTTP_MAX_RETRIES


def _unlocked_configure() -> None:
    global _client_uri
    _http_settings()
    _client_uri = config.mlflow_tracking_uri()
    mlflow.set_tracking_uri(_client_uri)
    mlflow.set_registry_uri(_client_uri)


def translate_error(error: MlflowException, *, action: str) -> RegistryError:
    """Sort MLflow's errors into transient (retry) and permanent (report) ones."""
    message = f"{action}: {error.message}"
    status = error.get_http_status_code()
    if isinstance(error, RestException) and status < 500 and status != 429:
        return RegistryRejectedError(message)
    if status >= 500 or status == 429 or "failed with" in error.message:
        return RegistryUnavailableError(message)
    return RegistryRejectedError(message)


# == native prompts (MLflow's Prompt Registry) ===================================================
# MLflow keeps a prompt as a registered model tagged mlflow.prompt.is_prompt=true, its versions
# as model versions with the text in mlflow.prompt.text (docs/mlflow-contract.md, "Native
# prompts"). Its model APIs hide them unless a filter asks for that tag, so the searches here
# do, and read every prompt's versions (and aliases) in a constant number of paged calls.

NATIVE_PROMPT_FILTER = "tags.`mlflow.prompt.is_prompt` = 'true'"
_NATIVE_TEXT = "mlflow.prompt.text"
_NATIVE_TYPE = "_mlflow_prompt_type"
_NATIVE_MODEL_CONFIG = "_mlflow_prompt_model_config"
_NATIVE_RESPONSE_FORMAT = "_mlflow_prompt_response_format"
# Where a template is published as a native prompt (core/native.py), re-exported here.
PUBLISHED_SUFFIX = native.PUBLISHED_SUFFIX
published_name = native.published_name


def _user_tags(tags: dict[str, str] | None) -> dict[str, str]:
    return {
        k: v
        for k, v in (tags or {}).items()
        if not k.startswith(("mlflow.", "_mlflow")) and k != native.SEMVER_TAG
    }


def _native_from_model_version(version, alias_map: dict[str, str]) -> native.NativeVersion:
    tags = dict(version.tags or {})
    text = tags.get(_NATIVE_TEXT, "")
    template: Any = text
    if tags.get(_NATIVE_TYPE) == "chat":
        template = tuple(
            {"role": m.get("role"), "content": m.get("content", "")} for m in json.loads(text)
        )
    number = str(version.version)
    return native.NativeVersion(
        name=version.name,
        number=int(version.version),
        template=template,
        model_config=json.loads(tags[_NATIVE_MODEL_CONFIG])
        if _NATIVE_MODEL_CONFIG in tags
        else None,
        response_format=(
            json.loads(tags[_NATIVE_RESPONSE_FORMAT]) if _NATIVE_RESPONSE_FORMAT in tags else None
        ),
        commit_message=version.description or None,
        tags=_user_tags(tags),
        aliases=tuple(sorted(a for a, n in alias_map.items() if n == number)),
        created_at=_from_millis(version.creation_timestamp),
        created_by=getattr(version, "user_id", None) or None,
        semver=tags.get(native.SEMVER_TAG),
    )


def _native_from_prompt_version(version) -> native.NativeVersion:
    template = version.template
    if not isinstance(template, str):
        template = tuple({"role": m.get("role"), "content": m.get("content", "")} for m in template)
    tags = dict(version.tags or {})
    return native.NativeVersion(
        name=version.name,
        number=int(version.version),
        template=template,
        model_config=version.model_config,
        response_format=version.response_format,
        commit_message=version.commit_message or None,
        tags=_user_tags(tags),
        aliases=tuple(sorted(version.aliases or ())),
        created_at=_from_millis(version.creation_timestamp),
        created_by=version.user_id or None,
        semver=tags.get(native.SEMVER_TAG),
    )


class NativePromptsMixin:
    """Reads and writes of native prompts, in core.native's terms (MlflowGateway has them)."""

    def native_prompts(self, *, prefix: str = "", tag: str = "") -> dict[str, dict[str, Any]]:
        """name -> {tags, aliases, description, created_at} of every native prompt (paged).

        ``prefix``: only names starting with it; ``tag``: only prompts carrying that tag
        ('key' or 'key=value').
        """
        query = NATIVE_PROMPT_FILTER + _native_filters(prefix, tag)
        found = {}
        token = None
        while True:
            page = self._call(
                "list native prompts",
                self.client.search_registered_models,
                filter_string=query,
                max_results=_MODEL_PAGE_SIZE,
                page_token=token,
            )
            for model in page:
                if not model.name.startswith(prefix):
                    continue
                found[model.name] = {
                    "tags": _user_tags(model.tags),
                    "aliases": _alias_map(model),
                    "description": model.description or "",
                    "created_at": _from_millis(model.creation_timestamp),
                    "updated_ms": int(model.last_updated_timestamp or 0),
                }
            token = page.token
            if not token:
                return found

    def native_changed_since(self, since_ms: int) -> dict[str, int]:
        """name -> last_updated_timestamp of the native prompts whose timestamp is
        ``since_ms`` or later, newest first: one small call when little changed. A new
        version moves a prompt's timestamp; aliases and tags move none (measured on 3.17,
        docs/mlflow-contract.md): webhooks and the full sweep see those."""
        found: dict[str, int] = {}
        token = None
        while True:
            page = self._call(
                "list changed native prompts",
                self.client.search_registered_models,
                filter_string=NATIVE_PROMPT_FILTER,
                order_by=["last_updated_timestamp DESC"],
                max_results=_CHANGED_PAGE_SIZE,
                page_token=token,
            )
            for model in page:
                stamp = int(model.last_updated_timestamp or 0)
                if stamp < since_ms:
                    return found
                found[model.name] = stamp
            token = page.token
            if not token:
                return found

    def native_versions_all(
        self, *, prefix: str = "", tag: str = ""
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[native.NativeVersion]]]:
        """Every native prompt and all its versions, oldest first: two paged searches."""
        prompts = self.native_prompts(prefix=prefix, tag=tag)
        by_name: dict[str, list[native.NativeVersion]] = {name: [] for name in prompts}
        query = NATIVE_PROMPT_FILTER + _native_filters(prefix, "")
        for version in self._paged_versions(query):
            if version.name in by_name:
                aliases = prompts[version.name]["aliases"]
                by_name[version.name].append(_native_from_model_version(version, aliases))
        for versions in by_name.values():
            versions.sort(key=lambda v: v.number)
        return prompts, by_name

    def native_versions(self, name: str) -> list[native.NativeVersion]:
        """One prompt's versions, oldest first ([] if there is no such prompt)."""
        aliases = self.native_prompts(prefix=name).get(name, {}).get("aliases", {})
        quoted = name.replace("'", "''")
        found = [
            _native_from_model_version(version, aliases)
            for version in self._paged_versions(f"{NATIVE_PROMPT_FILTER} AND name = '{quoted}'")
        ]
        return sorted(found, key=lambda v: v.number)

    def native_by_alias(self, name: str, alias: str) -> native.NativeVersion:
        try:
            self.calls += 1
            version = self.client.get_prompt_version_by_alias(name, alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise NotFoundError(f"native prompt {name!r} has no {alias} version") from error
            raise translate_error(error, action=f"read {alias} of prompt {name!r}") from error
        return _native_from_prompt_version(version)

    def native_version(self, name: str, number: int | str) -> native.NativeVersion:
        try:
            self.calls += 1
            version = self.client.get_prompt_version(name, str(number))
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise NotFoundError(f"native prompt {name!r} has no version {number}") from error
            raise translate_error(error, action=f"read prompt {name!r} {number}") from error
        if version is None:
            raise NotFoundError(f"native prompt {name!r} has no version {number}")
        return _native_from_prompt_version(version)

    def native_alias_map(self, name: str) -> dict[str, str]:
        found = self.native_prompts(prefix=name)
        if name not in found:
            raise NotFoundError(f"native prompt {name!r} is not in the registry")
        return found[name]["aliases"]

    def set_native_alias(self, name: str, alias: str, number: int | str) -> None:
        self._call(
            f"set {alias} of prompt {name!r}",
            self.client.set_prompt_alias,
            name,
            alias,
            int(number),
        )

    def delete_native_alias(self, name: str, alias: str) -> None:
        try:
            self.calls += 1
            self.client.delete_prompt_alias(name, alias)
        except MlflowException as error:
            if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise translate_error(error, action=f"remove {alias} of {name!r}") from error

    def set_native_version_tag(self, name: str, number: int | str, key: str, value: str) -> None:
        self._call(
            f"tag prompt {name!r} version {number}",
            self.client.set_prompt_version_tag,
            name,
            str(number),
            key,
            value,
        )

    def register_native(
        self,
        name: str,
        template: str | list[dict[str, str]],
        *,
        commit_message: str = "",
        tags: dict[str, str] | None = None,
        model_config: dict[str, Any] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> native.NativeVersion:
        """A new version of a native prompt (the prompt is created with its first version).

        Not retried: a create answered late may have happened; callers look first (by the
        tags they wrote) before trying again.
        """
        self.calls += 1
        try:
            version = self.client.register_prompt(
                name,
                template,
                commit_message=commit_message or None,
                tags=tags or None,
                model_config=model_config or None,
                response_format=response_format,
            )
        except MlflowException as error:
            raise translate_error(error, action=f"register prompt {name!r}") from error
        return _native_from_prompt_version(version)

    @staticmethod
    def format_jinja(template: str | list[dict[str, str]], values: dict[str, Any]) -> Any:
        """A Jinja2 prompt rendered by MLflow itself (its sandboxed environment); no call."""
        from mlflow.entities.model_registry.prompt_version import PromptVersion

        return PromptVersion("jinja", 1, template).format(**values)


def _native_filters(prefix: str, tag: str) -> str:
    query = ""
    if prefix:
        # LIKE's '_' matches any one character: callers keep only names starting with prefix.
        query += f" AND name LIKE '{prefix.replace(chr(39), chr(39) * 2)}%'"
    if tag:
        key, _, value = tag.partition("=")
        query += (
            f" AND tags.`{key}` = '{value.replace(chr(39), chr(39) * 2)}'"
            if value
            else (f" AND tags.`{key}` != ''")
        )
    return query


class MlflowGateway(NativePromptsMixin):
    """Registry reads and writes for prompt templates, in our records' terms."""

    def __init__(self, client: MlflowClient | None = None):
        self.client = client or get_mlflow_client()
        self._known_models: set[str] = set()
        self._experiment_id: str | None = None
        self.calls = 0  # MLflow calls made through this gateway, for benchmarks and tests
        self.untagged: list[tuple[str, str]] = []  # found by the last scan_all()
        self.model_stamps: dict[str, int] = {}  # likewise: template -> model's timestamp

    # -- calls -----------------------------------------------------------------------------

    def _call(self, action: str, fn, *args, **kwargs):
        """One MLflow call, its errors translated; idempotent calls are retried on transient
        errors. A create is never repeated here: the caller decides, knowing what it wrote.
        """
        pauses = READ_RETRY_PAUSES if fn.__name__.startswith(_IDEMPOTENT) else ()
        for pause in (*pauses, None):
            try:
                return self._call_once(action, fn, *args, **kwargs)
            except RegistryUnavailableError:
                if pause is None:
                    raise
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _call_once(self, action: str, fn, *args, **kwargs):
        self.calls += 1
        try:
            with warnings.catch_warnings():
                # Legacy stages are deprecated but kept in step on purpose (see module doc).
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                return fn(*args, **kwargs)
        except MlflowException as error:
            raise translate_error(error, action=action) from error
        except OSError as error:  # a local store's disk or socket trouble
            raise RegistryUnavailableError(f"{action}: {error}") from error

    def ping(self) -> None:
        self._call("search registered models", self.client.search_registered_models, max_results=1)

    # -- registered models ------------------------------------------------------------------

    def ensure_registered_model(self, name: str) -> str:
        """Create the template's registered model if missing; refuse a colliding name.

        One case-insensitive search finds both the model itself and any name differing only
        in letter case (SQLite and PostgreSQL compare names case-sensitively, MySQL and most
        people do not: 'Hook' and 'hook' side by side would be one template to a reader).
        """
        return self._ensure_registered_model(name)[0]

    def versions_to_register_into(self, name: str) -> list[VersionRecord]:
        """The template's versions (stages unknown), its registered model made sure of first.

        For a worker about to register versions of the template: a registered model created
        just now has no versions, so a brand-new template costs no version search.
        """
        _, created = self._ensure_registered_model(name)
        if created:
            return []
        return self.list_versions_many([name], stages=False)[name]

    def _ensure_registered_model(self, name: str) -> tuple[str, bool]:
        """The registered name, and whether this call created the model (so it is empty)."""
        registered = to_registered_model_name(name)
        if registered in self._known_models:
            return registered, False
        found = self._call(
            f"look up names like {name!r}",
            self.client.search_registered_models,
            filter_string=f"name ILIKE '{registered}'",
            max_results=50,
        )
        same = [m for m in found if m.name.lower() == registered.lower()]
        model = next((m for m in same if m.name == registered), None)
        if model is None and same:
            raise NameCollisionError(
                f"template name {name!r} differs only in letter case from the existing "
                f"registered model {same[0].name!r}: use the existing name or another one"
            )
        created = False
        if model is None:
            model, created = self._create_registered_model(name, registered)
        owner = model.tags.get(TAG_TEMPLATE_NAME)
        if owner != name:
            holder = f"template {owner!r}" if owner else "a model registry_ui did not create"
            raise NameCollisionError(
                f"template name {name!r} maps to the registered model {registered!r}, which "
                f"already belongs to {holder}: choose another name"
            )
        self._known_models.add(registered)
        return registered, created

    def _create_registered_model(self, name: str, registered: str) -> tuple[Any, bool]:
        """The model, and True if we created it (False: someone else did meanwhile)."""
        tags = {TAG_TEMPLATE_NAME: name, TAG_KIND: KIND_PROMPT_TEMPLATE}
        try:
            self.calls += 1
            created = self.client.create_registered_model(
                registered, tags=tags, description=f"Prompt template {name}"
            )
            return created, True
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise translate_error(error, action=f"create template {name!r}") from error
        if self._is_native_prompt(registered):
            raise NameCollisionError(
                f"template name {name!r} maps to {registered!r}, which is the name of a prompt "
                "in MLflow's own Prompt Registry (MLflow keeps one name space for models and "
                "prompts): choose another name"
            )
        # Someone created it between our read and our create: use theirs if it is ours.
        model = self._call(f"read template {name!r}", self.client.get_registered_model, registered)
        return model, False

    def _is_native_prompt(self, registered: str) -> bool:
        """Whether ``registered`` names a native prompt (which model searches leave out)."""
        found = self._call(
            f"look for a native prompt named {registered!r}",
            self.client.search_registered_models,
            filter_string=f"name = '{registered}' AND tags.`{TAG_NATIVE_PROMPT}` = 'true'",
            max_results=1,
        )
        return bool(found)

    def _paged_models(self, filter_string: str) -> Iterator[Any]:
        return self._pages(
            "list templates",
            self.client.search_registered_models,
            filter_string=filter_string,
            max_results=_MODEL_PAGE_SIZE,
        )

    def _pages(self, action: str, search, **kwargs) -> Iterator[Any]:
        """Every item of a paged search. The next page is asked for on a thread while the
        caller works through the current one, so MLflow's time to answer overlaps ours to
        read (a full sweep of 100,000 versions is ten pages). One call at a time: the
        thread makes the calls, the caller only reads pages already answered."""
        fetch = functools.partial(self._call, action, search, **kwargs)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-pages") as ahead:
            page = fetch(page_token=None)
            while True:
                following = ahead.submit(fetch, page_token=page.token) if page.token else None
                yield from page
                if following is None:
                    return
                page = following.result()

    # -- versions ---------------------------------------------------------------------------

    def list_versions(self, name: str) -> list[VersionRecord]:
        return self.list_versions_many([name]).get(name, [])

    def list_versions_many(
        self, names: Iterable[str], *, stages: bool = True
    ) -> dict[str, list[VersionRecord]]:
        """Every version of each template, sorted by semantic version, in few calls.

        search_model_versions does not return aliases (measured with 3.17), so stages come
        from the registered models' alias maps, read alongside; ``stages=False`` skips that
        read when only contents matter (registration checks), and stages are then unknown.
        """
        wanted = {to_registered_model_name(name): name for name in names}
        by_name: dict[str, list[VersionRecord]] = {name: [] for name in wanted.values()}
        aliases = self._alias_maps(wanted) if stages else {}
        registered_names = sorted(wanted)
        for start in range(0, len(registered_names), _NAMES_PER_SEARCH):
            chunk = registered_names[start : start + _NAMES_PER_SEARCH]
            quoted = ", ".join(f"'{n}'" for n in chunk)
            for version in self._paged_versions(f"name IN ({quoted})"):
                try:
                    record = self.to_record(version, alias_map=aliases.get(version.name, {}))
                except UnreadableEntry:
                    continue  # reported by the sync (scan_all); never served or moved
                if record is not None:
                    by_name[wanted[version.name]].append(record)
        for records in by_name.values():
            records.sort(key=_semver_key)
        return by_name

    def _alias_maps(self, registered_names: Iterable[str]) -> dict[str, dict[str, str]]:
        """registered name -> {alias: MLflow version} for the given models."""
        registered_names = list(registered_names)
        if len(registered_names) > _NAMES_PER_SEARCH:
            wanted = set(registered_names)
            return {
                model.name: _alias_map(model)
                for model in self._paged_models(f"tags.`{TAG_KIND}` = '{KIND_PROMPT_TEMPLATE}'")
                if model.name in wanted
            }
        maps = {}
        for registered in registered_names:
            found = self._call(
                f"read aliases of {registered!r}",
                self.client.search_registered_models,
                filter_string=f"name = '{registered}'",
                max_results=1,
            )
            if found:
                maps[registered] = _alias_map(found[0])
        return maps

    def all_versions(self) -> dict[str, list[VersionRecord]]:
        """Every readable version of every template (for sync and demo checks)."""
        return self.scan_all()[0]

    def scan_all(
        self, on_complete: Callable[[str, list[VersionRecord]], None] | None = None
    ) -> tuple[dict[str, list[VersionRecord]], list[EntryProblem]]:
        """Every version of every template, and the entries that cannot be read.

        Two paged searches, whatever the registry's size. An entry registry_ui cannot read
        (metadata that is not JSON, a version tag that is not a semantic version, a model
        renamed away from its template's name, text the database cannot store) is returned
        as a problem, with the reason; every other version is read as usual.

        The versions come ordered by registered model, so each model's are read together:
        ``on_complete(template, records)`` is called as soon as a model's last version is
        read, while MLflow produces the next page (the first full sync writes the mirror
        meanwhile). A template whose versions sit in two models (renamed outside) may be
        called twice; the returned ``by_name`` is what counts.
        """
        # The models first: each one's timestamp is read before its versions, so a version
        # added meanwhile moves the stamp and the incremental pass reads the model again.
        models = list(self._paged_models(f"tags.`{TAG_KIND}` = '{KIND_PROMPT_TEMPLATE}'"))
        versions = self._paged_versions(
            f"tags.`{TAG_VERSION}` != ''", order_by=["name ASC", "version_number ASC"]
        )
        return self._scan(models, versions, on_complete=on_complete)

    def models_changed_since(self, since_ms: int) -> list[Any]:
        """The templates' registered models whose ``last_updated_timestamp`` is ``since_ms``
        or later, newest first: one small call when little changed.

        MLflow filters registered models by name and tags only, so the search is ordered by
        the timestamp and read page by page until a model older than ``since_ms``. What
        moves a model's timestamp (measured on 3.17, docs/mlflow-contract.md): a new
        version, a version deleted, a legacy stage change, the model's description. Aliases
        and tags move no timestamp at all: webhooks and the full sweep see those.
        """
        found = []
        token = None
        while True:
            page = self._call(
                "list changed templates",
                self.client.search_registered_models,
                filter_string=f"tags.`{TAG_KIND}` = '{KIND_PROMPT_TEMPLATE}'",
                order_by=["last_updated_timestamp DESC"],
                max_results=_CHANGED_PAGE_SIZE,
                page_token=token,
            )
            for model in page:
                if (model.last_updated_timestamp or 0) < since_ms:
                    return found
                found.append(model)
            token = page.token
            if not token:
                return found

    def scan_models(
        self, models: Sequence[Any]
    ) -> tuple[dict[str, list[VersionRecord]], list[EntryProblem]]:
        """Like scan_all, for these registered models only (from models_changed_since): their
        versions in one search per hundred models, with the stages from their alias maps."""
        names = sorted(model.name for model in models)
        filters = []
        for start in range(0, len(names), _NAMES_PER_SEARCH):
            quoted = ", ".join(f"'{n}'" for n in names[start : start + _NAMES_PER_SEARCH])
            filters.append(f"name IN ({quoted}) AND tags.`{TAG_VERSION}` != ''")
        return self._scan(list(models), (v for f in filters for v in self._paged_versions(f)))

    def scan_template(self, name: str) -> tuple[dict[str, list[VersionRecord]], list[EntryProblem]]:
        """Like scan_all, for one template (a webhook named it): two calls. A template whose
        registered model is gone comes back with no versions."""
        registered = to_registered_model_name(name)
        models = self._call(
            f"read template {name!r}",
            self.client.search_registered_models,
            filter_string=f"name = '{registered}'",
            max_results=1,
        )
        if not models:
            self.untagged, self.model_stamps = [], {}
            return {}, []
        return self.scan_models(models)

    def _scan(
        self,
        models: list[Any],
        versions: Iterable[ModelVersion],
        *,
        on_complete: Callable[[str, list[VersionRecord]], None] | None = None,
    ) -> tuple[dict[str, list[VersionRecord]], list[EntryProblem]]:
        by_name: dict[str, list[VersionRecord]] = {}
        reading: str | None = None  # the registered model whose versions are being read
        read_into: set[str] = set()  # the templates its versions went to

        def completed() -> None:
            for template in sorted(read_into):
                on_complete(template, sorted(by_name[template], key=_semver_key))
            read_into.clear()

        problems: list[EntryProblem] = []
        self.untagged: list[tuple[str, str]] = []  # (template, MLflow version) without tags
        # template -> its registered model's last_updated_timestamp as read (before its
        # versions): the incremental sync reads a model again only once this moves.
        self.model_stamps: dict[str, int] = {}
        for model in models:
            template = (model.tags or {}).get(TAG_TEMPLATE_NAME) or _template_of(model.name)
            if template:
                self.model_stamps[template] = int(model.last_updated_timestamp or 0)
        aliases = {model.name: _alias_map(model) for model in models}
        for version in versions:
            if on_complete is not None and version.name != reading:
                completed()
                reading = version.name
            try:
                record = self.to_record(version, alias_map=aliases.get(version.name, {}))
            except UnreadableEntry as error:
                problems.append(
                    EntryProblem(
                        registered_name=version.name,
                        mlflow_version=str(version.version),
                        template=(version.tags or {}).get(TAG_TEMPLATE_NAME)
                        or _template_of(version.name),
                        problem=str(error),
                    )
                )
                continue
            if record is not None:
                by_name.setdefault(record.name, []).append(record)
                read_into.add(record.name)
        if on_complete is not None:
            completed()
        for records in by_name.values():
            records.sort(key=_semver_key)
        # A version with none of our tags is not in the search above. The models' newest
        # version numbers (their latest_versions, read with them) give it away: newer than
        # every version with our tags means someone added one outside registry_ui.
        seen = {}
        for records in by_name.values():
            for record in records:
                registered = to_registered_model_name(record.name)
                seen[registered] = max(seen.get(registered, 0), int(record.mlflow_version))
        for problem in problems:
            if problem.mlflow_version and problem.mlflow_version.isdigit():
                number = int(problem.mlflow_version)
                seen[problem.registered_name] = max(seen.get(problem.registered_name, 0), number)
        for model in models:
            newest = max((int(v.version) for v in model.latest_versions or ()), default=0)
            if newest > seen.get(model.name, 0) and model.tags.get(TAG_TEMPLATE_NAME):
                self.untagged.append((model.tags[TAG_TEMPLATE_NAME], str(newest)))
        return by_name, problems

    def _paged_versions(
        self, filter_string: str, order_by: list[str] | None = None
    ) -> Iterator[ModelVersion | WireVersion]:
        return self._pages(
            "list versions",
            self._version_search(),
            filter_string=filter_string,
            max_results=_VERSION_PAGE_SIZE,
            **({"order_by": order_by} if order_by else {}),
        )

    def _version_search(self) -> Callable[..., Any]:
        """MLflow's version search. Over HTTP, its JSON answer is read as it is
        (search_model_versions_json): the client would parse it into protobuf messages and
        then entities, about 0.1 ms a version of our CPU, a tenth of a 100,000-version sweep
        (docs/PERFORMANCE.md). On a local store, or a client without a REST registry store,
        the client's own search."""
        try:
            store = self.client._get_registry_client().store
        except AttributeError:  # not an MlflowClient as we know it (3.17)
            return self.client.search_model_versions
        if not isinstance(store, RegistryRestStore):
            return self.client.search_model_versions

        def search_model_versions(**kwargs: Any) -> PagedList:  # named as a read: retried
            return search_model_versions_json(store, **kwargs)

        return search_model_versions

    def stage_tag_holders(self) -> set[tuple[str, str]]:
        """(registered model, MLflow version) of every version tagged staging or production.

        Two paged searches whatever the registry's size: what the holder watch compares with
        the mirror to see deletions and renames, which MLflow sends no webhook for.
        """
        found = set()
        for stage in (ModelStage.STAGING, ModelStage.PRODUCTION):
            for version in self._paged_versions(f"tags.`{TAG_STAGE}` = '{stage.value}'"):
                found.add((version.name, str(version.version)))
        return found

    def get_by_stage(self, name: str, stage: ModelStage) -> VersionRecord:
        alias = ModelStage.parse(stage).alias
        if alias is None:
            raise ValueError(f"only staging and production can be loaded by stage, not {stage}")
        registered = to_registered_model_name(name)
        try:
            self.calls += 1
            version = self.client.get_model_version_by_alias(registered, alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise NotFoundError(f"template {name!r} has no {alias} version") from error
            raise translate_error(error, action=f"read {alias} of {name!r}") from error
        record = self.to_record(version)
        if record is None:
            raise NotFoundError(
                f"the {alias} version of {name!r} was not registered by registry_ui"
            )
        return record

    def get_version(self, name: str, version: str) -> VersionRecord:
        registered = to_registered_model_name(name)
        found = self._call(
            f"read version {version} of {name!r}",
            self.client.search_model_versions,
            filter_string=f"name = '{registered}' AND tags.`{TAG_VERSION}` = '{version}'",
            max_results=10,
        )
        alias_map = self._alias_maps([registered]).get(registered, {}) if found else {}
        records = [
            r for r in (self.to_record(v, alias_map=alias_map) for v in found) if r is not None
        ]
        if not records:
            raise NotFoundError(f"template {name!r} has no version {version}")
        if len(records) > 1:
            numbers = ", ".join(sorted((r.mlflow_version for r in records), key=int))
            raise AmbiguousVersionError(
                f"template {name!r} version {version} is registered more than once in MLflow "
                f"(MLflow versions {numbers}): refusing to guess which one to serve. Delete the "
                "copy in MLflow, or load by stage or by MLflow version number"
            )
        return records[0]

    def get_mlflow_version(self, name: str, number: str) -> VersionRecord:
        registered = to_registered_model_name(name)
        try:
            self.calls += 1
            version = self.client.get_model_version(registered, number)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"template {name!r} has no MLflow version {number}") from error
            raise translate_error(error, action=f"read {name!r} version {number}") from error
        record = self.to_record(version)
        if record is None:
            raise NotFoundError(f"{name!r} version {number} was not registered by registry_ui")
        return record

    def start_registration_run(self, *, actor: str, reason: str = "", count: int = 1) -> str:
        """One run records who registered a batch; every version's source points into it.

        Two identities: ``registry_ui.registered_by`` is the actor (the dashboard user or a
        batch's actor), and ``registry_ui.mlflow_account`` the MLflow account whose
        credentials wrote the run, which a server running basic-auth has checked. MLflow's own
        ``mlflow.user`` names who created the run (MLflow sets the OS user; the server stores
        what the client sends, basic-auth included), so it is the account where there is one,
        else the actor as before (docs/mlflow-contract.md).
        """
        # The credentials MLflow's HTTP client itself sends: MLFLOW_TRACKING_USERNAME and
        # _PASSWORD, else ~/.mlflow/credentials.
        from mlflow.utils.credentials import read_mlflow_creds

        if self._experiment_id is None:
            experiment = self._call(
                "read registration experiment",
                self.client.get_experiment_by_name,
                REGISTRATION_EXPERIMENT,
            )
            if experiment is None:
                try:
                    self.calls += 1
                    self._experiment_id = self.client.create_experiment(REGISTRATION_EXPERIMENT)
                except MlflowException:
                    experiment = self._call(
                        "read registration experiment",
                        self.client.get_experiment_by_name,
                        REGISTRATION_EXPERIMENT,
                    )
                    self._experiment_id = experiment.experiment_id
            else:
                self._experiment_id = experiment.experiment_id
        creds = read_mlflow_creds()
        # Sent over HTTP only, and only with both (mlflow.utils.rest_utils.http_request).
        over_http = str(self.client.tracking_uri).startswith(("http://", "https://"))
        account = creds.username if over_http and creds.username and creds.password else ""
        tags = {TAG_REGISTERED_BY: actor, "mlflow.user": account or actor}
        if account:
            tags["registry_ui.mlflow_account"] = account
        if reason:
            tags[TAG_REASON] = reason[:MAX_TEXT]  # run tags hold at most 8,000 characters
        run = self._call(
            "start registration run",
            self.client.create_run,
            self._experiment_id,
            tags=tags,
            run_name=f"register {count} template version(s)",
        )
        return run.info.run_id

    def finish_registration_run(self, run_id: str) -> None:
        self._call("finish registration run", self.client.set_terminated, run_id)

    def find_by_operation(self, name: str, operation_id: str) -> VersionRecord | None:
        """The version an operation already created, so a re-run records it, not repeats it."""
        registered = to_registered_model_name(name)
        found = self._call(
            f"look up operation {operation_id}",
            self.client.search_model_versions,
            filter_string=(
                f"name = '{registered}' AND tags.`{TAG_OPERATION_ID}` = '{operation_id}'"
            ),
            max_results=10,
        )
        alias_map = self._alias_maps([registered]).get(registered, {}) if found else {}
        records = [
            r for r in (self.to_record(v, alias_map=alias_map) for v in found) if r is not None
        ]
        return records[0] if records else None

    def create_version(
        self,
        *,
        name: str,
        version: str,
        template: str,
        metadata: dict[str, Any],
        content_sha256: str,
        run_id: str,
        actor: str,
        operation_id: str,
        extra: dict[str, Any] | None = None,
        requested_by: str = "",
    ) -> VersionRecord:
        registered = self.ensure_registered_model(name)
        tags = {
            TAG_EXTRA[key]: json.dumps(value, sort_keys=True, ensure_ascii=False)
            for key, value in (extra or {}).items()
        }
        tags |= {
            TAG_VERSION: version,
            TAG_TEMPLATE: template,
            TAG_METADATA: json.dumps(metadata, sort_keys=True, ensure_ascii=False),
            TAG_CONTENT_SHA256: content_sha256,
            TAG_OPERATION_ID: operation_id,
            TAG_STAGE: ModelStage.DEV.value,
            TAG_REGISTERED_BY: actor,
        }
        if requested_by:
            tags[TAG_REQUESTED_BY] = requested_by

        def create():
            return self._call(
                f"register {name!r} {version}",
                self.client.create_model_version,
                registered,
                source=f"runs:/{run_id}/prompts/{registered}/{version}",
                run_id=run_id,
                tags=tags,
                description=str(metadata.get("purpose", ""))[:1000] or None,
            )

        try:
            created = create()
        except RegistryRejectedError as error:
            if "RESOURCE_DOES_NOT_EXIST" not in str(error.__cause__ and error.__cause__.error_code):
                raise
            # The model was deleted (and maybe re-created) since this process made sure of
            # it: forget it, make sure again, and create (nothing was created the first time).
            self._known_models.discard(registered)
            registered = self.ensure_registered_model(name)
            created = create()
        # create_model_version's answer carries the tags we sent; no second read needed.
        return self.to_record(created, fallback_tags=tags)

    # -- stages -----------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, mlflow_version: str) -> None:
        self._call(
            f"set {alias} of {name!r}",
            self.client.set_registered_model_alias,
            to_registered_model_name(name),
            alias,
            mlflow_version,
        )

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self.calls += 1
            self.client.delete_registered_model_alias(to_registered_model_name(name), alias)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise translate_error(error, action=f"remove {alias} of {name!r}") from error

    def record_stage(self, record: VersionRecord, stage: ModelStage, *, legacy: str | None) -> None:
        """Write the stage tag and, if it differs, MLflow's legacy stage."""
        registered = to_registered_model_name(record.name)
        if record.stage != stage or legacy != stage.legacy_name:
            self._call(
                f"tag {record.name!r} {record.version} as {stage}",
                self.client.set_model_version_tag,
                registered,
                record.mlflow_version,
                TAG_STAGE,
                stage.value,
            )
        if legacy != stage.legacy_name:
            self._call(
                f"move {record.name!r} {record.version} to legacy stage {stage.legacy_name}",
                self.client.transition_model_version_stage,
                registered,
                record.mlflow_version,
                stage.legacy_name,
                archive_existing_versions=False,
            )

    def alias_map(self, name: str) -> dict[str, str]:
        """The template's aliases (alias -> MLflow version number), read with one call.

        Read immediately before and after each alias write: the compare-and-set of
        registry.apply_intent.
        """
        model = self._call(
            f"read aliases of {name!r}",
            self.client.get_registered_model,
            to_registered_model_name(name),
        )
        return _alias_map(model)

    def stage_marks(self, name: str) -> dict[str, tuple[str | None, str]]:
        """MLflow version number -> (stage tag, legacy stage), read with one search."""
        registered = to_registered_model_name(name)
        return {
            str(v.version): ((v.tags or {}).get(TAG_STAGE), v.current_stage)
            for v in self._paged_versions(f"name = '{registered}'")
        }

    def write_stage_marks(
        self, name: str, number: str, stage: ModelStage, *, tag: str | None, legacy: str | None
    ) -> int:
        """Bring one version's stage tag and legacy stage to ``stage``; the writes made."""
        registered = to_registered_model_name(name)
        writes = 0
        if tag != stage.value:
            self._call(
                f"tag {name!r} version {number} as {stage}",
                self.client.set_model_version_tag,
                registered,
                number,
                TAG_STAGE,
                stage.value,
            )
            writes += 1
        if legacy != stage.legacy_name:
            self._call(
                f"move {name!r} version {number} to legacy stage {stage.legacy_name}",
                self.client.transition_model_version_stage,
                registered,
                number,
                stage.legacy_name,
                archive_existing_versions=False,
            )
            writes += 1
        return writes

    def legacy_stages(self, name: str) -> dict[str, str]:
        """MLflow version number -> legacy stage, read with one search."""
        registered = to_registered_model_name(name)
        return {v.version: v.current_stage for v in self._paged_versions(f"name = '{registered}'")}

    # -- experiments ------------------------------------------------------------------------

    def set_experiment_config(
        self, name: str, key: str, config_json: str, *, native: bool = False
    ) -> None:
        """Publish an experiment's configuration as a tag of its template's registered model
        (``native``: of the native prompt)."""
        if native:
            self._call(
                f"publish experiment {key!r} on {name!r}",
                self.client.set_prompt_tag,
                name,
                experiment_tag_name(key),
                config_json,
            )
            return
        self._call(
            f"publish experiment {key!r} on {name!r}",
            self.client.set_registered_model_tag,
            to_registered_model_name(name),
            experiment_tag_name(key),
            config_json,
        )

    def get_experiment_config(self, key: str, name: str | None = None) -> str | None:
        """The published configuration of an experiment (JSON), or None if unpublished.

        With the template's (or native prompt's) name, one read of its registered model (a
        native prompt: one more, of the prompt); without, one search for the model carrying
        the experiment's tag (then one for the prompt).
        """
        tag = experiment_tag_name(key)
        if name is not None:
            try:
                self.calls += 1
                model = self.client.get_registered_model(to_registered_model_name(name))
            except InvalidNameError:
                model = None  # a native prompt's name need not be a template's
            except MlflowException as error:
                if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise translate_error(error, action=f"read experiment {key!r}") from error
                model = None
            if model is not None:
                return model.tags.get(tag)
            prompt = self._call(f"read experiment {key!r}", self.client.get_prompt, name)
            return prompt.tags.get(tag) if prompt is not None else None
        found = self._call(
            f"look up experiment {key!r}",
            self.client.search_registered_models,
            filter_string=f"tags.`{tag}` != ''",
            max_results=2,
        )
        if found:
            return found[0].tags.get(tag)
        prompts = self._call(
            f"look up experiment {key!r}",
            self.client.search_prompts,
            filter_string=f"tags.`{tag}` != ''",
            max_results=2,
        )
        return prompts[0].tags.get(tag) if prompts else None

    def start_metrics_run(self, *, experiment: str, variant: str, name: str, version: str) -> str:
        """The run that receives one variant's metrics, tagged with template and version."""
        experiment_id = self._experiment_id_of(EXPERIMENT_METRICS_EXPERIMENT)
        run = self._call(
            f"start the metrics run of {experiment}/{variant}",
            self.client.create_run,
            experiment_id,
            tags={
                TAG_TEMPLATE_NAME: name,
                TAG_VERSION: version,
                TAG_EXPERIMENT: experiment,
                TAG_VARIANT: variant,
            },
            run_name=f"{experiment} {variant} ({version})",
        )
        return run.info.run_id

    def log_metrics(self, run_id: str, metrics: Sequence[tuple[str, float, int, int]]) -> None:
        """Log (key, value, timestamp in ms, step) metrics to a run, 1,000 per call."""
        entries = [Metric(key, float(value), ts, step) for key, value, ts, step in metrics]
        for start in range(0, len(entries), _METRICS_PER_BATCH):
            self._call(
                f"log metrics to run {run_id}",
                self.client.log_batch,
                run_id,
                metrics=entries[start : start + _METRICS_PER_BATCH],
            )

    def version_runs(self, *, since_ms: int = 0) -> list[RunMetrics]:
        """Runs tagged with a template and a version, with their latest metrics.

        Our own experiment runs (tagged with an experiment) are left out: their figures
        come from the dashboard's database in the first place.
        """
        experiments = [
            e.experiment_id for e in self._call("list experiments", self.client.search_experiments)
        ]
        if not experiments:
            return []
        query = f"tags.`{TAG_VERSION}` != '' AND tags.`{TAG_TEMPLATE_NAME}` != ''"
        if since_ms:
            query += f" AND attributes.start_time >= {int(since_ms)}"
        return self._version_runs(experiments, query)

    def version_runs_active(self, *, ended_since_ms: int) -> list[RunMetrics]:
        """Like version_runs, only the runs whose metrics may have moved: those still
        running, and those that ended at ``ended_since_ms`` or later (two searches; MLflow's
        run filter has no OR). A finished run is not read again, however long the history."""
        experiments = [
            e.experiment_id for e in self._call("list experiments", self.client.search_experiments)
        ]
        if not experiments:
            return []
        tagged = f"tags.`{TAG_VERSION}` != '' AND tags.`{TAG_TEMPLATE_NAME}` != ''"
        found = {}
        for query in (
            f"{tagged} AND attributes.status = 'RUNNING'",
            f"{tagged} AND attributes.end_time >= {int(ended_since_ms)}",
        ):
            for run in self._version_runs(experiments, query):
                found[run.run_id] = run
        return list(found.values())

    def _version_runs(self, experiments: list[str], query: str) -> list[RunMetrics]:
        found, token = [], None
        while True:
            page = self._call(
                "search runs tagged with a template version",
                self.client.search_runs,
                experiments,
                filter_string=query,
                max_results=1000,
                page_token=token,
            )
            for run in page:
                tags = run.data.tags
                if TAG_EXPERIMENT in tags or not run.data.metrics:
                    continue
                found.append(
                    RunMetrics(
                        run_id=run.info.run_id,
                        template=tags[TAG_TEMPLATE_NAME],
                        version=tags[TAG_VERSION],
                        metrics=dict(run.data.metrics),
                        started_at=_from_millis(run.info.start_time),
                    )
                )
            token = page.token
            if not token:
                return found

    def _experiment_id_of(self, experiment_name: str) -> str:
        experiment = self._call(
            f"read experiment {experiment_name}",
            self.client.get_experiment_by_name,
            experiment_name,
        )
        if experiment is not None:
            return experiment.experiment_id
        try:
            self.calls += 1
            return self.client.create_experiment(experiment_name)
        except MlflowException:  # created meanwhile by another process
            experiment = self._call(
                f"read experiment {experiment_name}",
                self.client.get_experiment_by_name,
                experiment_name,
            )
            return experiment.experiment_id

    # -- conversion -------------------------------------------------------------------------

    def to_record(
        self,
        version: ModelVersion,
        *,
        fallback_tags: dict[str, str] | None = None,
        alias_map: dict[str, str] | None = None,
    ) -> VersionRecord | None:
        tags = dict(fallback_tags or {})
        tags.update(version.tags or {})
        if TAG_VERSION not in tags or TAG_TEMPLATE not in tags:
            return None  # a version made outside registry_ui: not a prompt template
        name, metadata = _readable(version, tags)
        if alias_map is not None:
            number = str(version.version)
            aliases = tuple(sorted(a for a, v in alias_map.items() if v == number))
        else:
            aliases = tuple(getattr(version, "aliases", None) or ())
        return VersionRecord(
            name=name,
            version=tags[TAG_VERSION],
            template=tags[TAG_TEMPLATE],
            metadata=metadata,
            stage=stage_of(aliases, tags.get(TAG_STAGE)),
            mlflow_version=str(version.version),
            content_sha256=tags.get(TAG_CONTENT_SHA256, ""),
            created_at=_from_millis(version.creation_timestamp),
            run_id=version.run_id or None,
            source=version.source,
            operation_id=tags.get(TAG_OPERATION_ID),
            registered_by=tags.get(TAG_REGISTERED_BY),
            requested_by=tags.get(TAG_REQUESTED_BY),
            aliases=aliases,
            stage_tag=tags.get(TAG_STAGE),
            legacy_stage=getattr(version, "current_stage", None),
            extra=_extra_of(tags),
        )


@dataclass(frozen=True, slots=True)
class WireVersion:
    """A model version as MLflow's REST API sends it: the fields of ModelVersion the gateway
    reads, with the values ModelVersion.from_proto would give them."""

    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str
    source: str
    run_id: str | None
    user_id: str
    description: str | None
    tags: dict[str, str]
    aliases: tuple[str, ...]

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> WireVersion:
        # Protobuf's JSON writes 64-bit integers as strings and leaves out unset fields.
        return cls(
            name=item.get("name", ""),
            version=str(item.get("version", "")),
            creation_timestamp=int(item.get("creation_timestamp") or 0),
            last_updated_timestamp=int(item.get("last_updated_timestamp") or 0),
            current_stage=item.get("current_stage", ""),
            source=item.get("source", ""),
            run_id=item.get("run_id"),
            user_id=item.get("user_id", ""),
            description=item.get("description"),
            tags={tag.get("key", ""): tag.get("value", "") for tag in item.get("tags", ())},
            aliases=tuple(item.get("aliases", ())),
        )


def search_model_versions_json(
    store: RegistryRestStore,
    filter_string: str | None = None,
    max_results: int | None = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> PagedList:
    """RestStore.search_model_versions, the same request through MLflow's own HTTP session
    (its pooling, credentials, headers and errors), its answer read with json.loads into
    WireVersions instead of protobuf messages and entities."""
    store._validate_workspace_support_if_specified()
    endpoint, method = store._get_endpoint_from_method(SearchModelVersions)
    params: dict[str, Any] = {"filter": filter_string, "max_results": max_results}
    if order_by:
        params["order_by"] = order_by
    if page_token:
        params["page_token"] = page_token
    response = verify_rest_response(
        http_request(store.get_host_creds(), endpoint, method, params=params), endpoint
    )
    answer = response.json()
    return PagedList(
        [WireVersion.from_json(item) for item in answer.get("model_versions", ())],
        answer.get("next_page_token") or None,
    )


# create_version's source: runs:/<run id>/prompts/<registered model name>/<version>.
_REGISTERED_INTO = re.compile(r"runs:/[^/]+/prompts/(.+)/[^/]+")


class UnreadableEntry(ValueError):
    """A model version carrying our tags that registry_ui cannot read; says why."""


def _readable(version: ModelVersion, tags: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The template name and metadata of a version, or UnreadableEntry with the reason."""
    number = f"MLflow version {version.version} of {version.name!r}"
    try:
        name = from_registered_model_name(version.name)
    except ValueError:
        owner = tags.get(TAG_TEMPLATE_NAME)
        raise UnreadableEntry(
            f"{number}: the registered model's name does not map to a template name"
            + (
                f" (it belongs to template {owner!r}: renamed outside registry_ui?)"
                if owner
                else ""
            )
        ) from None
    written_into = _REGISTERED_INTO.fullmatch(version.source or "")
    if written_into and written_into.group(1) != version.name:
        raise UnreadableEntry(
            f"{number}: it was registered into {written_into.group(1)!r}, so its registered "
            "model was renamed outside registry_ui; a renamed model is not the template "
            "reviewers approved under either name. Rename it back in MLflow, or register "
            "its text as a new version of a template"
        )
    try:
        SemVer.parse(tags[TAG_VERSION])
    except ValueError as error:
        raise UnreadableEntry(f"{number}: its {TAG_VERSION} tag: {error}") from None
    try:
        metadata = json.loads(tags.get(TAG_METADATA) or "{}")
    except ValueError as error:
        raise UnreadableEntry(f"{number}: its {TAG_METADATA} tag is not JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise UnreadableEntry(f"{number}: its {TAG_METADATA} tag is not a JSON object")
    for label, text in (("text", tags[TAG_TEMPLATE]), ("metadata", tags.get(TAG_METADATA, ""))):
        if "\x00" in text:
            raise UnreadableEntry(
                f"{number}: its {label} holds a NUL character (U+0000), which the "
                "dashboard's database cannot store"
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            code = ord(error.object[error.start])
            raise UnreadableEntry(
                f"{number}: its {label} holds a lone surrogate (U+{code:04X}) at character "
                f"{error.start}, which is not valid Unicode text"
            ) from None
    return name, metadata


def _extra_of(tags: dict[str, str]) -> dict[str, Any]:
    """Messages, model configuration and response format from their tags (those present).

    A tag that is not JSON is kept as its text: the content hash then fails and the version
    is refused as changed outside registry_ui, like any other edited tag."""
    extra = {}
    for key, tag in TAG_EXTRA.items():
        if tag in tags:
            try:
                extra[key] = json.loads(tags[tag])
            except ValueError:
                extra[key] = tags[tag]
    return extra


def _template_of(registered_name: str) -> str | None:
    try:
        return from_registered_model_name(registered_name)
    except ValueError:
        return None


def stage_of(aliases: Sequence[str], stage_tag: str | None) -> ModelStage:
    """Aliases are the source of truth; the tag tells dev from archived."""
    if "production" in aliases:
        return ModelStage.PRODUCTION
    if "staging" in aliases:
        return ModelStage.STAGING
    if stage_tag == ModelStage.ARCHIVED.value:
        return ModelStage.ARCHIVED
    if stage_tag in (ModelStage.STAGING.value, ModelStage.PRODUCTION.value):
        # It held the stage once and lost the alias: it was replaced.
        return ModelStage.ARCHIVED
    return ModelStage.DEV


def _alias_map(model) -> dict[str, str]:
    return {alias: str(number) for alias, number in (model.aliases or {}).items()}


def _from_millis(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=UTC) if value else None


def _semver_key(record: VersionRecord) -> tuple[int, ...]:
    """Semantic version, then MLflow number: of two records of one version (a duplicate),
    the canonical one (the lowest number, see core.records.canonical_versions) comes first."""
    number = int(record.mlflow_version) if record.mlflow_version.isdigit() else 0
    return (*(int(part) for part in record.version.split(".")), number)
