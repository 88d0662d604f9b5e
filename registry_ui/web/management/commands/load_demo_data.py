"""Load the demo users and templates on the first run (make run calls this every time)."""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from registry_ui import prompt_model
from registry_ui.core.errors import RegistryError
from registry_ui.prompt_model import PromptModel
from registry_ui.web.experiments import definitions, ingestion, mlflow_metrics, publishing
from registry_ui.web.experiments.definitions import VariantLine
from registry_ui.web.management import outbox
from registry_ui.web.management.demo import (
    DEMO_NATIVE_ALIASES,
    DEMO_NATIVE_PROMPT,
    DEMO_NATIVE_VERSIONS,
    DEMO_TEMPLATES,
    DEMO_USERS,
)
from registry_ui.web.models import (
    Experiment,
    NativeAliasRequest,
    Operation,
    PromotionRequest,
    ServiceToken,
    TemplateVersion,
)
from registry_ui.web.operations.tasks import run_operation
from registry_ui.web.prompts import native
from registry_ui.web.prompts.mirror import sync_registry
from registry_ui.web.reviews import services as reviews

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.txt"


def _shown(path) -> str:
    """A path as a newcomer reads it: relative to where make run runs, when it is inside."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Command(BaseCommand):
    help = "Create demo users and register demo templates in every stage (first run only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="load again even if demo users exist"
        )

    def handle(self, *args, force: bool = False, **options):
        User = get_user_model()
        loaded = CREDENTIALS_FILE.exists()
        if not force and loaded and User.objects.filter(username=DEMO_USERS[0][0]).exists():
            self.stdout.write(
                f"Demo data already loaded; the demo sign-ins are in {_shown(CREDENTIALS_FILE)}"
            )
            return
        # Users first: the demo's history is made by them (alice asks, bob and carol
        # approve); their sign-ins, saved last, mark a completed first run.
        credentials = self._create_users(User)
        mail_before = outbox.count()
        try:
            counts = load_demo_templates()
            experiment = load_demo_experiment()
            requests = load_demo_requests()  # after the experiment: their gate reads it
            native_request = load_demo_native()
        except RegistryError as error:
            raise CommandError(f"could not register the demo templates: {error}") from error
        self._save_credentials(credentials)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {counts['templates']} templates, {counts['versions']} versions; "
                f"{counts['moves']} stage moves made through requests and approvals."
            )
        )
        self.stdout.write(
            f"  experiment {experiment['key']}: {experiment['events']:,} outcomes over "
            f"{experiment['days']} days"
        )
        self.stdout.write(f"  waiting for bob and carol: {', '.join(requests)}")
        self.stdout.write(
            f"  native MLflow prompt {DEMO_NATIVE_PROMPT}: adopted with production on 1.0.0; "
            f"waiting for bob or carol: {native_request}"
        )
        mails = outbox.count() - mail_before
        if mails:
            where = _shown(outbox.path())
            self.stdout.write(f"  {mails} emails from the demo's requests written to {where}")
        self.stdout.write(f"Sign in as (also in {_shown(CREDENTIALS_FILE)}):")
        for username, role, password in credentials:
            self.stdout.write(f"  {username:<8} {password:<16} {role}")

    @transaction.atomic
    def _create_users(self, User):
        credentials = []
        for username, role, is_admin in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=username)
            user.email = f"{username}@example.com"
            user.is_staff = user.is_superuser = is_admin
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=f"{role}s")])  # authors, reviewers, ...
            credentials.append((username, role, password))
        return credentials

    def _save_credentials(self, credentials):
        CREDENTIALS_FILE.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{u}\t{p}\t{r}" for u, r, p in credentials]
        CREDENTIALS_FILE.write_text("username\tpassword\trole\n" + "\n".join(lines) + "\n")
        CREDENTIALS_FILE.chmod(0o600)


def load_demo_templates() -> dict[str, int]:
    """Register the demo versions, then walk them to their stages as the team would: alice
    asks, reviewers approve, the worker carries the change out (in this process). The
    lineage reads like real use, and nothing shows as changed outside the dashboard. Safe to
    run again: a run that stopped half way resumes with the moves still ahead."""
    User = get_user_model()
    alice = User.objects.get(username="alice")
    reviewers = list(User.objects.filter(username__in=("bob", "carol", "admin")).order_by("pk"))
    models = [
        PromptModel(name, template, version, metadata=metadata)
        for name, versions in DEMO_TEMPLATES.items()
        for version, template, metadata, _ in versions
    ]
    PromptModel.register_many(models, actor="alice", reason="first versions of the demo")
    sync_registry()  # the dashboard sees the new versions, as its sync would
    moves = 0
    with _workers_in_process():
        for name, versions in DEMO_TEMPLATES.items():
            for version, _, metadata, path in versions:
                for target in path:
                    moves += _move_through_review(
                        name, version, target, alice, reviewers, author=metadata["author"]
                    )
    return {"templates": len(DEMO_TEMPLATES), "versions": len(models), "moves": moves}


# Where each stage sits on the way to production (archived: it was there and was replaced).
_REACHED = {"dev": 0, "staging": 1, "production": 2, "archived": 3}


def _move_through_review(name, version, target, requester, reviewers, *, author) -> int:
    row = TemplateVersion.objects.get(template__name=name, version=version)
    if _REACHED[row.stage] >= _REACHED[target]:
        return 0
    request = PromotionRequest.objects.filter(
        version=row, target_stage=target, status__in=PromotionRequest.ACTIVE
    ).first() or reviews.file_request(
        requester,
        template_name=name,
        version=version,
        target=target,
        justification=f"{version} is ready for {target}: checked on Threads.",
    )
    approvers = [user for user in reviewers if user.get_username() != author]
    for reviewer in approvers[: request.required_approvals]:
        reviews.approve(reviewer, request.pk, comment="Reads well; approved.")
    # The last approval sent the operation after its commit; inside an outer transaction
    # (a test's) that commit has not come yet, so the worker's code is run here instead.
    for operation in Operation.objects.filter(request=request, status=Operation.Status.PENDING):
        run_operation(str(operation.pk))
    row.refresh_from_db()
    if row.stage != target:
        raise CommandError(f"{name} {version} did not reach {target}: see request #{request.pk}")
    return 1


@contextmanager
def _workers_in_process():
    """The workers' own code carries out the approved changes, here, even with REDIS_URL
    set (no Celery worker needs to run while the demo loads)."""
    from registry_ui.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


# (template, version, target, justification): filed by alice, waiting for the reviewers.
DEMO_REQUESTS = [
    (
        "persona/entrepreneur/hook-generator",
        "1.2.0",
        "production",
        "The call to action on its own line: see the experiment against 1.1.0.",
    ),
    (
        "persona/entrepreneur/hook-generator",
        "2.0.0",
        "staging",
        "Hooks without hashtags, for platforms that bury them.",
    ),
]


def load_demo_requests() -> list[str]:
    """Open requests in the reviewers' inbox; one already open is left as it is."""
    from django.contrib.auth import get_user_model

    alice = get_user_model().objects.get(username="alice")
    filed = []
    for name, version, target, justification in DEMO_REQUESTS:
        request = PromotionRequest.objects.filter(
            template__name=name,
            version__version=version,
            target_stage=target,
            status__in=PromotionRequest.ACTIVE,
        ).first() or reviews.file_request(
            alice, template_name=name, version=version, target=target, justification=justification
        )
        filed.append(f"#{request.pk} {name} {version} to {target}")
    return filed


DEMO_EXPERIMENT = "hook-cta-own-line"


def load_demo_experiment(*, units: int = 6000, days: int = 14, seed: int = 7) -> dict:
    """A running experiment on the hook generator, production 1.1.0 against staging 1.2.0,
    with two weeks of believable outcomes; safe to run again (it is made once)."""
    import hashlib
    import random
    from datetime import timedelta

    from django.utils import timezone

    existing = Experiment.objects.filter(key=DEMO_EXPERIMENT).first()
    if existing is not None:
        return {"key": existing.key, "events": 0, "days": days}
    now = timezone.now()
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    experiment = definitions.create_experiment(
        actor="demo-loader",
        template_name="persona/entrepreneur/hook-generator",
        key=DEMO_EXPERIMENT,
        title="Call to action on its own line",
        hypothesis="Putting the call to action on its own line (1.2.0) lifts engagement.",
        variants=[VariantLine("control", "1.1.0", 50), VariantLine("treatment", "1.2.0", 50)],
        metric="engagement",
        kind="rate",
        min_samples=2000,
        target=0.06,
        start_at=start,
        stop_at=start + timedelta(days=days + 7),
    )
    config = publishing.config_of(experiment)
    service, _ = ServiceToken.objects.get_or_create(
        name="demo-loader",
        defaults={
            "token_sha256": hashlib.sha256(random.randbytes(32)).hexdigest(),
            "prefix": "(demo)",
            "created_by": "demo-loader",
        },
    )
    service.experiments.add(experiment)  # a token reports only the experiments it is given
    rng = random.Random(seed)
    engagement = {"control": 0.061, "treatment": 0.069}
    events = []
    for unit in range(units):
        unit_id = f"demo-user-{unit}"
        variant = config.assign(unit_id).name
        # Traffic grows a little over the fortnight; each unit sees the hook 1-3 times.
        for _ in range(rng.choice((1, 1, 2, 3))):
            day = min(int(days * rng.random() ** 0.9), days - 1)
            moment = start + timedelta(days=day, seconds=rng.randrange(86_400))
            if moment > now:
                moment = now - timedelta(seconds=rng.randrange(3600))
            engaged = rng.random() < engagement[variant]
            seconds = max(1.0, rng.gauss(16 if variant == "treatment" else 15, 6))
            for metric, value in (("engagement", int(engaged)), ("read_seconds", seconds)):
                events.append(
                    {
                        "experiment": DEMO_EXPERIMENT,
                        "variant": variant,
                        "unit_id": unit_id,
                        "metric": metric,
                        "value": round(value, 1),
                        "time": moment.isoformat(),
                        "event_id": f"demo-{len(events)}",
                    }
                )
    for first in range(0, len(events), ingestion.MAX_BATCH):
        ingestion.record_outcomes(service, {"events": events[first : first + ingestion.MAX_BATCH]})
    mlflow_metrics.log_metrics_to_mlflow(experiment.pk)
    return {"key": DEMO_EXPERIMENT, "events": len(events), "days": days}


def load_demo_native() -> str:
    """A native prompt registered with MLflow's own API, production set in MLflow, then
    adopted as import_prompts does; alice asks to move staging to its chat version. Safe
    to run again: an existing prompt is not registered twice, adoption is idempotent and an
    open request is left as it is."""
    from django.contrib.auth import get_user_model

    gateway = prompt_model.get_registry().gateway
    if not gateway.native_versions(DEMO_NATIVE_PROMPT):
        for template, message, model_config, tags in DEMO_NATIVE_VERSIONS:
            gateway.register_native(
                DEMO_NATIVE_PROMPT,
                template,
                commit_message=message,
                model_config=model_config,
                tags=tags,
            )
        for alias, number in DEMO_NATIVE_ALIASES.items():
            gateway.set_native_alias(DEMO_NATIVE_PROMPT, alias, number)
    native.adopt_prompts(prefix=DEMO_NATIVE_PROMPT, actor="admin")
    request = NativeAliasRequest.objects.filter(
        prompt__name=DEMO_NATIVE_PROMPT, alias="staging", state=NativeAliasRequest.State.OPEN
    ).first() or native.file_alias_request(
        get_user_model().objects.get(username="alice"),
        prompt=DEMO_NATIVE_PROMPT,
        version="1.1.0",
        alias="staging",
        reason="Answers as the company, as a chat with a model; its test case passes.",
    )
    return f"staging to {request.semver}"
