"""Load the demo users and templates on the first run (make run calls this every time)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from registry_ui.core.errors import RegistryError
from registry_ui.prompt_model import ModelStage, PromptModel, get_registry
from registry_ui.web.experiments import definitions, ingestion, mlflow_metrics, publishing
from registry_ui.web.experiments.definitions import VariantLine
from registry_ui.web.management.demo import DEMO_TEMPLATES, DEMO_USERS
from registry_ui.web.models import AuditEvent, Experiment, PromotionRequest, ServiceToken
from registry_ui.web.prompts.mirror import mirror_template, sync_registry
from registry_ui.web.reviews import services as reviews

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.txt"


class Command(BaseCommand):
    help = "Create demo users and register demo templates in every stage (first run only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="load again even if demo users exist"
        )

    def handle(self, *args, force: bool = False, **options):
        User = get_user_model()
        if not force and User.objects.filter(username=DEMO_USERS[0][0]).exists():
            self.stdout.write(
                f"Demo data already loaded; the demo sign-ins are in {CREDENTIALS_FILE}"
            )
            return
        try:
            counts = load_demo_templates()
            experiment = load_demo_experiment()
        except RegistryError as error:
            raise CommandError(f"could not register the demo templates: {error}") from error
        # Users last: their existence marks a completed first run.
        credentials = self._create_users(User)
        self._save_credentials(credentials)
        requests = load_demo_requests()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {counts['templates']} templates, {counts['versions']} versions in "
                "dev, staging, production and archived."
            )
        )
        self.stdout.write(
            f"Demo experiment {experiment['key']}: {experiment['events']:,} outcomes over "
            f"{experiment['days']} days (Experiments page)."
        )
        self.stdout.write(
            f"Demo requests waiting for bob and carol: {', '.join(requests)} (Requests page)."
        )
        self.stdout.write(f"Demo sign-ins (also saved in {CREDENTIALS_FILE}):")
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
    """Register the demo versions and walk them to their stages; safe to run again."""
    models = [
        PromptModel(name, template, version, metadata=metadata)
        for name, versions in DEMO_TEMPLATES.items()
        for version, template, metadata, _ in versions
    ]
    PromptModel.register_many(models, actor="demo-loader", reason="demo data")
    stages_by_key = {
        (name, version): path
        for name, versions in DEMO_TEMPLATES.items()
        for version, _, _, path in versions
    }
    for model in models:
        stage = model.stage
        for target in stages_by_key[(model.name, model.version)]:
            # A run that stopped half way resumes: only moves still ahead are made. The demo
            # sets up a history, so it moves stages itself rather than filing requests.
            if (target, stage) in (("staging", ModelStage.DEV), ("production", ModelStage.STAGING)):
                stage = get_registry().promote(model.name, model.version, target).stage
            else:
                continue
            # The dashboard reads the mirror; it sees each move, as the sync would, so it
            # knows which versions once held production (a rollback may bring them back).
            mirror_template(
                model.name,
                get_registry().gateway.list_versions(model.name),
                source=AuditEvent.Source.EXTERNAL,
                actor="demo-loader",
            )
    sync_registry()  # versions that never moved
    return {"templates": len(DEMO_TEMPLATES), "versions": len(models)}


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
