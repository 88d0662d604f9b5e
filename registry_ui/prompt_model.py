"""PromptModel: the design note's API for versioned prompt templates in MLflow.

Usable in any Python process (a runtime service, a notebook, CI) without Django:

    from registry_ui.prompt_model import PromptModel, ModelStage, TemplateValidationError

    model = PromptModel(name="viral-hook-generator", template="🔥 {hook_text} - {cta}",
                        version="1.0.0", metadata={"author": "content-team", "purpose": "Hook",
                        "tested_on": "threads", "performance_metrics": {"engagement_rate": 0.06}})
    model.register()
    model.promote_to_staging()
    model.promote_to_production()
    PromptModel.load_from_registry("viral-hook-generator").render(hook_text="...", cta="...")
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from registry_ui.core.checks import CaseResult, case_set_size_problem, run_version_cases
from registry_ui.core.diff import compare_templates
from registry_ui.core.errors import NotFoundError
from registry_ui.core.limits import MAX_METADATA_JSON_LENGTH, MAX_TEMPLATE_LENGTH
from registry_ui.core.messages import ContentError, messages_text, normalize_extra
from registry_ui.core.messages import render_messages as _render_messages
from registry_ui.core.names import InvalidNameError, validate_template_name
from registry_ui.core.native import NativeVersion, format_native, native_variables
from registry_ui.core.records import VersionRecord
from registry_ui.core.semver import SemVer
from registry_ui.core.stages import ModelStage, StageTransitionError
from registry_ui.core.template import (
    TemplateRenderError,
    TemplateValidationError,
    parse_template,
    unstorable_value_problem,
)
from registry_ui.registry import NewVersion, TemplateRegistry

__all__ = [
    "ModelStage",
    "NativePromptModel",
    "PromptModel",
    "StageTransitionError",
    "TemplateRenderError",
    "TemplateValidationError",
    "configure_mlflow_with_registry",
    "get_mlflow_client",
    "get_registry",
]


logger = logging.getLogger("registry_ui.prompt_model")

_registry_lock = threading.Lock()
_registry: TemplateRegistry | None = None


def get_registry() -> TemplateRegistry:
    """The process-wide registry (one gateway, one client, one cache)."""
    global _registry
    registry = _registry
    if registry is None:
        with _registry_lock:
            if _registry is None:
                from registry_ui.gateway import MlflowGateway

                _registry = TemplateRegistry(MlflowGateway())
            registry = _registry
    return registry


def configure_mlflow_with_registry(tracking_uri: str | None = None) -> str:
    """Point this process at a registry (default: MLFLOW_TRACKING_URI or var/mlflow.db)."""
    global _registry
    from registry_ui import gateway

    uri = gateway.configure_mlflow_with_registry(tracking_uri)
    with _registry_lock:
        _registry = None
    return uri


def get_mlflow_client():
    from registry_ui import gateway

    return gateway.get_mlflow_client()


class PromptModel:
    """One version of one prompt template, validated on creation."""

    def __init__(
        self,
        name: str,
        template: str | Sequence[Mapping[str, str]],
        version: str,
        stage: ModelStage | str = ModelStage.DEV,
        metadata: Mapping[str, Any] | None = None,
        *,
        model_config: Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
    ):
        """``template``: a text, or a chat template: a list of {"role", "content"} messages
        (each content a template). ``model_config`` (model_name, temperature, max_tokens, ...)
        and ``response_format`` (a JSON schema) are versioned with it."""
        self.name = name
        self.messages: list[dict[str, str]] | None = None
        if not isinstance(template, str) and isinstance(template, Sequence | list):
            self.messages = [dict(m) if isinstance(m, Mapping) else m for m in template]
            template = ""
        self.template = template
        self.model_config = dict(model_config) if model_config is not None else None
        self.response_format = dict(response_format) if response_format is not None else None
        self.version = version
        self.stage = ModelStage.parse(stage)
        self.metadata = dict(metadata or {})
        self.mlflow_version: str | None = None
        self.created_at: datetime | None = None
        self.run_id: str | None = None
        self.registered_by: str | None = None
        self.validate()

    # -- validation and rendering ------------------------------------------------------------

    def validate(self) -> bool:
        """Check name, version, template and metadata; raise a ValueError saying what is wrong."""
        validate_template_name(self.name)
        self.version = str(SemVer.parse(self.version))
        try:
            self.extra = normalize_extra(self.messages, self.model_config, self.response_format)
        except ContentError as error:
            raise ValueError(f"{self.name} {self.version}: {error}") from None
        if self.messages is not None:
            self.template = messages_text(self.extra["messages"])
        if not isinstance(self.template, str):
            raise TypeError(f"template must be a str, not {type(self.template).__name__}")
        if len(self.template) > MAX_TEMPLATE_LENGTH:
            raise ValueError(
                f"template is {len(self.template):,} characters long: MLflow keeps at most "
                f"{MAX_TEMPLATE_LENGTH:,}"
            )
        self._parsed = parse_template(self.template)
        # The hot path of a runtime service: str.format_map itself when no view is needed.
        self._format_map = self.template.format_map if self._parsed.is_plain_format else None
        _check_metadata(self.metadata)
        return True

    def get_template_variables(self) -> list[str]:
        """The root names render needs, in order of first appearance."""
        return list(self._parsed.variables)

    def get_template_fields(self):
        return self._parsed.fields

    def render(self, **kwargs: Any) -> str:
        if self._format_map is not None:
            try:
                return self._format_map(kwargs)
            except Exception:
                pass  # render again below, to raise an error that says what went wrong
        return self._parsed.render(kwargs)

    def render_messages(self, **values: Any) -> list[dict[str, str]]:
        """The messages with their contents rendered; a text template is one user message."""
        if self.messages is None:
            return [{"role": "user", "content": self.render(**values)}]
        return _render_messages(self.extra["messages"], values)

    def run_test_cases(self) -> list[CaseResult]:
        """Run the test cases in ``metadata["test_cases"]`` against this version's text.

        The design note's "test before promoting": each result says whether the case
        passed, the text it rendered and every expectation it missed.
        """
        return run_version_cases(self.template, self.metadata, extra=self.extra)

    def compare_with(self, other: PromptModel) -> dict[str, Any]:
        """What changes from this version to ``other`` (text, variables, metadata, bump)."""
        return compare_templates(
            self.template,
            other.template,
            old_metadata=self.metadata,
            new_metadata=other.metadata,
            old_version=self.version,
            new_version=other.version,
            old_extra=self.extra or None,
            new_extra=other.extra or None,
        )

    # -- registry ---------------------------------------------------------------------------

    def register(self, *, actor: str | None = None, reason: str = "") -> PromptModel:
        """Register this version in dev. The same content under the same version is a no-op."""
        [registered] = self.register_many([self], actor=actor, reason=reason)
        return registered

    @classmethod
    def register_many(
        cls, models: Sequence[PromptModel], *, actor: str | None = None, reason: str = ""
    ) -> list[PromptModel]:
        """Register a batch with one provenance run; nothing is written if any is refused."""
        for model in models:
            model.validate()
            if model.stage != ModelStage.DEV and model.mlflow_version is None:
                raise StageTransitionError(
                    f"{model.name} {model.version}: new versions are registered in dev; "
                    "promote them afterwards with promote_to_staging()"
                )
        new = [NewVersion(m.name, m.version, m.template, m.metadata, extra=m.extra) for m in models]
        results = get_registry().register_many(
            new, actor=actor or _default_actor(models), reason=reason
        )
        by_key = {(r.record.name, r.record.version): r.record for r in results}
        for model in models:
            model._apply(by_key[(model.name, model.version)])
        return list(models)

    def promote_to_staging(self, *, break_glass: bool = False, reason: str = "") -> Any:
        """Move this version to staging, or file a request for it (see ``_promote``)."""
        return self._promote(ModelStage.STAGING, break_glass=break_glass, reason=reason)

    def promote_to_production(self, *, break_glass: bool = False, reason: str = "") -> Any:
        """Move this version to production, or file a request for it (see ``_promote``)."""
        return self._promote(ModelStage.PRODUCTION, break_glass=break_glass, reason=reason)

    def _promote(self, target: ModelStage, *, break_glass: bool, reason: str) -> Any:
        """Governed by the dashboard where one is deployed (a governor is installed, see
        ``govern_promotions``): the promotion is filed as a request for review and the
        request is returned; nothing moves until reviewers approve it. Outside a dashboard
        deployment, or with ``break_glass=True`` and a ``reason``, the move is made now and
        this model returned; a break-glass move is audited and flagged for review.
        """
        if break_glass:
            reason = _break_glass_reason(reason)
        elif _governor is not None:
            filed = _governor.promotion(self.name, self.version, target)
            if filed is not None:
                return filed
        record = get_registry().promote(self.name, self.version, target)
        self._apply(record)
        if break_glass:
            _announce_break_glass(self.name, self.version, target, reason)
        return self

    @staticmethod
    def transition_many(
        moves: Iterable[tuple[str, str, ModelStage | str] | tuple[PromptModel, ModelStage | str]],
        *,
        break_glass: bool = False,
        reason: str = "",
    ) -> list[Any]:
        """Promote several versions: (name, version, stage) triples or (model, stage) pairs.

        Governed like promote_to_staging(): where a dashboard governs promotions, each move
        is filed as a request and the requests are returned.
        """
        triples = []
        for move in moves:
            if isinstance(move[0], PromptModel):
                triples.append((move[0].name, move[0].version, ModelStage.parse(move[1])))
            else:
                name, version, stage = move
                triples.append((name, version, ModelStage.parse(stage)))
        if break_glass:
            reason = _break_glass_reason(reason)
        elif _governor is not None:
            filed = [_governor.promotion(name, version, stage) for name, version, stage in triples]
            if all(request is not None for request in filed):
                return filed
        records = get_registry().transition_many(triples)
        if break_glass:
            for name, version, stage in triples:
                _announce_break_glass(name, version, stage, reason)
        return [PromptModel._from_record(record) for record in records]

    def publish_native(self, *, aliases: bool = True) -> str:
        """Publish this registered version as a native prompt version ({x} -> {{x}}) and,
        with ``aliases``, bring the native staging/production aliases in step with this
        template's stages. Returns the prompt's URI for ``mlflow.genai.load_prompt``.
        Raises NotPublishableError (a ValueError) with the reasons when the native format
        cannot express the template (format specs, indexing, attributes, literal braces).
        """
        registry = get_registry()
        published = registry.publish_native(self.name, self.version)
        if aliases:
            registry.sync_published_aliases(self.name)
        return f"prompts:/{published.name}/{published.number}"

    def get_lineage(self) -> list[dict[str, Any]]:
        """Every registered version of this template, oldest first ([] if none is)."""
        return [_lineage_entry(r) for r in get_registry().gateway.list_versions(self.name)]

    @classmethod
    def load_from_registry(
        cls,
        name: str,
        version: str | None = None,
        stage: ModelStage | str | None = None,
    ) -> PromptModel:
        """A version by semver, or the holder of a stage (default production); cached.

        Native prompts of MLflow's Prompt Registry load too: by name (the same version and
        stage rules; MLflow's number is accepted as version), or by URI,
        ``"prompts:/name@alias"`` or ``"prompts:/name/3"``; a NativePromptModel renders
        them exactly as ``mlflow.genai.load_prompt(...).format(...)`` does.
        Each call returns its own PromptModel, so callers may change it freely.
        """
        if name.startswith(NATIVE_URI_PREFIX):
            return NativePromptModel.load(name)
        if name in get_registry().native_names:
            return NativePromptModel.load(
                name, version=version, alias=ModelStage.parse(stage).alias if stage else None
            )
        try:
            cached = get_registry().load(name, version=version, stage=stage, build=cls._from_record)
        except (NotFoundError, InvalidNameError) as error:
            # Not a registry_ui template: maybe a native prompt of MLflow's Prompt Registry.
            try:
                return NativePromptModel.load(
                    name, version=version, alias=ModelStage.parse(stage).alias if stage else None
                )
            except NotFoundError:
                raise error from None
        return cached.__copy__()

    @classmethod
    def _from_record(cls, record: VersionRecord) -> PromptModel:
        extra = record.extra or {}
        model = cls(
            record.name,
            extra.get("messages") or record.template,
            record.version,
            record.stage,
            record.metadata,
            model_config=extra.get("model_config"),
            response_format=extra.get("response_format"),
        )
        model._apply(record)
        return model

    def _apply(self, record: VersionRecord) -> None:
        self.stage = record.stage
        self.mlflow_version = record.mlflow_version
        self.created_at = record.created_at
        self.run_id = record.run_id
        self.registered_by = record.registered_by

    def __copy__(self) -> PromptModel:
        clone = object.__new__(PromptModel)
        clone.__dict__.update(self.__dict__)
        clone.metadata = dict(self.metadata)
        if self.messages is not None:
            clone.messages = [dict(m) for m in self.messages]
        return clone

    def __repr__(self) -> str:
        return f"PromptModel(name={self.name!r}, version={self.version!r}, stage={self.stage!s})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PromptModel):
            return NotImplemented
        return (self.name, self.version, self.template, self.metadata, self.extra) == (
            other.name,
            other.version,
            other.template,
            other.metadata,
            other.extra,
        )

    __hash__ = None  # mutable


def _check_metadata(metadata: dict[str, Any]) -> None:
    bad_keys = [k for k in metadata if not isinstance(k, str)]
    if bad_keys:
        raise ValueError(f"metadata keys must be strings, got {bad_keys!r}")
    try:
        encoded = json.dumps(metadata, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"metadata must be JSON (strings, numbers, booleans, null, lists, objects): {error}"
        ) from None
    if problem := unstorable_value_problem(metadata, "metadata"):
        raise ValueError(problem)
    if len(encoded) > MAX_METADATA_JSON_LENGTH:
        # Says how much of it the test cases take, when they are what makes it too large.
        raise ValueError(
            case_set_size_problem(metadata)
            or f"metadata is {len(encoded):,} characters as JSON: at most "
            f"{MAX_METADATA_JSON_LENGTH:,} are kept"
        )


NATIVE_URI_PREFIX = "prompts:/"


class NativePromptModel(PromptModel):
    """One version of a native prompt (MLflow's Prompt Registry), read-only.

    ``render(**values)`` returns what ``load_prompt(...).format(**values)`` returns: a text,
    or for a chat prompt the list of messages. Its aliases move through the dashboard's
    requests (docs/mlflow-prompts.md), not from here.
    """

    native = True

    def __init__(self, record: NativeVersion, semver: str):
        self.name = record.name
        self.native_template = record.template
        self.messages = [dict(m) for m in record.template] if record.is_chat else None
        self.template = record.text
        self.model_config = record.model_config
        self.response_format = record.response_format
        self.extra = record.extra
        self.version = semver
        self.mlflow_version = str(record.number)
        self.aliases = record.aliases
        self.stage = (
            ModelStage.PRODUCTION
            if "production" in record.aliases
            else ModelStage.STAGING
            if "staging" in record.aliases
            else ModelStage.DEV
        )
        self.metadata = {"tags": dict(record.tags)}
        self.commit_message = record.commit_message
        self.created_at = record.created_at
        self.registered_by = record.created_by
        self.run_id = None
        self.is_jinja = record.is_jinja

    @classmethod
    def load(
        cls, name: str, *, version: str | None = None, alias: str | None = None
    ) -> NativePromptModel:
        if name.startswith(NATIVE_URI_PREFIX):
            rest = name[len(NATIVE_URI_PREFIX) :]
            if "@" in rest:
                name, alias = rest.split("@", 1)
            elif "/" in rest:
                name, version = rest.rsplit("/", 1)
            else:
                name = rest
        cached = get_registry().load_native(name, alias=alias, version=version, build=cls)
        return cached.__copy__()

    def validate(self) -> bool:
        return True

    def get_template_variables(self) -> list[str]:
        return native_variables(self.native_template)

    def render(self, **kwargs: Any) -> Any:
        template = self.native_template if self.messages is None else self.messages
        if self.is_jinja:
            from registry_ui.gateway import MlflowGateway

            return MlflowGateway.format_jinja(template, kwargs)
        return format_native(template, kwargs)

    def render_messages(self, **values: Any) -> list[dict[str, str]]:
        rendered = self.render(**values)
        if isinstance(rendered, str):
            return [{"role": "user", "content": rendered}]
        return rendered

    def register(self, **_: Any) -> PromptModel:
        raise TypeError(
            f"{self.name} is a native prompt: register its versions with "
            "mlflow.genai.register_prompt; registry_ui mirrors and reviews them"
        )

    def _promote(self, target: ModelStage, *, break_glass: bool, reason: str) -> Any:
        raise TypeError(
            f"{self.name} is a native prompt: its {target.value} alias moves through a request "
            "in the dashboard (docs/mlflow-prompts.md)"
        )

    def __copy__(self) -> NativePromptModel:
        clone = object.__new__(NativePromptModel)
        clone.__dict__.update(self.__dict__)
        clone.metadata = {"tags": dict(self.metadata["tags"])}
        if self.messages is not None:
            clone.messages = [dict(m) for m in self.messages]
        return clone

    def __repr__(self) -> str:
        return (
            f"NativePromptModel(name={self.name!r}, version={self.version!r}, "
            f"mlflow_version={self.mlflow_version!r}, aliases={list(self.aliases)!r})"
        )


class PromotionGovernor(Protocol):
    """What a dashboard deployment installs to govern the library's promotions."""

    def promotion(self, name: str, version: str, target: ModelStage) -> Any | None:
        """File the promotion as a request and return it; None: not governed, move now."""

    def break_glass(self, name: str, version: str, target: ModelStage, reason: str) -> None:
        """Audit and flag a move made without review."""


_governor: PromotionGovernor | None = None


def govern_promotions(governor: PromotionGovernor | None) -> None:
    """Install (or remove, with None) the governor of PromptModel's promotions."""
    global _governor
    _governor = governor


def _break_glass_reason(reason: str) -> str:
    reason = str(reason or "").strip()
    if not reason:
        raise ValueError(
            "break_glass=True moves a stage without review, so it needs reason='...' saying "
            "why; the move is audited with it and flagged for reviewers"
        )
    return reason


def _announce_break_glass(name: str, version: str, target: ModelStage, reason: str) -> None:
    if _governor is not None:
        _governor.break_glass(name, version, target, reason)
    else:
        logger.warning(
            "break-glass promotion of %s %s to %s without review: %s", name, version, target, reason
        )


def _default_actor(models: Sequence[PromptModel]) -> str:
    authors = {str(m.metadata.get("author")) for m in models if m.metadata.get("author")}
    return authors.pop() if len(authors) == 1 else "registry_ui"


def _lineage_entry(record: VersionRecord) -> dict[str, Any]:
    return {
        "version": record.version,
        "created_at": record.created_at,
        "stage": record.stage.value,
        "mlflow_version": record.mlflow_version,
        "registered_by": record.registered_by,
        "author": record.metadata.get("author"),
        "run_id": record.run_id,
        "content_sha256": record.content_sha256,
    }


__all__ += ["NotFoundError"]
