"""Reads for the operations pages."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404

from registry_ui.web.models import Batch, Operation, PromotionRequest

BATCHES_PER_PAGE = 25


TARGETS_SHOWN = 3  # templates a batch's row names; "and N more" says the rest


@dataclass
class BatchRow:
    batch: Batch
    release: PromotionRequest | None = None
    requests: list[PromotionRequest] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    # "template version" of its first operations, so the list names what a batch touches.
    targets: list[str] = field(default_factory=list)

    @property
    def more_targets(self) -> int:
        return max(0, self.batch.total - len(self.targets))

    @property
    def finished(self) -> bool:
        return self.batch.status in (Batch.Status.SUCCEEDED, Batch.Status.FAILED)

    @property
    def done(self) -> int:
        return self.batch.succeeded + self.batch.failed

    @property
    def release_items(self) -> list[dict]:
        if self.release is None:
            return []
        return list((self.release.report or {}).get("items", {}).values())

    @property
    def release_moved(self) -> int:
        return sum(1 for item in self.release_items if item.get("status") == "moved")


def batch_rows(batches: list[Batch]) -> list[BatchRow]:
    """What each batch carries out: one query for the requests behind its operations."""
    rows = {batch.pk: BatchRow(batch) for batch in batches}
    if not rows:
        return []
    linked = (
        Operation.objects.filter(batch_id__in=rows)
        .order_by("batch_id", "position")
        .values_list("batch_id", "kind", "request_id", "template_name", "version")
    )
    request_ids: dict[int, int] = {}
    for batch_id, kind, request_id, template_name, version in linked:
        row = rows[batch_id]
        if kind not in row.kinds:
            row.kinds.append(kind)
        if len(row.targets) < TARGETS_SHOWN and not request_id:
            row.targets.append(f"{template_name} {version}".strip())
        if request_id:
            # A release's own operation comes first (position 0); the slots it takes for
            # each template follow, tied to its items.
            request_ids.setdefault(batch_id, request_id)
    requests = (
        PromotionRequest.objects.filter(pk__in=request_ids.values())
        .select_related("template", "version")
        .annotate(item_count=Count("items"))
    )
    by_id = {request.pk: request for request in requests}
    for batch_id, request_id in request_ids.items():
        request = by_id.get(request_id)
        if request is None:
            continue
        if request.kind == PromotionRequest.Kind.RELEASE:
            rows[batch_id].release = request
        rows[batch_id].requests.append(request)
    return list(rows.values())


def batch_page(page_number, *, status: str = ""):
    batches = Batch.objects.order_by("-created_at", "-id")
    if status == "running":
        batches = batches.filter(status__in=[Batch.Status.PENDING, Batch.Status.RUNNING])
    elif status:
        batches = batches.filter(status=status)
    page = Paginator(batches, BATCHES_PER_PAGE).get_page(page_number)
    return page, batch_rows(list(page.object_list))


def failed_operations(limit: int = 50) -> list[Operation]:
    return list(
        Operation.objects.filter(status=Operation.Status.FAILED)
        .select_related("batch")
        .order_by("-finished_at")[:limit]
    )


def batch_detail(pk: int) -> tuple[BatchRow, list[Operation]]:
    try:
        batch = Batch.objects.get(pk=pk)
    except Batch.DoesNotExist:
        raise Http404(f"no batch {pk}") from None
    [row] = batch_rows([batch])
    operations = list(batch.operations.order_by("position", "created_at"))
    return row, operations
