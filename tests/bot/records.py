"""Records for the rendering tests: one realistic example of every message kind, at fixed times
(`NOW`), so golden files are stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.render.attention import attention_reply
from bot.render.diagnosis import diagnosis_reply, not_proposed_reply
from bot.render.execution import execution_outcome, execution_progress, execution_started
from bot.render.incident import (
    incident_changed_reply,
    incident_parent,
    incident_resolved_reply,
    incident_worsened_reply,
)
from bot.render.kit import Rendered
from bot.render.proposal import proposal_message, proposal_reminder
from bot.render.views import outcome_view
from engine.events import ChangeKind, IncidentChange
from engine.model import (
    SYSTEM,
    ActionRef,
    Approval,
    Attention,
    AuditEvent,
    AuditOutcome,
    Diagnosis,
    DiagnosisSource,
    EngineSettings,
    Evidence,
    Execution,
    ExecutionStatus,
    Hypothesis,
    Identity,
    Incident,
    IncidentStatus,
    KillSwitch,
    NotProposed,
    ProgressNote,
    Proposal,
    ProposalOrigin,
    ProposalState,
    ProposedAction,
    RiskLevel,
    Severity,
)
from engine.results import (
    AuditView,
    Decided,
    DryRunOutcome,
    HelpView,
    IncidentsView,
    KillSwitchOutcome,
    OperatorSummary,
    PeerSummary,
    ProposalCreated,
    ProposalsView,
    ProposalView,
    RefusalKind,
    Refused,
    RegionView,
    StatusView,
    StoreSummary,
    StoresView,
    StoreView,
)
from operator_tikv.actions import Check, DryRun, PreflightReport
from operator_tikv.models.writes import PDWrite

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=12)

ALICE = Identity.slack("U0ALICE", name="alice", groups=("S0ONCALL",))
BOB = Identity.slack("U0BOB", name="bob")
CLAUDE = Identity.claude("claude-sonnet-4-5")


def incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": "I-3",
        "fingerprint": "store_down:store:4",
        "kind": "store_down",
        "subject": "store:4",
        "severity": Severity.CRITICAL,
        "worst_severity": Severity.CRITICAL,
        "title": "Store 4 is Down",
        "value": 125.0,
        "threshold": 30.0,
        "details": {
            "store_id": 4,
            "address": "tikv-4:20160",
            "unit": "s",
            "message": "Store 4 (tikv-4:20160) is Down: no heartbeat to PD for 2 min, past "
            "PD's max-store-down-time.",
            "leader_count": 1203,
            "region_count": 3400,
        },
        "opened_at": T0,
        "updated_at": T0 + timedelta(minutes=10),
        "last_seen_at": T0 + timedelta(minutes=11),
    }
    fields.update(changes)
    return Incident(**fields)


def consequence(kind: str, label: str, count: int, *, presence: bool = False) -> dict[str, Any]:
    return {
        "key": f"{kind}/cluster",
        "kind": kind,
        "label": label,
        "count": count,
        "stores": [4],
        "by_presence": presence,
        "since": T0.timestamp(),
    }


def incident_with_consequences() -> Incident:
    """A store-down incident with what it brought: its regions, counted on its card."""
    base = incident()
    return incident(
        fingerprint="store_health:store:4",
        title="Store 4 down",
        details={
            **base.details,
            "consequences": [
                consequence("region_down_peer", "regions with a down peer", 3400),
                consequence("region_pending_peer", "regions with a pending peer", 3400),
                consequence("region_miss_peer", "regions missing a replica", 1200, presence=True),
            ],
        },
    )


def stores_incident() -> Incident:
    """Two stores down with regions that lost quorum: one critical incident."""
    base = incident()
    return incident(
        fingerprint="stores_unavailable:cluster",
        title="Stores 4 and 5 down: 412 regions lost quorum",
        details={
            **base.details,
            "stores": [4, 5],
            "quorum_lost": {"count": 412, "regions": [2008, 2011, 2015]},
            "consequences": [
                {
                    **consequence("region_down_peer", "regions with a down peer", 3400),
                    "stores": [4, 5],
                }
            ],
        },
    )


def resolved_incident() -> Incident:
    return incident(
        status=IncidentStatus.RESOLVED,
        severity=Severity.WARNING,
        clear_since=T0 + timedelta(minutes=9),
        resolved_at=T0 + timedelta(minutes=11),
    )


def diagnosis(**changes: Any) -> Diagnosis:
    fields: dict[str, Any] = {
        "id": 1,
        "incident_id": "I-3",
        "source": DiagnosisSource.CLAUDE,
        "model": "claude-sonnet-4-5",
        "prompt_version": "v3",
        "summary": "TiKV on store 4 stopped sending heartbeats; its 1,203 leaders are unavailable "
        "until PD elects new ones.",
        "causes": [
            Hypothesis(statement="The tikv-server process on tikv-4 crashed", confidence=0.7),
            Hypothesis(statement="A network partition isolates tikv-4", confidence=0.2),
        ],
        "evidence": [
            Evidence(fact="last heartbeat", value=125, unit="s", source="pd:/stores"),
            Evidence(fact="leaders on store 4", value=1203, source="pd:/stores"),
            Evidence(fact="other stores Up", value=3, source="pd:/stores"),
        ],
        "confidence": 0.7,
        "actions": [
            ProposedAction(
                action="drain", params={"store_id": 4}, reason="move the leaders off store 4"
            )
        ],
        "created_at": T0 + timedelta(minutes=1),
    }
    fields.update(changes)
    return Diagnosis(**fields)


CHECKS = [
    Check(
        name="store-exists", ok=True, observed="store 4 exists (Up)", message="store 4 exists (Up)"
    ),
    Check(name="store-not-removed", ok=True, observed="store 4 is Up", message="store 4 is Up"),
    Check(
        name="not-drained",
        ok=True,
        observed="store 4 is not drained",
        message="store 4 is not drained",
    ),
    Check(
        name="enough-leader-stores",
        ok=True,
        observed="3 other Up store(s) can take leaders (1, 2, 3)",
        message="3 other Up store(s) can take leaders (1, 2, 3)",
    ),
]


def dry_run(ok: bool = True) -> DryRun:
    checks = list(CHECKS)
    if not ok:
        checks[-1] = Check(
            name="enough-leader-stores",
            ok=False,
            observed="2 other Up store(s) can take leaders (1, 2)",
            message="draining store 4 would leave 2 Up store(s) able to take leaders (1, 2), "
            "fewer than max-replicas 3",
        )
    return DryRun(
        action="drain",
        description="Drain store 4: evict all its leaders (evict-leader-scheduler)",
        preflight=PreflightReport(action="drain", checks=tuple(checks)),
        requests=(PDWrite.add_evict_leader(4),),
        expected_effect="1,203 leaders would move off store 4 to stores 1, 2, 3; its 3,400 "
        "replicas stay",
    )


def proposal(state: ProposalState = ProposalState.PROPOSED, **changes: Any) -> Proposal:
    decided: dict[str, Any] = {}
    if state in (
        ProposalState.APPROVED,
        ProposalState.EXECUTING,
        ProposalState.SUCCEEDED,
        ProposalState.FAILED,
    ):
        at = T0 + timedelta(minutes=4)
        decided = {"approvals": (Approval(by=ALICE, at=at),), "decided_by": ALICE, "decided_at": at}
    elif state is ProposalState.REJECTED:
        decided = {
            "decided_by": ALICE,
            "decided_at": T0 + timedelta(minutes=5),
            "decision_reason": "store 4 is being replaced anyway",
        }
    elif state is ProposalState.EXPIRED:
        decided = {
            "decided_by": SYSTEM,
            "decided_at": T0 + timedelta(minutes=32),
            "decision_reason": "no approval within 30 min",
        }
    elif state is ProposalState.CANCELLED:
        decided = {
            "decided_by": BOB,
            "decided_at": T0 + timedelta(minutes=5),
            "decision_reason": "opened by mistake",
        }
    dry = dry_run()
    fields: dict[str, Any] = {
        "id": "P-7",
        "incident_id": "I-3",
        "action": "drain",
        "params": {"store_id": 4},
        "risk": RiskLevel.HIGH,
        "reversible": True,
        "undo": ActionRef(action="undrain", params={"store_id": 4}),
        "reason": "store 4 is Down; move its leaders to healthy stores",
        "origin": ProposalOrigin.CLAUDE,
        "proposed_by": CLAUDE,
        "requested_by": CLAUDE,
        "state": state,
        "version": 1 if state is ProposalState.PROPOSED else 3,
        "expires_at": T0 + timedelta(minutes=31),
        "created_at": T0 + timedelta(minutes=1),
        "updated_at": T0 + timedelta(minutes=6),
        "preflight": [c.model_dump(mode="json") for c in dry.preflight.checks],
        "preview": dry.model_dump(mode="json"),
        **decided,
    }
    if state is ProposalState.SUCCEEDED:
        fields["outcome"] = "leaders on store 4: 1,203 → 0"
    if state is ProposalState.FAILED:
        fields["outcome"] = "PD refused the request: scheduler existed"
    fields.update(changes)
    return Proposal(**fields)


def execution(status: ExecutionStatus = ExecutionStatus.VERIFYING, **changes: Any) -> Execution:
    start = T0 + timedelta(minutes=5)
    fields: dict[str, Any] = {
        "proposal_id": "P-7",
        "status": status,
        "started_at": start,
        "updated_at": start + timedelta(seconds=20),
        "requests": [
            {
                "method": "POST",
                "path": "/pd/api/v1/schedulers",
                "query": {},
                "body": {"name": "evict-leader-scheduler", "store_id": 4},
            }
        ],
        "pd_message": "The scheduler is created.",
        "progress": [
            ProgressNote(at=start, message="preflight passed on fresh cluster state"),
            ProgressNote(
                at=start + timedelta(seconds=2), message="PD accepted: The scheduler is created."
            ),
            ProgressNote(
                at=start + timedelta(seconds=20), message="leaders on store 4: 1,203 → 312"
            ),
        ],
    }
    if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT):
        fields["finished_at"] = start + timedelta(seconds=42)
    fields.update(changes)
    return Execution(**fields)


def stores() -> list[StoreSummary]:
    out = []
    for i, state in zip(range(1, 5), ["Up", "Up", "Up", "Down"], strict=True):
        out.append(
            StoreSummary(
                id=i,
                address=f"tikv-{i}:20160",
                state=state,
                leader_count=1203 if i == 4 else 1100 + i,
                region_count=3400,
                capacity_bytes=500 * 1024**3,
                available_bytes=(200 + 10 * i) * 1024**3,
                used_ratio=0.6 - i / 100,
                last_heartbeat=T0 + timedelta(minutes=11) if i != 4 else T0 - timedelta(minutes=2),
                drained=False,
                version="8.5.5",
                labels={"zone": f"z{i}"},
            )
        )
    return out


def audit_events() -> list[AuditEvent]:
    return [
        AuditEvent(
            id=12,
            at=T0 + timedelta(minutes=4),
            actor=BOB,
            action="proposal.approve.refused",
            subject="P-7",
            outcome=AuditOutcome.REFUSED,
            reason="<@U0BOB> is not an approver for high-risk actions; ask one of <@U0CAROL>",
        ),
        AuditEvent(
            id=13,
            at=T0 + timedelta(minutes=4),
            actor=ALICE,
            action="proposal.approve",
            subject="P-7",
            detail={"from": "proposed", "to": "approved"},
        ),
        AuditEvent(
            id=11,
            at=T0 + timedelta(minutes=1),
            actor=CLAUDE,
            action="proposal.created",
            subject="P-7",
        ),
    ]


def attended_incident() -> Incident:
    """I-3 owned by bob (since T0+5 min) and silenced by alice until T0+70 min."""
    return incident(
        version=4,
        attention=Attention(
            owner=BOB,
            owned_since=T0 + timedelta(minutes=5),
            silenced_by=ALICE,
            silenced_at=T0 + timedelta(minutes=10),
            silenced_until=T0 + timedelta(minutes=70),
            silence_reason="planned restart of store 4",
            silenced_severity=Severity.CRITICAL,
        ),
    )


def all_messages() -> dict[str, Rendered]:
    """Every message kind the bot sends, by golden-file name."""
    p = proposal
    s = ProposalState
    x = ExecutionStatus
    channel = "<#C0OPS>"
    running = p(s.EXECUTING)
    out: dict[str, Rendered] = {
        "incident_open": incident_parent(incident(), NOW),
        "incident_updated": incident_parent(
            incident(severity=Severity.WARNING), NOW, diagnosis=diagnosis(), proposals=[running]
        ),
        "incident_diagnosis_pending_proposal": incident_parent(
            incident(), NOW, diagnosis=diagnosis(), proposals=[p()]
        ),
        "incident_resolved": incident_parent(resolved_incident(), NOW, diagnosis=diagnosis()),
        "incident_resolved_reply": incident_resolved_reply(resolved_incident(), NOW),
        "incident_worsened_reply": incident_worsened_reply(incident(), "warning", NOW),
        "incident_owned_silenced": incident_parent(attended_incident(), NOW, diagnosis=diagnosis()),
        "incident_silenced_reply": attention_reply(
            attended_incident(),
            AuditEvent(
                at=T0 + timedelta(minutes=10),
                actor=ALICE,
                action="incident.silence",
                subject="I-3",
                reason="planned restart of store 4",
            ),
            NOW,
        ),
        "incident_taken_over_reply": attention_reply(
            attended_incident(),
            AuditEvent(
                at=T0 + timedelta(minutes=5),
                actor=BOB,
                action="incident.acknowledge",
                subject="I-3",
                detail={"taken_from": "slack:U0ALICE"},
            ),
            NOW,
        ),
        "incident_consequences": incident_parent(incident_with_consequences(), NOW),
        "incident_stores_quorum_lost": incident_parent(stores_incident(), NOW),
        "incident_changed_reply": incident_changed_reply(
            incident_with_consequences(),
            (
                IncidentChange(
                    kind=ChangeKind.ESCALATED,
                    title_from="Store 4 disconnected",
                    title_to="Store 4 down",
                ),
                IncidentChange(
                    kind=ChangeKind.CONSEQUENCE_APPEARED,
                    consequence="regions with a down peer",
                    count=3400,
                    stores=(4,),
                ),
            ),
            Severity.WARNING,
            NOW,
        ),
        "incident_merged_reply": incident_resolved_reply(
            incident(
                id="I-5",
                kind="region_pending_peer",
                subject="cluster",
                title="Regions with pending peers",
                status=IncidentStatus.RESOLVED,
                resolved_at=T0 + timedelta(minutes=11),
                details={"merged_into": "I-3"},
            ),
            NOW,
        ),
        "diagnosis": diagnosis_reply(incident(), diagnosis(), NOW),
        "diagnosis_unavailable": diagnosis_reply(
            incident(),
            diagnosis(
                summary="",
                causes=[],
                evidence=[],
                actions=[],
                confidence=0.0,
                error="diagnosis unavailable: Anthropic API timed out after 30 s",
            ),
            NOW,
        ),
        "diagnosis_not_proposed": not_proposed_reply(
            incident(),
            diagnosis(),
            [
                NotProposed(
                    suggested=ProposedAction(
                        action="drain", params={"store_id": 4}, reason="move the leaders off"
                    ),
                    reason="Refused drain: draining store 4 would leave 2 Up store(s) able to "
                    "take leaders (1, 3), fewer than max-replicas 3. Nothing was sent to PD.",
                ),
                NotProposed(
                    suggested=ProposedAction(
                        action="transfer-leader", params={"region_id": 2008, "to_store_id": 1}
                    ),
                    reason="already proposed for I-3 as P-7",
                    duplicate_of="P-7",
                ),
            ],
            NOW,
        ),
        "proposal_pending": proposal_message(p(), NOW),
        "proposal_pending_quorum": proposal_message(
            p(approvals=(Approval(by=ALICE, at=T0 + timedelta(minutes=3)),), version=2),
            NOW,
            approvals_needed=2,
        ),
        "proposal_pending_user_low_risk": proposal_message(
            p(
                id="P-8",
                incident_id=None,
                action="transfer-leader",
                params={"region_id": 2008, "to_store_id": 1},
                risk=RiskLevel.LOW,
                origin=ProposalOrigin.USER,
                proposed_by=BOB,
                requested_by=BOB,
                reason="",
                preflight=[],
                preview=None,
                undo=None,
            ),
            NOW,
        ),
        "proposal_approved": proposal_message(p(s.APPROVED), NOW),
        "proposal_reminder": proposal_reminder(
            p(),
            AuditEvent(
                at=NOW,
                actor=SYSTEM,
                action="proposal.reminder",
                subject="P-7",
                reason="P-7 has waited 11 min for a decision; it expires at 14:31 UTC",
            ),
            NOW,
        ),
        "proposal_rejected": proposal_message(p(s.REJECTED), NOW),
        "proposal_expired": proposal_message(p(s.EXPIRED), NOW),
        "proposal_cancelled": proposal_message(p(s.CANCELLED), NOW),
        "proposal_executing": proposal_message(running, NOW, execution=execution()),
        "proposal_succeeded": proposal_message(
            p(s.SUCCEEDED), NOW, execution=execution(x.SUCCEEDED)
        ),
        "proposal_failed": proposal_message(p(s.FAILED), NOW, execution=execution(x.FAILED)),
        "execution_started": execution_started(
            running, execution(x.STARTED, progress=[], requests=[], pd_message=None), NOW
        ),
        "execution_progress": execution_progress(running, execution(), NOW),
        "execution_succeeded": execution_outcome(p(s.SUCCEEDED), execution(x.SUCCEEDED), NOW),
        "execution_failed": execution_outcome(
            p(s.FAILED),
            execution(
                x.FAILED,
                error="PD refused the request: scheduler existed",
                pd_message="[PD:scheduler:ErrSchedulerExisted]scheduler existed",
            ),
            NOW,
        ),
        "execution_timed_out": execution_outcome(
            p(s.FAILED, outcome="leaders on store 4: 1,203 → 40 after the 30 min deadline"),
            execution(x.TIMED_OUT, error="the deadline of 30 min passed"),
            NOW,
        ),
        "view_status": outcome_view(
            StatusView(
                stores=stores(),
                state_counts={"Up": 3, "Down": 1},
                open_incidents=[incident()],
                active_proposals=[p()],
                kill_switch=KillSwitch(),
                observe_only=False,
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_stores": outcome_view(StoresView(stores=stores()), NOW, channel_mention=channel),
        "view_store": outcome_view(
            StoreView(store=stores()[3], incidents=[incident()], proposals=[p()]),
            NOW,
            channel_mention=channel,
        ),
        "view_region": outcome_view(
            RegionView(
                region_id=2008,
                start_key="7480000000000000FF0F5F728000000000",
                end_key="7480000000000000FF0F5F728000000010",
                epoch_version=41,
                conf_ver=5,
                leader_store_id=1,
                peers=[
                    PeerSummary(
                        peer_id=2009,
                        store_id=1,
                        role="Voter",
                        leader=True,
                        down=False,
                        pending=False,
                    ),
                    PeerSummary(
                        peer_id=2010,
                        store_id=2,
                        role="Voter",
                        leader=False,
                        down=False,
                        pending=True,
                    ),
                    PeerSummary(
                        peer_id=2011,
                        store_id=4,
                        role="Voter",
                        leader=False,
                        down=True,
                        pending=False,
                    ),
                ],
                approximate_size_mib=96,
                approximate_keys=812_000,
                operator=OperatorSummary(
                    desc="transfer-leader", status="RUNNING", brief="transfer leader: store 1 to 2"
                ),
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_incidents": outcome_view(
            IncidentsView(
                incidents=[
                    incident_with_consequences(),
                    incident(
                        id="I-4", title="Write P99 on store 2 is 250 ms", severity=Severity.WARNING
                    ),
                ]
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_proposals": outcome_view(
            ProposalsView(proposals=[p()], recent=[p(s.SUCCEEDED, id="P-6")]),
            NOW,
            channel_mention=channel,
        ),
        "view_proposal": outcome_view(
            ProposalView(
                proposal=p(s.SUCCEEDED),
                text=None,
                execution=execution(x.SUCCEEDED),
                history=list(reversed(audit_events())),
                undo=ActionRef(action="undrain", params={"store_id": 4}),
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_audit": outcome_view(AuditView(events=audit_events()), NOW, channel_mention=channel),
        "view_help": outcome_view(
            HelpView(
                topic="drain",
                text="Usage: /tikv drain <store-id> [--dry-run]\nMove every leader off a store.",
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_refused_parse": outcome_view(
            Refused(
                reason="store ID must be a whole number, got 'four'. "
                "Usage: /tikv drain <store-id> [--dry-run]",
                kind=RefusalKind.PARSE,
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_refused_preflight": outcome_view(
            Refused(
                reason=dry_run(ok=False).preflight.refusal(),
                kind=RefusalKind.PREFLIGHT,
                dry_run=dry_run(ok=False),
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_refused_policy": outcome_view(
            Refused(
                reason="<@U0BOB> is not an approver for high-risk actions; ask one of "
                "<@U0CAROL>, <!subteam^S0ONCALL>",
                kind=RefusalKind.POLICY,
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_dry_run": outcome_view(
            DryRunOutcome(dry_run=dry_run()),
            NOW,
            channel_mention=channel,
            action_params={"store_id": 4},
        ),
        "view_created": outcome_view(
            ProposalCreated(proposal=p(), dry_run=dry_run()), NOW, channel_mention=channel
        ),
        "view_decided": outcome_view(
            Decided(
                proposal=p(s.APPROVED),
                decision="approve",
                by=Identity.slack("U0ALICE"),
                approvals=1,
                needed=1,
                executing=True,
            ),
            NOW,
            channel_mention=channel,
        ),
        "view_kill_switch": outcome_view(
            KillSwitchOutcome(
                settings=EngineSettings(
                    kill_switch=KillSwitch(on=True, by=ALICE, at=NOW, reason="PD upgrade")
                ),
                changed=True,
            ),
            NOW,
            channel_mention=channel,
        ),
    }
    return out
