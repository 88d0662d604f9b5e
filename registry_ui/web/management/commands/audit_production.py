from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from registry_ui.web.audit import filters as audit_filters
from registry_ui.web.audit import history


class Command(BaseCommand):
    help = "Which version of a template was in production at a moment, who moved it and why."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the template name, e.g. persona/entrepreneur/hook")
        parser.add_argument(
            "--at", default=None, help="ISO 8601 date-time, naive is UTC (default: now)"
        )

    def handle(self, *args, name, at, **options):
        try:
            when = audit_filters.parse_moment(at, name="--at") if at else timezone.now()
        except ValueError as error:
            raise CommandError(str(error)) from None
        held = history.production_at(name, when)
        moment = when.isoformat(timespec="seconds")
        if held is None:
            self.stdout.write(f"{name} at {moment}: no version was in production")
            return
        line = (
            f"{name} at {moment}: {held['version']} in production since "
            f"{held['since'].isoformat(timespec='seconds')}, moved by {held['moved_by']} "
            f"({held['source']})"
        )
        if held["request_id"] is not None:
            approvers = ", ".join(held["approved_by"]) or "nobody"
            line += f", request #{held['request_id']} approved by {approvers}: {held['why']}"
        else:
            line += ", no approved request"
        self.stdout.write(line)
