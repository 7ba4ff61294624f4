"""PD v8.5 error texts, exactly as PD prints them (see reference/pd-errors.json).

`SimError` carries the HTTP status and the message body the simulator answers with; the cluster
raises it and the HTTP layer turns it into PD's JSON-string body.
"""

from __future__ import annotations


class SimError(Exception):
    """A refusal with PD's status and message text (the body is the JSON string of `message`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


NOT_BOOTSTRAPPED = (
    "[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first"
)
OPERATOR_NOT_FOUND = "[PD:operator:ErrOperatorNotFound]operator not found"
ADD_OPERATOR = "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"
REGION_NOT_ADJACENT = "[PD:region:ErrRegionNotAdjacent]two regions are not adjacent"
SCHEDULER_NOT_FOUND = "[PD:scheduler:ErrSchedulerNotFound]scheduler not found"
SCHEDULER_EXISTED = "[PD:scheduler:ErrSchedulerExisted]scheduler existed"
SCHEDULE_CONFIG_NOT_EXIST = "[PD:scheduler:ErrScheduleConfigNotExist]the config does not exist"
NO_OPERATOR_STEP = "no operator step is built"
TARGET_LEADER_NOT_ALLOWED = "cannot create operator: target leader is not allowed"
REDIRECT_FAILED = "[PD:apiutil:ErrRedirect]redirect failed"


def region_not_found(region_id: int) -> str:
    return f"[PD:region:ErrRegionNotFound]region {region_id} not found"


def region_abnormal_peer(region_id: int) -> str:
    return f"[PD:region:ErrRegionAbnormalPeer]region {region_id} has abnormal peer"


def store_not_found(store_id: int) -> str:
    return f"[PD:core:ErrStoreNotFound]store {store_id} not found"


def store_removed(store_id: int) -> str:
    return f"[PD:core:ErrStoreRemoved]store {store_id} has been removed"


def store_unhealthy(store_id: int) -> str:
    return f"[PD:core:ErrStoreUnhealthy]store {store_id} is unhealthy"


def store_destroyed(store_id: int) -> str:
    return f"[PD:core:ErrStoreDestroyed]store {store_id} has been physically destroyed"


def stores_not_enough(store_id: int, up_after: int, need: int) -> str:
    return (
        f"[PD:core:ErrStoresNotEnough]can not remove store {store_id} since the number of up "
        f"stores would be {up_after} while need {need}"
    )


def no_store_for_leader(store_id: int) -> str:
    return (
        f"[PD:core:ErrNoStoreForRegionLeader]can not remove store {store_id} since there are "
        "no extra up store to store the leader"
    )


def pause_leader_transfer(store_id: int) -> str:
    return f"[PD:core:ErrPauseLeaderTransfer]store {store_id} is paused for leader transfer"


def parse_uint_error(text: str, out_of_range: bool = False) -> str:
    reason = "value out of range" if out_of_range else "invalid syntax"
    return f'strconv.ParseUint: parsing "{text}": {reason}'


def atoi_error(text: str, out_of_range: bool = False) -> str:
    reason = "value out of range" if out_of_range else "invalid syntax"
    return f'strconv.Atoi: parsing "{text}": {reason}'


def parse_uint(text: str) -> int:
    """Go's strconv.ParseUint(text, 10, 64); raises ValueError carrying Go's message."""
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(parse_uint_error(text))
    value = int(text)
    if value >= 1 << 64:
        raise ValueError(parse_uint_error(text, out_of_range=True))
    return value


def atoi(text: str) -> int:
    """Go's strconv.Atoi(text); raises ValueError carrying Go's message."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(atoi_error(text))
    value = int(text)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(atoi_error(text, out_of_range=True))
    return value
