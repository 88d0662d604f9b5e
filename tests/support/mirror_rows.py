"""Mirror rows written straight into the database, for page tests that need no MLflow."""

from __future__ import annotations

import hashlib
import uuid

from django.contrib.auth.models import User
from django.test import Client

from registry_ui.core.template import parse_template
from registry_ui.web.models import Batch, Operation, Template, TemplateVersion
from tests.support.users import member as member  # re-exported: page tests import it here

HTMX = {"HX-Request": "true"}
METADATA = {
    "author": "writer",
    "purpose": "greets people",
    "tested_on": "threads",
    "performance_metrics": {"engagement_rate": 0.05},
}


def signed_in(user: User, client_class=Client, **kwargs) -> Client:
    client = client_class(**kwargs)
    client.force_login(user)
    return client


def template(name: str) -> Template:
    return Template.objects.create(name=name, registered_model_name=name.replace("/", "."))


def version(
    row: Template,
    number: str,
    text: str = "Hi {who}",
    *,
    stage: str = "dev",
    metadata: dict | None = None,
    author: str = "writer",
    **extra,
) -> TemplateVersion:
    major, minor, patch = (int(n) for n in number.split("."))
    row_version = TemplateVersion.objects.create(
        template=row,
        version=number,
        major=major,
        minor=minor,
        patch=patch,
        stage=stage,
        text=text,
        variables=list(parse_template(text).variables),
        metadata=metadata if metadata is not None else {**METADATA, "author": author},
        author=author,
        content_sha256=hashlib.sha256(f"{row.name}{number}{text}".encode()).hexdigest(),
        mlflow_version=str(patch + 1),
        **extra,
    )
    Template.objects.filter(pk=row.pk).note_changes()  # as the mirror does
    return row_version


def batch(actor: str = "alice", *operations: dict, **fields) -> Batch:
    """A batch with these operations (each a dict of Operation fields)."""
    row = Batch.objects.create(actor=actor, total=len(operations), **fields)
    for position, values in enumerate(operations):
        Operation.objects.create(
            id=uuid.uuid4(),
            batch=row,
            position=position,
            **{"kind": Operation.Kind.REGISTER, "version": "1.0.0", **values},
        )
    return row
