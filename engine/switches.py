"""Switches: the kill switch (stops every execution; the global one, or one per cluster that
stops that cluster's) and observe-only mode (monitor and propose, never execute), persisted
and audited. They are checked in one place, the gate that
starts a run (`engine.executor.Executor.open`); turning them off resumes the proposals approved
meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from engine.clock import utc
from engine.errors import PolicyRefusal
from engine.model import (
    DEFAULT_CLUSTER,
    AuditEvent,
    EngineSettings,
    Identity,
    JsonDict,
    KillSwitch,
)
from engine.policy import ApprovalPolicy
from engine.ports import Clock, EngineSettingsRepo
from engine.refusals import Refusals
from engine.results import KillSwitchOutcome, Refused


class SwitchRepos(Protocol):
    @property
    def settings(self) -> EngineSettingsRepo: ...


class Switches:
    """See the module docstring. `resume` starts the proposals left approved."""

    def __init__(
        self,
        *,
        repos: SwitchRepos,
        policy: ApprovalPolicy,
        clock: Clock,
        refusals: Refusals,
        resume: Callable[[], None],
    ) -> None:
        self._repos = repos
        self._policy = policy
        self._clock = clock
        self._refusals = refusals
        self._resume = resume

    async def kill_switch_status(self) -> KillSwitchOutcome:
        current = await self._repos.settings.get()
        return KillSwitchOutcome(settings=current, changed=False)

    async def set_kill_switch(
        self, on: bool, actor: Identity, reason: str = "", *, cluster: str | None = None
    ) -> KillSwitchOutcome | Refused:
        """Turn the kill switch on (anyone who may approve something) or off (a high-risk
        approver). Persisted and audited. While on, nothing starts executing and every attempt
        says why; turning it off starts the proposals that were approved meanwhile. With
        `cluster`, that cluster's own switch (the global one still holds every cluster)."""
        return await self._set(KILL_SWITCH, on, actor, reason, cluster)

    async def set_observe_only(
        self, on: bool, actor: Identity, reason: str = ""
    ) -> KillSwitchOutcome | Refused:
        """Observe-only mode: monitor and propose, never execute. Same permissions as the kill
        switch."""
        return await self._set(OBSERVE_ONLY, on, actor, reason)

    async def _set(
        self, which: str, on: bool, actor: Identity, reason: str, cluster: str | None = None
    ) -> KillSwitchOutcome | Refused:
        current = await self._repos.settings.get()
        now = self._clock.now()
        try:
            new, event = switched(
                self._policy,
                current,
                which,
                on=on,
                actor=actor,
                now=now,
                reason=reason or None,
                cluster=cluster,
            )
        except PolicyRefusal as refusal:
            return await self._refusals.refused(refusal, actor, f"{which}.{'on' if on else 'off'}")
        await self._repos.settings.save(new, audit=event)
        if not on and not new.kill_switch.on and not new.observe_only:
            self._resume()
        was = _is_on(current, which, cluster)
        return KillSwitchOutcome(settings=new, changed=was != on, cluster=cluster)


KILL_SWITCH = "killswitch"
OBSERVE_ONLY = "observe_only"


def _is_on(settings: EngineSettings, which: str, cluster: str | None = None) -> bool:
    if which != KILL_SWITCH:
        return settings.observe_only
    if cluster is None:
        return settings.kill_switch.on
    own = settings.cluster_switches.get(cluster)
    return own is not None and own.on


def switched(
    policy: ApprovalPolicy,
    current: EngineSettings,
    which: str,
    *,
    on: bool,
    actor: Identity,
    now: datetime,
    reason: str | None = None,
    cluster: str | None = None,
) -> tuple[EngineSettings, AuditEvent]:
    """The new settings with switch `which` (`killswitch` or `observe_only`) turned `on` or
    off, and its `<which>.on`/`<which>.off` audit event, after checking the actor may do it
    (the same permissions for both; raises `PolicyRefusal` carrying its audit event)."""
    now = utc(now)
    action = f"{which}.{'on' if on else 'off'}"
    decision = policy.check_kill_switch(actor, on, now)
    if not decision.allowed:
        assert decision.audit is not None
        audit = decision.audit.model_copy(update={"action": f"{action}.refused"})
        raise PolicyRefusal(decision.reason, rule=decision.rule, audit=audit)
    switch = KillSwitch(on=on, by=actor, at=now, reason=reason)
    if which == KILL_SWITCH and cluster is not None:
        change: dict[str, object] = {
            "cluster_switches": {**current.cluster_switches, cluster: switch}
        }
    elif which == KILL_SWITCH:
        change = {"kill_switch": switch}
    else:
        change = {"observe_only": on}
    new = current.model_copy(update={**change, "updated_at": now})
    detail: JsonDict = {"was_on": _is_on(current, which, cluster), "on": on}
    if cluster is not None:
        detail["cluster"] = cluster
    event = AuditEvent(
        at=now,
        actor=actor,
        action=action,
        subject="engine",
        detail=detail,
        reason=reason,
        cluster=cluster or DEFAULT_CLUSTER,
    )
    return EngineSettings.model_validate(new.model_dump()), event


__all__ = [
    "KILL_SWITCH",
    "OBSERVE_ONLY",
    "SwitchRepos",
    "Switches",
    "switched",
]
