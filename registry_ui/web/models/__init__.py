"""The registry_web app's models, one module per domain, re-exported here.

The app label, table names and migration history are those of the single models.py this
package replaced: Django finds every model through this package.
"""

from registry_ui.web.models.api import SCOPES as API_SCOPES
from registry_ui.web.models.api import ApiToken, IdempotentCall
from registry_ui.web.models.audit import (
    AppendOnlyError,
    AuditEvent,
    AuditEventQuerySet,
    starts_with,
)
from registry_ui.web.models.checks import CheckComparison, CheckRun
from registry_ui.web.models.experiments import (
    Experiment,
    ExperimentVariant,
    OutcomeAggregate,
    OutcomeEvent,
    RunMetric,
    ServiceToken,
)
from registry_ui.web.models.native import (
    NativeAliasRequest,
    NativeCheckRun,
    NativePrompt,
    NativePromptVersion,
)
from registry_ui.web.models.operations import Batch, Operation
from registry_ui.web.models.prompts import (
    MlflowProblem,
    Stage,
    Template,
    TemplateFlag,
    TemplateVersion,
    VersionSample,
)
from registry_ui.web.models.reviews import Approval, PromotionRequest, RequestComment
from registry_ui.web.models.webhooks import WebhookDelivery

__all__ = [
    "API_SCOPES",
    "ApiToken",
    "AppendOnlyError",
    "Approval",
    "AuditEvent",
    "AuditEventQuerySet",
    "Batch",
    "CheckComparison",
    "CheckRun",
    "Experiment",
    "ExperimentVariant",
    "IdempotentCall",
    "MlflowProblem",
    "NativeAliasRequest",
    "NativeCheckRun",
    "NativePrompt",
    "NativePromptVersion",
    "Operation",
    "OutcomeAggregate",
    "OutcomeEvent",
    "PromotionRequest",
    "RequestComment",
    "RunMetric",
    "ServiceToken",
    "Stage",
    "Template",
    "TemplateFlag",
    "TemplateVersion",
    "VersionSample",
    "WebhookDelivery",
    "starts_with",
]
