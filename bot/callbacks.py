"""Interactive element IDs and button values.

`action_id`s are constants here (handlers route on them). A button carries only which proposal
it is about and the version the user saw, as compact JSON (`{"p":"P-7","v":3}`), never the
action itself: the handler reloads the proposal and the engine refuses a stale version with the
reason. Pure.

Block IDs name the proposal too (`decide:P-7:v3`), so a click can be checked against the
message it sits on (`proposal_of_block`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

APPROVE = "tikvops.approve"
REJECT = "tikvops.reject"
UNDO = "tikvops.undo"

BUTTON_ACTIONS = (APPROVE, REJECT, UNDO)

REJECT_VIEW = "tikvops.reject_reason"
"""callback_id of the modal that asks for a rejection reason."""
REJECT_REASON_BLOCK = "reason"
REJECT_REASON_INPUT = "reason_input"

_PROPOSAL_ID = re.compile(r"^P-[0-9]{1,18}$")
_BLOCK_ID = re.compile(r"^(decide|undo|status):(P-[0-9]{1,18}):v[0-9]{1,18}$")

MAX_VALUE = 200
"""The longest button value read: ours are about 25 characters; anything longer is not ours,
and is refused before it is parsed (a deeply nested JSON value would exhaust the parser)."""


class BadButtonValue(ValueError):
    """A button value that is not ours (edited, truncated, from another app)."""


@dataclass(frozen=True, slots=True)
class ButtonValue:
    """What a button says: the proposal and the version shown when it was rendered."""

    proposal_id: str
    version: int

    def encode(self) -> str:
        return json.dumps({"p": self.proposal_id, "v": self.version}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None) -> ButtonValue:
        if not raw:
            raise BadButtonValue("the button carried no value")
        if len(raw) > MAX_VALUE:
            raise BadButtonValue(
                f"the button value is {len(raw)} characters long, not a tikvops value"
            )
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadButtonValue("the button value is not JSON") from None
        if not isinstance(data, dict):
            raise BadButtonValue("the button value is not an object")
        proposal_id = data.get("p")
        version = data.get("v")
        if not isinstance(proposal_id, str) or not _PROPOSAL_ID.match(proposal_id):
            raise BadButtonValue("the button value names no proposal")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise BadButtonValue("the button value has no valid version")
        return cls(proposal_id=proposal_id, version=version)


def block_id(kind: str, proposal_id: str, version: int) -> str:
    """A block ID unique per message version (Slack asks for new IDs when a message changes)."""
    return f"{kind}:{proposal_id}:v{version}"


def proposal_of_block(value: object) -> str | None:
    """The proposal a block ID of ours names (`decide:P-7:v3` → `P-7`), or None."""
    if not isinstance(value, str):
        return None
    match = _BLOCK_ID.match(value)
    return match.group(2) if match else None


# ------------------------------------------------------------------ incident cards

ACK = "tikvops.incident.ack"
SILENCE = "tikvops.incident.silence"
SILENCE_FOR = "tikvops.incident.silence_for"
UNSILENCE = "tikvops.incident.unsilence"
INCIDENT_ACTIONS = (ACK, SILENCE, SILENCE_FOR, UNSILENCE)

_INCIDENT_ID = re.compile(r"^I-[0-9]{1,18}$")
_ATTEND_BLOCK = re.compile(r"^attend:(I-[0-9]{1,18}):v[0-9]{1,18}$")
MAX_SILENCE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class IncidentValue:
    """What an incident card's button or menu option says: the incident and, for a silence,
    its length in seconds (`{"i":"I-3","s":3600}`)."""

    incident_id: str
    seconds: int | None = None

    def encode(self) -> str:
        data: dict[str, object] = {"i": self.incident_id}
        if self.seconds is not None:
            data["s"] = self.seconds
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None) -> IncidentValue:
        if not raw:
            raise BadButtonValue("the button carried no value")
        if len(raw) > MAX_VALUE:
            raise BadButtonValue(
                f"the button value is {len(raw)} characters long, not a tikvops value"
            )
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadButtonValue("the button value is not JSON") from None
        if not isinstance(data, dict):
            raise BadButtonValue("the button value is not an object")
        incident_id = data.get("i")
        seconds = data.get("s")
        if not isinstance(incident_id, str) or not _INCIDENT_ID.match(incident_id):
            raise BadButtonValue("the button value names no incident")
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int)
            or not 60 <= seconds <= MAX_SILENCE_SECONDS
        ):
            raise BadButtonValue("the button value has no valid silence length")
        return cls(incident_id=incident_id, seconds=seconds)


def attend_block_id(incident_id: str, version: int) -> str:
    """The block ID of an incident card's buttons (new per version of the card)."""
    return f"attend:{incident_id}:v{version}"


def incident_of_block(value: object) -> str | None:
    """The incident an attend block ID names (`attend:I-3:v2` → `I-3`), or None."""
    if not isinstance(value, str):
        return None
    match = _ATTEND_BLOCK.match(value)
    return match.group(1) if match else None


__all__ = [
    "ACK",
    "APPROVE",
    "BUTTON_ACTIONS",
    "INCIDENT_ACTIONS",
    "MAX_VALUE",
    "REJECT",
    "REJECT_REASON_BLOCK",
    "REJECT_REASON_INPUT",
    "REJECT_VIEW",
    "SILENCE",
    "SILENCE_FOR",
    "UNDO",
    "UNSILENCE",
    "BadButtonValue",
    "ButtonValue",
    "IncidentValue",
    "attend_block_id",
    "block_id",
    "incident_of_block",
    "proposal_of_block",
]
