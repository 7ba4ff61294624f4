"""The policy's answer to one request: the rule it was made by, and when refused the audit event
to append and what was observed (`Decision`, `Rule`)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import PolicyRefusal
from engine.model import AuditEvent
from engine.results import Observed


class Rule:
    """Names of the rules a decision is made by (`Decision.rule`)."""

    ALLOWED = "allowed"
    STATE = "state"  # the proposal is not in a state where this is possible
    EXPIRED = "expired"
    DUPLICATE = "duplicate"  # the same person approving twice
    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    NOT_A_PERSON = "not_a_person"  # Claude, a playbook, or the system outside auto-approval
    LOCAL_OPERATOR = "local_operator"  # command-line approvals are not enabled
    KILL_SWITCH = "kill_switch"
    OBSERVE_ONLY = "observe_only"


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer. `reason` is always a plain sentence for the audit record (people
    read the wording `bot.messages.refusal` makes from `observed`); `audit` is set when refused (the
    record to append). When allowed, pass `reason` on in the transition's detail (the helpers
    below do) so the audit row of the change says why it was allowed."""

    allowed: bool
    reason: str
    rule: str
    audit: AuditEvent | None = None
    observed: Observed | None = None

    def raise_if_refused(self) -> None:
        if not self.allowed:
            raise PolicyRefusal(
                self.reason, rule=self.rule, audit=self.audit, observed=self.observed
            )


__all__ = ["Decision", "Rule"]
