"""{% experiments_for template %}: a template's A/B experiments, for its page (one query)."""

from __future__ import annotations

from django import template as django_template
from django.utils import timezone

from registry_ui.web.models import Experiment

register = django_template.Library()


@register.inclusion_tag("registry_ui/experiments/_for_template.html", takes_context=True)
def experiments_for(context, template):
    user = context["request"].user
    if not user.has_perm("registry_web.view_metrics"):
        return {"shown": False}
    now = timezone.now()
    rows = list(Experiment.objects.filter(template=template).order_by("-start_at")[:10])
    for row in rows:
        if row.status == Experiment.Status.STOPPED:
            row.state = "stopped"
        elif now < row.start_at:
            row.state = "scheduled"
        else:
            row.state = "running" if now < row.stop_at else "ended"
    return {
        "shown": True,
        "template": template,
        "experiments": rows,
        "may_define": user.has_perm("registry_web.define_experiment"),
    }
