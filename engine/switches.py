"""Switches: the kill switch (stops every execution) and observe-only mode (monitor and
propose, never execute), persisted and audited. They are checked in one place, the gate that
starts a run (`engine.executor.Executor.open`); turning them off resumes the proposals approved
meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from engine.clock import utc
from engine.errors import PolicyRefusal
from engine.model import AuditEvent, EngineSettings, Identity, KillSwitch
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
        return KillSwitchOutcome(settings=current, changed=False, message=_switch_text(current))

    async def set_kill_switch(
        self, on: bool, actor: Identity, reason: str = ""
    ) -> KillSwitchOutcome | Refused:
        """Turn the kill switch on (anyone who may approve something) or off (a high-risk
        approver). Persisted and audited. While on, nothing starts executing and every attempt
        says why; turning it off starts the proposals that were approved meanwhile."""
        current = await self._repos.settings.get()
        try:
            new, event = set_kill_switch(
                self._policy,
                current,
                on=on,
                actor=actor,
                now=self._clock.now(),
                reason=reason or None,
            )
        except PolicyRefusal as refusal:
            return await self._refusals.refused(
                refusal, actor, f"killswitch.{'on' if on else 'off'}"
            )
        return await self._save_switch(current, new, event, was=current.kill_switch.on, now_on=on)

    async def set_observe_only(
        self, on: bool, actor: Identity, reason: str = ""
    ) -> KillSwitchOutcome | Refused:
        """Observe-only mode: monitor and propose, never execute. Same permissions as the kill
        switch."""
        current = await self._repos.settings.get()
        try:
            new, event = set_observe_only(
                self._policy,
                current,
                on=on,
                actor=actor,
                now=self._clock.now(),
                reason=reason or None,
            )
        except PolicyRefusal as refusal:
            return await self._refusals.refused(
                refusal, actor, f"observe_only.{'on' if on else 'off'}"
            )
        return await self._save_switch(current, new, event, was=current.observe_only, now_on=on)

    async def _save_switch(
        self,
        current: EngineSettings,
        new: EngineSettings,
        event: AuditEvent,
        *,
        was: bool,
        now_on: bool,
    ) -> KillSwitchOutcome:
        await self._repos.settings.save(new, audit=event)
        if not now_on and not new.kill_switch.on and not new.observe_only:
            self._resume()
        return KillSwitchOutcome(settings=new, changed=was != now_on, message=_switch_text(new))


def set_kill_switch(
    policy: ApprovalPolicy,
    current: EngineSettings,
    *,
    on: bool,
    actor: Identity,
    now: datetime,
    reason: str | None = None,
) -> tuple[EngineSettings, AuditEvent]:
    """The new settings and the `killswitch.on`/`killswitch.off` audit event, after checking
    the actor may do it (raises `PolicyRefusal`, carrying its audit event)."""
    now = utc(now)
    policy.check_kill_switch(actor, on, now).raise_if_refused()
    switch = KillSwitch(on=on, by=actor, at=now, reason=reason)
    new = current.model_copy(update={"kill_switch": switch, "updated_at": now})
    event = AuditEvent(
        at=now,
        actor=actor,
        action="killswitch.on" if on else "killswitch.off",
        subject="engine",
        detail={"was_on": current.kill_switch.on, "on": on},
        reason=reason,
    )
    return EngineSettings.model_validate(new.model_dump()), event


def set_observe_only(
    policy: ApprovalPolicy,
    current: EngineSettings,
    *,
    on: bool,
    actor: Identity,
    now: datetime,
    reason: str | None = None,
) -> tuple[EngineSettings, AuditEvent]:
    """Like `set_kill_switch`, for observe-only mode (same permissions)."""
    now = utc(now)
    decision = policy.check_kill_switch(actor, on, now)
    if not decision.allowed:
        assert decision.audit is not None
        audit = decision.audit.model_copy(
            update={"action": f"observe_only.{'on' if on else 'off'}.refused"}
        )
        raise PolicyRefusal(decision.reason, rule=decision.rule, audit=audit)
    new = current.model_copy(update={"observe_only": on, "updated_at": now})
    event = AuditEvent(
        at=now,
        actor=actor,
        action="observe_only.on" if on else "observe_only.off",
        subject="engine",
        detail={"was_on": current.observe_only, "on": on},
        reason=reason,
    )
    return EngineSettings.model_validate(new.model_dump()), event


def _switch_text(settings: EngineSettings) -> str:
    switch = settings.kill_switch
    if switch.on:
        by = f" by {switch.by.label}" if switch.by else ""
        because = f" ({switch.reason})" if switch.reason else ""
        text = f"The kill switch is ON{by}{because}: nothing will execute until it is turned off."
    else:
        text = "The kill switch is off: approved proposals execute."
    if settings.observe_only:
        text += " Observe-only mode is on: tikvops monitors and proposes but never executes."
    return text


__all__ = ["SwitchRepos", "Switches", "set_kill_switch", "set_observe_only"]
