"""Move experiment metrics between the dashboard and MLflow now, instead of waiting for
the periodic tasks (Celery beat, every EXPERIMENT_LOG_INTERVAL_SECONDS)."""

from django.core.management.base import BaseCommand, CommandError

from registry_ui.core.errors import RegistryError
from registry_ui.web.experiments import mlflow_metrics


class Command(BaseCommand):
    help = (
        "Log the experiments' daily figures to MLflow runs tagged with template and version, "
        "and import metrics logged to MLflow runs tagged with a template version."
    )

    def add_arguments(self, parser):
        parser.add_argument("--log-only", action="store_true", help="do not import")
        parser.add_argument("--import-only", action="store_true", help="do not log")

    def handle(self, *args, log_only: bool = False, import_only: bool = False, **options):
        try:
            if not import_only:
                days = sum(
                    mlflow_metrics.log_metrics_to_mlflow(experiment_id)
                    for experiment_id in mlflow_metrics.experiments_to_log()
                )
                self.stdout.write(f"logged {days} variant-day(s) to MLflow")
            if not log_only:
                found = mlflow_metrics.import_run_metrics()
                self.stdout.write(
                    "imported {metrics} metric(s) from {runs} run(s) tagged with a template "
                    "version".format(**found)
                )
        except RegistryError as error:
            raise CommandError(f"MLflow: {error}") from error
