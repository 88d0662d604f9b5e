"""{% experiments_for template %}: a template's (or a native prompt's) A/B experiments, for
its page (one query)."""

from __future__ import annotations

from django import template as django_template
from django.utils import timezone

from registry_ui.web import permissions
from registry_ui.web.models import Experiment, NativePrompt

register = django_template.Library()


@register.inclusion_tag("registry_ui/experiments/_for_template.html", takes_context=True)
def experiments_for(context, template):
    user = context["request"].user
    if not permissions.may_read_metrics(user):
        return {"shown": False}
    now = timezone.now()
    native = isinstance(template, NativePrompt)
    on = {"native_prompt": template} if native else {"template": template}
    rows = list(Experiment.objects.filter(**on).order_by("-start_at")[:10])
    for row in rows:
        row.state_now = row.state(now)
    return {
        "shown": True,
        "template": template,
        "native": native,
        "experiments": rows,
        "may_define": permissions.may_define_experiment(user),
    }
