"""A state machine over promotion requests, approvals, rollbacks, releases and changes made
straight in MLflow, against a real MLflow (SQLite store).

Hypothesis files, approves, rejects and withdraws requests through the review services
(registry_ui.web.approvals) with a cast of authors and reviewers. The workers' messages are
held, so approved operations run later and in any order, as on a busy queue; MLflow is also
changed behind the dashboard's back, the mirror sometimes left behind until a sync. After
every step: at most one staging and one production version per template, in MLflow and in
the mirror, the two the same once synced, and nothing carried out without the approvals it
needs or after the registry changed under it.

Each service call is checked against a small oracle of its own (who may do what, which
stage moves are allowed), so a refusal the oracle does not expect fails as much as an
accepted call it does not.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Max
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from registry_ui.core.policy import PolicyError
from registry_ui.core.records import VersionRecord
from registry_ui.prompt_model import PromptModel, get_registry
from registry_ui.web.models import (
    Approval,
    AuditEvent,
    Operation,
    PromotionRequest,
    TemplateVersion,
)
from registry_ui.web.operations import tasks as operation_tasks
from registry_ui.web.operations import worker
from registry_ui.web.operations.tasks import run_operation
from registry_ui.web.prompts.mirror import mirror_template
from registry_ui.web.reviews import releases
from registry_ui.web.reviews import services as reviews
from registry_ui.web.reviews.releases import ReleaseLine

Status = PromotionRequest.Status
Kind = PromotionRequest.Kind

# The cast, by role. Usernames get a suffix per machine run: the database keeps every run's
# rows (audit events and approvals are never deleted), and names must stay unique.
AUTHOR = "alice"  # wrote every version; never files or reviews
REQUESTERS = ("erin", "frank")  # authors: file requests and releases
REVIEWERS = ("bob", "carol", "dan")
AUTHOR_AND_REVIEWER = "ivy"
GROUPS = {
    AUTHOR: ["authors"],
    **{name: ["authors"] for name in REQUESTERS},
    **{name: ["reviewers"] for name in REVIEWERS},
    AUTHOR_AND_REVIEWER: ["authors", "reviewers"],
}
CAN_REQUEST = {*REQUESTERS, AUTHOR_AND_REVIEWER}
CAN_REVIEW = {*REVIEWERS, AUTHOR_AND_REVIEWER}


# Most steps aim at what should be accepted now, so that runs get somewhere; the others
# check refusals. The miss sits mid-list: Hypothesis often draws the ends of a range.
AIM = st.sampled_from([True, True, False, True, True])


def cast(allowed: list[str], outsider: str) -> st.SearchStrategy[str]:
    """Mostly someone allowed to act, now and then someone who is not (a 403)."""
    return AIM.flatmap(lambda aimed: st.sampled_from(allowed) if aimed else st.just(outsider))


# Who tries each action.
FILERS = cast([*REQUESTERS, AUTHOR_AND_REVIEWER], "bob")
ROLLBACKERS = cast([*REVIEWERS, AUTHOR_AND_REVIEWER], "frank")
DECIDERS = [*REVIEWERS, AUTHOR_AND_REVIEWER, "erin"]
WITHDRAWERS = st.sampled_from(["the requester", *REQUESTERS, AUTHOR_AND_REVIEWER, "bob"])

# Template "a" has four versions, "b" three: asking for b 1.0.3 must be refused.
TEXTS = ["Hi {who}", "Hello {who}", "Hey {who}", "Good day {who}"]
VERSION_COUNT = {"a": 4, "b": 3}
ALL_VERSIONS = [(key, f"1.0.{n}") for key in sorted(VERSION_COUNT) for n in range(4)]
RELEASE_MOVES = [(k, v, stage) for k, v in ALL_VERSIONS for stage in ("staging", "production")]
ALL_MOVES = [
    (k, v, stage) for k, v in ALL_VERSIONS for stage in ("staging", "production", "dev", "archived")
]
# Where each template starts: "history" has 1.0.0 archived after holding production, so
# rollbacks can be filed within a short run (it costs four MLflow promotions, so only "a").
START_MOVES = {
    "fresh": [],
    "staging": [[("1.0.0", "staging")]],
    "history": [
        [("1.0.0", "staging"), ("1.0.0", "production")],
        [("1.0.1", "staging"), ("1.0.1", "production")],
    ],
}

# The promotion path, written out again here rather than imported: the only stage each
# target is reached from.
REACHED_FROM = {"staging": "dev", "production": "staging"}
NEXT_STAGE = {source: target for target, source in REACHED_FROM.items()}
ACTIVE = (Status.OPEN, Status.EXECUTING)
NO_CHANGE = "no change"  # an idempotent retry: accepted, nothing written
ACCEPTED = "accepted"


class ApprovalStateMachine(RuleBasedStateMachine):
    def __init__(self, held: list[str]):
        super().__init__()
        self.held = held  # ids of operations sent to the workers and not yet run
        self.held.clear()
        self.tag = uuid.uuid4().hex[:8]
        self.users = {name: self._make_user(name, groups) for name, groups in GROUPS.items()}
        self.user_ids = [user.pk for user in self.users.values()]
        self.names = {key: f"sm/{self.tag}-{key}" for key in VERSION_COUNT}
        self.keys = {name: key for key, name in self.names.items()}
        self.mlflow_read_at: tuple[int, int] | None = None
        self.mlflow_read: dict[str, list[VersionRecord]] = {}
        self.dirty: set[str] = set()  # changed in MLflow, not yet mirrored (on purpose)
        self.external_changes = Counter()  # per template, moves made outside the dashboard
        self.filed: dict[int, tuple[str, int, bool]] = {}  # request -> what it was filed on
        self.request_ids: list[int] = []  # filed in this run, in order
        self.approved_by: dict[int, set[str]] = {}  # request -> reviewers who approved
        self.done_seen: set[int] = set()
        self.releases_seen: set[int] = set()

    def _make_user(self, name: str, groups: list[str]) -> User:
        # No password: hashing one per user per run would cost most of the test's time.
        user = User.objects.create_user(f"{name}-{self.tag}", f"{name}-{self.tag}@example.com")
        user.groups.set(Group.objects.filter(name__in=groups))
        return User.objects.get(pk=user.pk)  # fresh permission cache

    # -- reading MLflow and the mirror -----------------------------------------------------

    def mlflow_records(self, key: str) -> list[VersionRecord]:
        """The template's versions as MLflow has them. Read again only after this process
        called MLflow: every read and write goes through the one gateway, which counts its
        calls, and nothing else writes to this store (an MLflow read costs 10-40 ms)."""
        gateway = get_registry().gateway
        if self.mlflow_read_at != (id(gateway), gateway.calls):
            self.mlflow_read = gateway.list_versions_many(list(self.names.values()))
            self.mlflow_read_at = (id(gateway), gateway.calls)
        return self.mlflow_read[self.names[key]]

    def mlflow_stages(self, key: str) -> dict[str, str]:
        return {r.version: r.stage.value for r in self.mlflow_records(key)}

    def mirror_stages(self, key: str) -> dict[str, str]:
        rows = TemplateVersion.objects.filter(template__name=self.names[key])
        return dict(rows.values_list("version", "stage"))

    def sync(self, key: str) -> None:
        """What the webhook or the periodic sync does: mirror the template from MLflow."""
        mirror_template(self.names[key], self.mlflow_records(key), source="external")
        self.dirty.discard(key)

    def row(self, key: str, version: str) -> TemplateVersion | None:
        return TemplateVersion.objects.filter(
            template__name=self.names[key], version=version
        ).first()

    def run_requests(self):
        return PromotionRequest.objects.filter(requester_id__in=self.user_ids)

    def footprint(self) -> tuple:
        """Everything a refused action must leave as it was."""
        return (
            AuditEvent.objects.aggregate(last=Max("seq"))["last"],
            sorted(self.run_requests().values_list("pk", "status")),
            Approval.objects.filter(request__requester_id__in=self.user_ids).count(),
            list(self.held),
            [self.mirror_stages(key) for key in VERSION_COUNT],
        )

    def attempt(self, expected, action):
        """Call a service; a refusal (an exception class) or NO_CHANGE must change nothing."""
        if expected == ACCEPTED:
            return action()
        before = self.footprint()
        if expected == NO_CHANGE:
            action()
        else:
            with pytest.raises(expected):
                action()
        assert self.footprint() == before, f"{expected} expected, yet something changed"
        return None

    # -- the machine's steps ---------------------------------------------------------------

    @initialize(
        start_a=st.sampled_from(["history", "staging", "fresh"]),
        start_b=st.sampled_from(["fresh", "staging"]),
        waiting=st.integers(min_value=0, max_value=3),
        data=st.data(),
    )
    def start(self, start_a, start_b, waiting, data):
        """Two templates, and a queue that already holds approved requests: the workers
        are behind from the first step."""
        self.register_two_templates(start_a, start_b)
        for n in range(waiting):
            self.file_and_approve(data, label=f"waiting {n + 1}")

    def register_two_templates(self, start_a: str, start_b: str) -> None:
        """Versions written by alice, registered in dev and mirrored, then moved in MLflow."""
        PromptModel.register_many(
            [
                PromptModel(self.names[key], TEXTS[n], f"1.0.{n}", metadata=self.metadata())
                for key, count in VERSION_COUNT.items()
                for n in range(count)
            ]
        )
        for key, start in (("a", start_a), ("b", start_b)):
            name = self.names[key]
            self.sync(key)
            for moves in START_MOVES[start]:
                for version, stage in moves:
                    get_registry().promote(name, version, stage)
                self.sync(key)  # the mirror sees each production holder: rollbacks need it

    def file_and_approve(self, data, *, label: str) -> None:
        """A request, or a release of one move per template, filed and approved."""
        moves = [m for m in self.promotions() if self.may_be_promoted(self.row(m[0], m[1]), m[2])]
        if not moves:
            return
        requester = self.users[data.draw(st.sampled_from(sorted(CAN_REQUEST)), label="requester")]
        if data.draw(st.booleans(), label=f"{label} is a release"):
            keys = data.draw(st.permutations(sorted({key for key, _, _ in moves})), label=label)
            lines = [
                data.draw(st.sampled_from([m for m in moves if m[0] == key]), label=label)
                for key in keys  # carried out in this order
            ]
            request = releases.file_release(
                requester,
                lines=[ReleaseLine(self.names[k], v, stage) for k, v, stage in lines],
                justification="queued before the run",
            )
            self.request_ids.append(request.pk)
            for item in request.items.select_related("template"):
                self.note_filing(item, self.keys[item.template.name])
        else:
            key, version, stage = data.draw(st.sampled_from(moves), label=label)
            request = reviews.file_request(
                requester, template_name=self.names[key], version=version, target=stage,
                justification="queued before the run",
            )  # fmt: skip
            self.note_filing(request, key)
        reviewers = [name for name in sorted(CAN_REVIEW) if self.users[name] != requester]
        for name in reviewers[: request.required_approvals]:
            reviews.approve(self.users[name], request.pk)
            self.approved_by.setdefault(request.pk, set()).add(self.users[name].username)
        request.refresh_from_db()
        assert request.status == Status.EXECUTING, request.outcome

    def metadata(self) -> dict:
        """Everything the default metadata policy asks of a new version."""
        return {
            "author": self.users[AUTHOR].username,
            "purpose": "Greets the reader",
            "tested_on": "threads",
            "performance_metrics": {"engagement_rate": 0.06},
        }

    @rule(who=FILERS, data=st.data())
    def file_a_promotion(self, who, data):
        key, version, stage = self.prefer(data, self.promotions(), ALL_MOVES, "move")
        user = self.users[who]
        row = self.row(key, version)
        if who not in CAN_REQUEST:
            expected = PermissionDenied
        elif not self.may_be_promoted(row, stage):
            expected = PolicyError
        else:
            expected = ACCEPTED
        request = self.attempt(
            expected,
            lambda: reviews.file_request(
                user, template_name=self.names[key], version=version, target=stage,
                justification="the copy reads better",
            ),
        )  # fmt: skip
        if request is None:
            return
        policy = reviews.approval_policy()
        assert (request.status, request.required_approvals) == (
            Status.OPEN,
            policy.required("promote", stage),
        )
        self.note_filing(request, key)

    @rule(who=ROLLBACKERS, data=st.data())
    def file_a_rollback(self, who, data):
        key, version = self.prefer(data, self.former_production(), ALL_VERSIONS, "version")
        user = self.users[who]
        row = self.row(key, version)
        if who not in CAN_REVIEW:
            expected = PermissionDenied
        elif not self.may_be_rolled_back_to(row):
            expected = PolicyError
        else:
            expected = ACCEPTED
        request = self.attempt(
            expected,
            lambda: reviews.file_rollback(
                user, template_name=self.names[key], version=version, reason="the new one is off"
            ),
        )
        if request is None:
            return
        required = reviews.approval_policy().required("rollback", "production")
        assert request.required_approvals == required
        assert request.status == (Status.OPEN if required else Status.EXECUTING)
        self.note_filing(request, key)

    @rule(who=FILERS, size=st.integers(min_value=1, max_value=2), data=st.data())
    def file_a_release(self, who, size, data):
        moves = self.promotions()
        lines = [self.prefer(data, moves, RELEASE_MOVES, f"line {n + 1}") for n in range(size)]
        user = self.users[who]
        rows = [self.row(key, version) for key, version, _ in lines]
        if who not in CAN_REQUEST:
            expected = PermissionDenied
        elif len({key for key, _, _ in lines}) < len(lines):
            expected = PolicyError  # a release moves each template once
        elif not all(
            self.may_be_promoted(row, stage) for row, (_, _, stage) in zip(rows, lines, strict=True)
        ):
            expected = PolicyError
        else:
            expected = ACCEPTED
        release = self.attempt(
            expected,
            lambda: releases.file_release(
                user,
                lines=[ReleaseLine(self.names[k], v, stage) for k, v, stage in lines],
                justification="the spring release",
            ),
        )
        if release is None:
            return
        policy = reviews.approval_policy()
        required = max(policy.required("promote", stage) for _, _, stage in lines)
        assert (release.status, release.required_approvals) == (Status.OPEN, required)
        items = list(release.items.select_related("template").order_by("pk"))
        assert len(items) == len(lines)
        self.request_ids.append(release.pk)
        for item in items:  # acting on an item alone must be refused
            self.note_filing(item, self.keys[item.template.name])

    @precondition(lambda self: self.request_ids)
    @rule(data=st.data())
    def approve(self, data):
        self.approve_as(self.pick_request(data), data, label="reviewer")

    @precondition(lambda self: self.request_ids)
    @rule(data=st.data())
    def two_reviewers_approve(self, data):
        """Two approvals in turn, as production needs (a rule of its own, so that runs where
        Hypothesis switches some rules off still reach the workers often)."""
        request = self.pick_request(data)
        for label in ("first reviewer", "second reviewer"):
            self.approve_as(request, data, label=label)

    def approve_as(self, request: PromotionRequest, data, *, label: str) -> None:
        request.refresh_from_db()
        already = set(request.approvals.values_list("reviewer_username", flat=True))
        eligible = sorted(
            name
            for name in CAN_REVIEW
            if self.users[name].pk != request.requester_id
            and self.users[name].username not in already | self.authors_of(request)
        )
        who = self.prefer(data, eligible, DECIDERS, label)
        user = self.users[who]
        if who not in CAN_REVIEW:
            expected = PermissionDenied
        elif user.username in already:
            expected = NO_CHANGE  # a retried click
        elif request.release_id or request.status != Status.OPEN:
            expected = PolicyError
        elif user.pk == request.requester_id or user.username in self.authors_of(request):
            expected = PolicyError  # four eyes
        else:
            expected = ACCEPTED
        held_before = len(self.held)
        self.attempt(expected, lambda: reviews.approve(user, request.pk, comment="fine by me"))
        if expected != ACCEPTED:
            return
        self.approved_by.setdefault(request.pk, set()).add(user.username)
        request.refresh_from_db()
        enough = len(already) + 1 >= request.required_approvals
        assert request.status == (Status.EXECUTING if enough else Status.OPEN)
        assert len(self.held) == held_before + enough  # one message per approved request
        if enough and data.draw(st.booleans(), label="a worker is free"):
            self.run_message(self.held.pop())  # at once, before anything else happens

    @precondition(lambda self: self.request_ids)
    @rule(data=st.data())
    def turn_a_request_down(self, data):
        """A reviewer rejects, or someone withdraws, any request of the run: many are past
        deciding, and must be refused without a change."""
        request_id = data.draw(st.sampled_from(self.request_ids), label="request")
        request = PromotionRequest.objects.select_related("requester").get(pk=request_id)
        if data.draw(st.booleans(), label="withdraw"):
            self.withdraw(request, data.draw(WITHDRAWERS, label="who"))
        else:
            self.reject(request, data.draw(st.sampled_from(DECIDERS), label="reviewer"))

    def reject(self, request: PromotionRequest, who: str) -> None:
        user = self.users[who]
        if who not in CAN_REVIEW:
            expected = PermissionDenied
        elif request.status == Status.REJECTED:
            expected = NO_CHANGE
        elif request.release_id or request.status != Status.OPEN:
            expected = PolicyError
        elif user.pk == request.requester_id:
            expected = PolicyError  # withdraw it instead
        else:
            expected = ACCEPTED
        self.attempt(expected, lambda: reviews.reject(user, request.pk, comment="off brand"))
        request.refresh_from_db()
        if expected == ACCEPTED:
            assert request.status == Status.REJECTED

    def withdraw(self, request: PromotionRequest, who: str) -> None:
        user = request.requester if who == "the requester" else self.users[who]
        if user.pk != request.requester_id:
            expected = PermissionDenied
        elif request.status == Status.WITHDRAWN:
            expected = NO_CHANGE
        elif request.release_id or request.status != Status.OPEN:
            expected = PolicyError
        else:
            expected = ACCEPTED
        self.attempt(expected, lambda: reviews.withdraw(user, request.pk))
        request.refresh_from_db()
        if expected == ACCEPTED:
            assert request.status == Status.WITHDRAWN

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(min_value=0, max_value=4))
    def run_a_held_message(self, pick):
        """A worker takes one message, the newest first unless told otherwise: approved
        operations run out of order."""
        self.run_message(self.held.pop(-1 - pick % len(self.held)))

    @precondition(lambda self: self.held)
    @rule()
    def run_every_held_message(self):
        for _ in range(100):  # a message kept because it was busy comes round again
            if not self.held:
                break
            self.run_message(self.held.pop(0))
        assert not self.held, f"messages that never get to run: {self.held}"
        self.check_legacy_stages()
        leftover = self.run_requests().filter(status=Status.EXECUTING)
        assert not leftover.exists(), f"still executing with no message left: {list(leftover)}"
        pending = Operation.objects.filter(
            request__requester_id__in=self.user_ids, status=Operation.Status.PENDING
        )
        assert not pending.exists(), f"pending with no message left: {list(pending)}"

    @rule(mirror_now=st.booleans(), data=st.data())
    def change_mlflow_outside_the_dashboard(self, mirror_now, data):
        """Someone promotes a version with the library, mostly in a template that approved
        operations are waiting to move; the webhook may come later."""
        waiting = self.run_requests().filter(status=Status.EXECUTING, template__isnull=False)
        busy = sorted(
            {self.keys[name] for name in waiting.values_list("template__name", flat=True)}
        )
        key = self.prefer(data, busy, sorted(VERSION_COUNT), "template")
        stages = self.mlflow_stages(key)
        movable = [version for version, stage in sorted(stages.items()) if stage in NEXT_STAGE]
        version = self.prefer(data, movable, [v for k, v in ALL_VERSIONS if k == key], "version")
        target = NEXT_STAGE.get(stages.get(version))
        if target is None:
            return  # missing, archived or in production: no promotion left for it
        get_registry().promote(self.names[key], version, target)
        self.external_changes[key] += 1
        if mirror_now:
            self.sync(key)
        else:
            self.dirty.add(key)

    @precondition(lambda self: self.dirty)
    @rule()
    def sync_the_mirror(self):
        """The periodic sync catches up with changes whose webhook never came."""
        for key in VERSION_COUNT:
            self.sync(key)
        self.check_legacy_stages()

    def check_legacy_stages(self) -> None:
        """MLflow's legacy stage, which older consumers read, is kept in step with the
        aliases: at most one "Production" there too. (Checked after syncs and drained
        queues only: it costs an MLflow read per template.)"""
        gateway = get_registry().gateway
        legacy = {name: gateway.legacy_stages(name) for name in self.names.values()}
        for key, name in self.names.items():
            expected = {r.mlflow_version: r.stage.legacy_name for r in self.mlflow_records(key)}
            # The keys are ints on a SQLite store, strings in our records.
            assert {str(n): stage for n, stage in legacy[name].items()} == expected, key

    # -- what the steps rely on ------------------------------------------------------------

    def prefer(self, data, preferred: list, anything: list, label: str):
        """Mostly what should be accepted now, so that runs get somewhere; anything else
        too (refusals are checked as closely). Shrinking leans to the preferred choices."""
        if preferred and data.draw(AIM, label=f"{label} aimed"):
            return data.draw(st.sampled_from(preferred), label=label)
        return data.draw(st.sampled_from(anything), label=label)

    def pick_request(self, data) -> PromotionRequest:
        """An open request mostly, any request filed in this run (a release's item too)
        otherwise."""
        requests = self.run_requests().select_related("requester")
        open_ids = sorted(
            requests.filter(status=Status.OPEN, release__isnull=True).values_list("pk", flat=True)
        )
        request_id = self.prefer(data, open_ids, self.request_ids, "request")
        return requests.get(pk=request_id)

    def promotions(self) -> list[tuple[str, str, str]]:
        """(template, version, target) of each move the mirror allows now."""
        return [
            (key, version, target)
            for key in VERSION_COUNT
            for version, stage in sorted(self.mirror_stages(key).items())
            for target, source in REACHED_FROM.items()
            if stage == source
        ]

    def former_production(self) -> list[tuple[str, str]]:
        rows = TemplateVersion.objects.filter(
            template__name__in=self.names.values(), stage="archived", was_production=True
        )
        return sorted(
            (self.keys[name], v) for name, v in rows.values_list("template__name", "version")
        )

    def may_be_promoted(self, row: TemplateVersion | None, stage: str) -> bool:
        """As the mirror has it: one step along the path, and no such request open."""
        return (
            row is not None
            and REACHED_FROM.get(stage) == row.stage
            and not self.has_active_request(row, stage)
        )

    def may_be_rolled_back_to(self, row: TemplateVersion | None) -> bool:
        return (
            row is not None
            and row.stage == "archived"
            and row.was_production
            and not self.has_active_request(row, "production")
        )

    def has_active_request(self, row: TemplateVersion, stage: str) -> bool:
        return PromotionRequest.objects.filter(
            version=row, target_stage=stage, status__in=ACTIVE
        ).exists()

    def authors_of(self, request: PromotionRequest) -> set[str]:
        """Who wrote or registered the versions it moves, read from the mirror's rows."""
        if request.kind == Kind.RELEASE:
            versions = [item.version for item in request.items.select_related("version")]
        else:
            versions = [request.version]
        return {name for v in versions for name in (v.author, v.registered_by) if name}

    def note_filing(self, request: PromotionRequest, key: str) -> None:
        """What the request was filed on: later external moves must stop it."""
        self.filed[request.pk] = (key, self.external_changes[key], key in self.dirty)
        self.request_ids.append(request.pk)

    def run_message(self, operation_id: str) -> None:
        mlflow_before = None
        if Operation.objects.filter(id=operation_id, kind=Operation.Kind.RELEASE).exists():
            mlflow_before = {key: self.mlflow_stages(key) for key in VERSION_COUNT}
        outcome = worker.run(operation_id, send=operation_tasks.send_after_commit)
        if outcome.status == "busy":
            # An earlier operation on the template comes first and carries this one on
            # when it runs; the sweeper would send it again, so keep the message.
            self.held.append(operation_id)
        if mlflow_before is not None:
            self.check_finished_releases(mlflow_before)
        # A worker mirrors the templates it moves (or checks) from MLflow first, so a
        # mirror left behind on purpose may have caught up.
        self.dirty = {
            key for key in self.dirty if self.mirror_stages(key) != self.mlflow_stages(key)
        }

    def check_finished_releases(self, mlflow_before: dict[str, dict[str, str]]) -> None:
        """A release that ran is all or nothing: every item moved, or none is left moved."""
        finished = self.run_requests().filter(
            kind=Kind.RELEASE, status__in=[Status.DONE, Status.FAILED]
        )
        for release in finished.exclude(pk__in=self.releases_seen):
            self.releases_seen.add(release.pk)
            items = list(release.items.select_related("template", "version"))
            assert {item.status for item in items} == {release.status}, release.report
            for item in items:
                key = self.keys[item.template.name]
                if release.status == Status.DONE:
                    stage = self.mlflow_stages(key)[item.version.version]
                    assert stage == item.target_stage, (item, release.report)
                else:
                    assert self.mlflow_stages(key) == mlflow_before[key], (item, release.report)

    @invariant()
    def one_version_per_stage_and_the_mirror_follows_mlflow(self):
        for key in VERSION_COUNT:
            mlflow = self.mlflow_stages(key)
            mirror = self.mirror_stages(key)
            for stages in (Counter(mlflow.values()), Counter(mirror.values())):
                assert stages["staging"] <= 1 and stages["production"] <= 1, (key, mlflow, mirror)
            if key not in self.dirty:
                assert mirror == mlflow, f"{key}: mirror {mirror} != MLflow {mlflow}"

    @invariant()
    def nothing_runs_without_its_approvals(self):
        policy = reviews.approval_policy()
        requests = {
            r.pk: r for r in self.run_requests().select_related("requester", "release", "version")
        }
        given = {}
        for request_id, username in Approval.objects.filter(request_id__in=requests).values_list(
            "request_id", "reviewer_username"
        ):
            given.setdefault(request_id, []).append(username)
        reviewers = {self.users[name].username for name in CAN_REVIEW}
        for request in requests.values():
            approvers = given.get(request.pk, [])
            assert set(approvers) == self.approved_by.get(request.pk, set()), request
            assert len(approvers) == len(set(approvers)), request
            if request.release_id:
                assert request.status == request.release.status, (request, request.release)
                continue
            if request.kind == Kind.ROLLBACK:
                required = policy.required("rollback", "production")
            elif request.kind == Kind.PROMOTE:
                required = policy.required("promote", request.target_stage)
            else:
                required = max(
                    policy.required("promote", stage)
                    for stage in request.items.values_list("target_stage", flat=True)
                )
            assert request.required_approvals == required, request
            if request.status in (Status.EXECUTING, Status.DONE):
                forbidden = {request.requester.username, *self.authors_of(request)}
                assert len(approvers) >= required, (request, approvers)
                assert set(approvers) <= reviewers - forbidden, (request, approvers, forbidden)

    @invariant()
    def open_requests_are_closed_when_their_template_moves(self):
        """A move seen by the mirror makes the open requests of its template stale."""
        outdated = self.run_requests().filter(
            status=Status.OPEN, template__isnull=False, basis_epoch__lt=F("template__stage_epoch")
        )
        assert not outdated.exists(), list(outdated)

    @invariant()
    def one_active_request_per_version_and_target(self):
        twice = (
            self.run_requests()
            .filter(status__in=ACTIVE, version__isnull=False)
            .values("version", "target_stage")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
        )
        assert not twice.exists(), list(twice)

    @invariant()
    def operations_leave_their_requests_finished(self):
        rows = Operation.objects.filter(request__requester_id__in=self.user_ids).values_list(
            "id", "status", "request__status", "request__release_id"
        )
        for operation_id, status, request_status, release_id in rows:
            if status in (Operation.Status.SUCCEEDED, Operation.Status.FAILED):
                assert request_status in (Status.DONE, Status.FAILED), (operation_id, status)
            else:
                # Only a release's own slots run inside its operation, never between steps.
                assert status == Operation.Status.PENDING and release_id is None, operation_id
                assert request_status == Status.EXECUTING, (operation_id, request_status)
                assert str(operation_id) in self.held, f"{operation_id}: pending, no message"
        executing = self.run_requests().filter(status=Status.EXECUTING, release__isnull=True)
        for request in executing.select_related("operation"):
            assert request.operation.status == Operation.Status.PENDING, request

    @invariant()
    def done_requests_moved_what_was_approved(self):
        """Done means no one moved the template in MLflow between filing and execution,
        and the executed event names the very content MLflow holds."""
        done = self.run_requests().filter(status=Status.DONE).exclude(kind=Kind.RELEASE)
        new = list(done.exclude(pk__in=self.done_seen).select_related("template", "version"))
        events = dict(
            AuditEvent.objects.filter(
                action="request.executed",
                object_type="promotion_request",
                object_id__in=[str(r.pk) for r in new],
            ).values_list("object_id", "after")
        )
        for request in new:
            self.done_seen.add(request.pk)
            key, changes_when_filed, dirty_when_filed = self.filed[request.pk]
            assert not dirty_when_filed, f"{request}: filed on a mirror behind MLflow, yet done"
            assert self.external_changes[key] == changes_when_filed, (
                f"{request}: MLflow changed outside the dashboard after filing, yet done"
            )
            [record] = [r for r in self.mlflow_records(key) if r.version == request.version.version]
            after = events[str(request.pk)]
            assert after["version"] == request.version.version, after
            assert after["content_sha256"] == record.content_sha256 == request.content_sha256


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sqlite_registry_uri", "in_process_tasks")
def test_requests_approvals_releases_and_rollbacks_keep_one_version_per_stage(monkeypatch):
    held: list[str] = []
    # The workers' messages are held, so the machine decides when and in which order
    # approved operations run (the real send path is covered in test_approvals.py).
    monkeypatch.setattr(run_operation, "delay", held.append)
    run_state_machine_as_test(
        lambda: ApprovalStateMachine(held),
        settings=settings(
            max_examples=20,
            stateful_step_count=15,
            deadline=None,
            derandomize=True,  # the same runs on every machine: CI failures reproduce
            database=None,  # nothing written to .hypothesis/ in the working tree
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
