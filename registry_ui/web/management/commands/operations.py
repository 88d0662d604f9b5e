from django.core.management.base import BaseCommand, CommandError

from registry_ui.web.models import Operation
from registry_ui.web.operations import queue


class Command(BaseCommand):
    help = "List failed operations, or retry or cancel them by id (or --all-failed)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "retry", "cancel"])
        parser.add_argument("ids", nargs="*", help="operation ids")
        parser.add_argument("--all-failed", action="store_true", help="every failed operation")
        parser.add_argument("--actor", default="cli", help="who is acting, for the audit trail")

    def handle(self, *args, action, ids, all_failed, actor, **options):
        failed = Operation.objects.filter(status=Operation.Status.FAILED)
        if action == "list":
            for op in failed.order_by("created_at"):
                self.stdout.write(f"{op.id}  {op}  attempts={op.attempts}  {op.last_error}")
            self.stdout.write(f"{failed.count()} failed operation(s)")
            return
        if all_failed:
            ids = [str(pk) for pk in failed.values_list("id", flat=True)]
        if not ids:
            raise CommandError("name the operation ids, or pass --all-failed")
        if action == "retry":
            done = queue.retry_failed(ids, actor=actor)
        else:
            done = queue.cancel_failed(ids, actor=actor)
        self.stdout.write(f"{action}: {done} of {len(ids)} operation(s)")
        if done < len(ids):
            raise CommandError("some operations were not failed (or pending, for cancel)")
