"""Service tokens scoped to experiments; outcome event ids unique per experiment.

Tokens that exist keep reporting the experiments that exist (so nothing stops on upgrade);
experiments defined from now on name the services that may report them. Outcomes that two
services sent with the same event id for the same experiment were counted twice: the later
copies are removed and taken out of their day's aggregate before the new constraint.
"""

import datetime

from django.db import migrations, models


def grant_existing_experiments(apps, schema_editor):
    ServiceToken = apps.get_model("registry_web", "ServiceToken")
    Experiment = apps.get_model("registry_web", "Experiment")
    experiments = list(Experiment.objects.all())
    for token in ServiceToken.objects.all():
        token.experiments.set(experiments)


def drop_double_counted_outcomes(apps, schema_editor):
    OutcomeEvent = apps.get_model("registry_web", "OutcomeEvent")
    OutcomeAggregate = apps.get_model("registry_web", "OutcomeAggregate")
    doubled = (
        OutcomeEvent.objects.values("experiment_id", "event_id")
        .annotate(n=models.Count("id"), first=models.Min("id"))
        .filter(n__gt=1)
    )
    for group in doubled.iterator():
        copies = OutcomeEvent.objects.filter(
            experiment_id=group["experiment_id"], event_id=group["event_id"]
        ).exclude(pk=group["first"])
        for copy in copies:
            aggregate = OutcomeAggregate.objects.filter(
                variant_id=copy.variant_id,
                metric=copy.metric,
                day=copy.occurred_at.astimezone(datetime.UTC).date(),
            ).first()
            if aggregate is not None:
                aggregate.count -= 1
                aggregate.sum -= copy.value
                aggregate.sumsq -= copy.value * copy.value
                aggregate.save(update_fields=["count", "sum", "sumsq"])
            copy.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry_web", "0010_check_comparisons"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="outcomeevent",
            name="one_outcome_per_service_event_id",
        ),
        migrations.AddField(
            model_name="servicetoken",
            name="experiments",
            field=models.ManyToManyField(
                blank=True, related_name="reporting_services", to="registry_web.experiment"
            ),
        ),
        migrations.RunPython(grant_existing_experiments, migrations.RunPython.noop),
        migrations.RunPython(drop_double_counted_outcomes, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="outcomeevent",
            constraint=models.UniqueConstraint(
                fields=("experiment", "event_id"), name="one_outcome_per_experiment_event_id"
            ),
        ),
    ]
