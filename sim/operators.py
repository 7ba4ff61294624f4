"""PD operators: kinds, steps, statuses, their text forms, and the controller that runs them.

An operator is a list of steps applied to one region over virtual time. Step texts, briefs, kinds,
priorities, timeouts and status strings follow PD v8.5.5 (`pkg/schedule/operator`), so
`GET /operators` and `GET /operators/{id}` print exactly what PD prints. The controller enforces
PD's admission rule (an operator replaces a running one only with a strictly higher priority),
keeps finished operators visible for 10 minutes, and counts running operators by scheduler kind
for the schedule limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sim.gotext import ZERO_GO_TIME, format_duration, format_go_time

if TYPE_CHECKING:
    from sim.cluster import Cluster
    from sim.model import Region

# OpKind bits in PD v8.5.5 (OpAffinity inserted at bit 1, so leader is 256).
ADMIN = 1
AFFINITY = 2
MERGE = 4
RANGE = 8
REPLICA = 16
SPLIT = 32
HOT_REGION = 64
REGION = 128
LEADER = 256
SPLIT_SCATTER = 2048
_KIND_NAMES = (
    (ADMIN, "admin"),
    (AFFINITY, "affinity"),
    (MERGE, "merge"),
    (RANGE, "range"),
    (REPLICA, "replica"),
    (SPLIT, "split"),
    (HOT_REGION, "hot-region"),
    (REGION, "region"),
    (LEADER, "leader"),
    (SPLIT_SCATTER, "split-scatter"),
)

LOW, MEDIUM, HIGH, URGENT = 0, 1, 2, 3

# Internal OpStatus numbers (status.go) and their pdpb.OperatorStatus names.
CREATED, STARTED, SUCCESS, CANCELED, REPLACED, EXPIRED, TIMEOUT = range(7)
PDPB_STATUS = {
    STARTED: "RUNNING",
    SUCCESS: "SUCCESS",
    CANCELED: "CANCEL",
    REPLACED: "REPLACE",
    EXPIRED: "TIMEOUT",
    TIMEOUT: "TIMEOUT",
    CREATED: "5",
}

STATUS_REMAIN_SECONDS = 600.0  # operatorStatusRemainTime


def kind_text(kind: int) -> str:
    names = [name for bit, name in _KIND_NAMES if kind & bit]
    return ",".join(names) if names else "unknown"


def scheduler_kind(kind: int) -> int:
    """PD's SchedulerKind(): the kind an operator is counted under for the schedule limits."""
    if kind & ADMIN:
        return ADMIN
    if kind & SPLIT_SCATTER:
        return SPLIT_SCATTER
    return kind & -kind


def fast_step_timeout(size_mib: int) -> float:
    return max(float(int(0.6 * size_mib)), 60.0)


def slow_step_timeout(size_mib: int) -> float:
    return max(float(6 * size_mib), 600.0)


@dataclass
class Step:
    """One operator step; `duration` is how long the simulated cluster takes to apply it."""

    kind: str
    text: str
    timeout: float
    duration: float
    store: int = 0
    peer_id: int = 0
    promotes: tuple[tuple[int, int], ...] = ()  # (peer id, store id)
    demotes: tuple[tuple[int, int], ...] = ()
    policy: str = ""
    split_keys: tuple[bytes, ...] = ()
    source_region: int = 0
    target_region: int = 0
    passive: bool = False


def transfer_leader_step(from_store: int, to_store: int, size: int) -> Step:
    return Step(
        "transfer_leader",
        f"transfer leader from store {from_store} to store {to_store}",
        fast_step_timeout(size),
        1.0,
        store=to_store,
    )


def add_learner_step(peer_id: int, store: int, size: int) -> Step:
    return Step(
        "add_learner",
        f"add learner peer {peer_id} on store {store}",
        slow_step_timeout(size),
        max(1.0, size / 64.0),
        store=store,
        peer_id=peer_id,
    )


def promote_step(peer_id: int, store: int, size: int) -> Step:
    return Step(
        "promote",
        f"promote learner peer {peer_id} on store {store} to voter",
        fast_step_timeout(size),
        0.5,
        store=store,
        peer_id=peer_id,
    )


def _joint_text(
    prefix: str, promotes: tuple[tuple[int, int], ...], demotes: tuple[tuple[int, int], ...]
) -> str:
    parts = [prefix]
    parts += [f"promote learner peer {pid} on store {sid} to voter" for pid, sid in promotes]
    parts += [f"demote voter peer {pid} on store {sid} to learner" for pid, sid in demotes]
    return ", ".join(parts)


def enter_joint_step(
    promotes: tuple[tuple[int, int], ...], demotes: tuple[tuple[int, int], ...], size: int
) -> Step:
    count = len(promotes) + len(demotes) + 1
    return Step(
        "enter_joint",
        _joint_text("use joint consensus", promotes, demotes),
        fast_step_timeout(size) * count,
        0.5,
        promotes=promotes,
        demotes=demotes,
    )


def leave_joint_step(
    promotes: tuple[tuple[int, int], ...], demotes: tuple[tuple[int, int], ...], size: int
) -> Step:
    count = len(promotes) + len(demotes) + 1
    return Step(
        "leave_joint",
        _joint_text("leave joint state", promotes, demotes),
        fast_step_timeout(size) * count,
        0.5,
        promotes=promotes,
        demotes=demotes,
    )


def remove_peer_step(store: int, size: int) -> Step:
    return Step(
        "remove_peer", f"remove peer on store {store}", fast_step_timeout(size), 0.5, store=store
    )


def split_step(policy: str, keys: tuple[bytes, ...], size: int) -> Step:
    return Step(
        "split",
        f"split region with policy {policy}",
        fast_step_timeout(size),
        1.0,
        policy=policy,
        split_keys=keys,
    )


def merge_step(source: int, target: int, size: int, passive: bool) -> Step:
    return Step(
        "merge",
        f"merge region {source} into region {target}",
        fast_step_timeout(size) * 10,
        2.0,
        source_region=source,
        target_region=target,
        passive=passive,
    )


@dataclass
class Operator:
    """A running or finished operator and everything PD prints about it."""

    desc: str
    brief: str
    region_id: int
    version: int
    conf_ver: int
    kind: int
    steps: list[Step]
    size: int
    priority: int = MEDIUM
    created_at: float = 0.0
    started_at: float | None = None
    current: int = 0
    step_begun: bool = False
    step_started_at: float = 0.0
    last_step_finished_at: float | None = None
    status: int = CREATED
    finished_at: float | None = None
    cancel_reason: str = ""
    partner: Operator | None = field(default=None, repr=False)

    @property
    def timeout(self) -> float:
        return float(int(sum(step.timeout for step in self.steps)))

    @property
    def running(self) -> bool:
        return self.status == STARTED

    def to_string(self, mono_base: float) -> str:
        """PD's Operator.String()."""
        steps = ", ".join(f"{i}:{{{step.text}}}" for i, step in enumerate(self.steps))
        created = format_go_time(self.created_at, self.created_at - mono_base)
        started = (
            format_go_time(self.started_at, self.started_at - mono_base)
            if self.started_at is not None
            else ZERO_GO_TIME
        )
        text = (
            f"{self.desc} {{{self.brief}}} (kind:{kind_text(self.kind)}, "
            f"region:{self.region_id}({self.version}, {self.conf_ver}), createAt:{created}, "
            f"startAt:{started}, currentStep:{self.current}, size:{self.size}, "
            f"steps:[{steps}], timeout:[{format_duration(self.timeout)}])"
        )
        if self.status == SUCCESS:
            text += " finished"
        elif self.status == TIMEOUT:
            text += " timeout"
        return text

    def status_string(self, mono_base: float) -> str:
        """PD's OpWithStatus JSON string."""
        return f"status: {PDPB_STATUS[self.status]}, operator: {self.to_string(mono_base)}"

    def record_string(self, mono_base: float) -> str:
        """PD's OpRecord string (GET /operators/records)."""
        finished = self.finished_at if self.finished_at is not None else self.created_at
        start = self.started_at if self.started_at is not None else self.created_at
        if self.status != SUCCESS and self.current > 0 and self.last_step_finished_at is not None:
            start = self.last_step_finished_at
        finish_text = format_go_time(finished, finished - mono_base)
        return (
            f"{self.to_string(mono_base)} (finishAt:{finish_text}, "
            f"duration:{format_duration(finished - start)})"
        )

    def to_object(self) -> dict[str, object]:
        """PD's OpObject (GET /operators?object)."""
        epoch: dict[str, int] = {}
        if self.conf_ver:
            epoch["conf_ver"] = self.conf_ver
        if self.version:
            epoch["version"] = self.version
        return {
            "desc": self.desc,
            "brief": self.brief,
            "region_id": self.region_id,
            "region_epoch": epoch,
            "kind": self.kind,
            "timeout": format_duration(self.timeout),
            "status": self.status,
        }


class OperatorController:
    """Admission, progress and bookkeeping of operators (PD's operator.Controller)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.running: dict[int, Operator] = {}
        self.finished: dict[int, Operator] = {}
        self.history: list[Operator] = []

    # ----- admission -------------------------------------------------------------------------

    def add(self, *ops: Operator) -> bool:
        """PD's AddOperator: all or nothing; refuses when a running one has >= priority."""
        now = self.cluster.now
        for op in ops:
            op.created_at = now
            existing = self.running.get(op.region_id)
            if existing is not None and existing.priority >= op.priority:
                for refused in ops:
                    refused.status = CANCELED
                    refused.cancel_reason = "already exist"
                    refused.finished_at = now
                    self._remember(refused)
                return False
        for op in ops:
            existing = self.running.get(op.region_id)
            if existing is not None:
                self._finish(existing, REPLACED)
            op.status = STARTED
            op.started_at = now
            self.running[op.region_id] = op
            self._begin_step(op)
        self.cluster.touch()
        return True

    def cancel(self, region_id: int, reason: str = "admin stop") -> bool:
        op = self.running.get(region_id)
        if op is None:
            return False
        op.cancel_reason = reason
        self._finish(op, CANCELED)
        if op.partner is not None and op.partner.running:
            self._finish(op.partner, CANCELED)
        return True

    def cancel_all(self) -> None:
        for region_id in list(self.running):
            self.cancel(region_id)

    # ----- queries ---------------------------------------------------------------------------

    def count(self, kind: int) -> int:
        return sum(1 for op in self.running.values() if scheduler_kind(op.kind) == kind)

    def operators(self) -> list[Operator]:
        return sorted(self.running.values(), key=lambda op: (op.created_at, op.region_id))

    def of_kind(self, kind: int) -> list[Operator]:
        return [op for op in self.operators() if op.kind & kind]

    def status_of(self, region_id: int) -> Operator | None:
        op = self.running.get(region_id)
        if op is not None:
            return op
        self._expire()
        return self.finished.get(region_id)

    def records_since(self, since: float) -> list[Operator]:
        self._expire()
        return [op for op in self.history if (op.finished_at or 0.0) >= since]

    # ----- progress --------------------------------------------------------------------------

    def tick(self) -> bool:
        """Advance every running operator by one tick; True if any is still running."""
        for op in list(self.running.values()):
            if op.running:
                self._progress(op)
        return bool(self.running)

    def _progress(self, op: Operator) -> None:
        cluster = self.cluster
        now = cluster.now
        region = cluster.regions.get(op.region_id)
        if region is None:
            op.cancel_reason = "region not found"
            self._finish(op, CANCELED)
            return
        if op.started_at is not None and now - op.started_at > op.timeout:
            op.cancel_reason = "timeout"
            self._finish(op, TIMEOUT)
            return
        if not op.step_begun:
            self._begin_step(op)
            if not op.step_begun:
                return
        step = op.steps[op.current]
        if now - op.step_started_at + 1e-9 < step.duration:
            return
        if step.passive:
            return  # the merge source's operator finishes both
        if not cluster.finish_step(region, step):
            return
        self._step_done(op)
        if step.kind == "merge" and op.partner is not None and op.partner.running:
            self._step_done(op.partner)

    def _step_done(self, op: Operator) -> None:
        now = self.cluster.now
        op.current += 1
        op.step_begun = False
        op.last_step_finished_at = now
        if op.current >= len(op.steps):
            self._finish(op, SUCCESS)
            return
        self._begin_step(op)

    def _begin_step(self, op: Operator) -> None:
        region = self.cluster.regions.get(op.region_id)
        if region is None or op.current >= len(op.steps):
            return
        step = op.steps[op.current]
        if self.cluster.begin_step(region, step):
            op.step_begun = True
            op.step_started_at = self.cluster.now

    def _finish(self, op: Operator, status: int) -> None:
        op.status = status
        op.finished_at = self.cluster.now
        if self.running.get(op.region_id) is op:
            del self.running[op.region_id]
            region: Region | None = self.cluster.regions.get(op.region_id)
            if region is not None and status != SUCCESS:
                self.cluster.abort_step(region, op.steps[min(op.current, len(op.steps) - 1)])
        self._remember(op)

    def _remember(self, op: Operator) -> None:
        self.finished[op.region_id] = op
        self.history.append(op)
        self._expire()

    def _expire(self) -> None:
        cutoff = self.cluster.now - STATUS_REMAIN_SECONDS
        if self.history and (self.history[0].finished_at or 0.0) < cutoff:
            self.history = [op for op in self.history if (op.finished_at or 0.0) >= cutoff]
            self.finished = {
                rid: op for rid, op in self.finished.items() if (op.finished_at or 0.0) >= cutoff
            }
