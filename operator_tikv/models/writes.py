"""Every PD write the bot can make, as a value: method, path and body exactly as PD reads them.

A :class:`PDWrite` is built by one of its class methods (``PDWrite.transfer_leader(...)``),
shown to humans (``describe()``, ``as_curl()``) before approval, and executed by
``PDClient.execute``. Bodies follow pd-api.md §1.1, §2, §5 and §6: ids are JSON numbers, the
transfer-leader target is ``to_store_id``, add/remove-peer use ``store_id``, config booleans
are strings and durations Go strings. No write here ever sends ``?force``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from operator_tikv.models.config import encode_replication_changes, encode_schedule_changes
from operator_tikv.models.scheduler import EVICT_LEADER_SCHEDULER

__all__ = ["API_PREFIX", "PDWrite", "SplitPolicy"]

API_PREFIX = "/pd/api/v1"

SplitPolicy = Literal["approximate", "scan", "usekey"]
_HEX_RE = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_SCHEDULER_NAME_RE = re.compile(r"^[a-z0-9-]+$")


def _id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class PDWrite(BaseModel):
    """One PD write request. ``template`` is the path with placeholders (for request stats)."""

    model_config = ConfigDict(frozen=True)

    method: Literal["POST", "DELETE"]
    template: str
    path: str
    query: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    summary: str

    def describe(self) -> str:
        """``POST /pd/api/v1/operators {"name": ...}``: the exact request, on one line."""
        target = self.path + (f"?{urlencode(self.query)}" if self.query else "")
        if self.body is None:
            return f"{self.method} {target}"
        return f"{self.method} {target} {json.dumps(self.body)}"

    def as_curl(self, base_url: str = "$PD") -> str:
        """The same request as a curl command line."""
        target = base_url.rstrip("/") + self.path
        if self.query:
            target += f"?{urlencode(self.query)}"
        # A "$PD" placeholder must stay expandable by the shell.
        quoted = f'"{target}"' if target.startswith("$") else shlex.quote(target)
        parts = ["curl", "-s", "-X", self.method, quoted]
        if self.body is not None:
            parts += ["-d", shlex.quote(json.dumps(self.body))]
        return " ".join(parts)

    # --- operators (POST /operators, DELETE /operators/{region_id}) ---

    @classmethod
    def _operator(cls, body: dict[str, Any], summary: str) -> PDWrite:
        return cls(
            method="POST",
            template=f"{API_PREFIX}/operators",
            path=f"{API_PREFIX}/operators",
            body=body,
            summary=summary,
        )

    @classmethod
    def transfer_leader(cls, region_id: int, to_store_id: int) -> PDWrite:
        """Move the region's leader to the voter on ``to_store_id``."""
        body = {
            "name": "transfer-leader",
            "region_id": _id("region_id", region_id),
            "to_store_id": _id("to_store_id", to_store_id),
        }
        return cls._operator(
            body, f"transfer the leader of region {region_id} to store {to_store_id}"
        )

    @classmethod
    def transfer_peer(cls, region_id: int, from_store_id: int, to_store_id: int) -> PDWrite:
        """Move the region's peer from one store to another (adds, then removes)."""
        if from_store_id == to_store_id:
            raise ValueError("from_store_id and to_store_id must differ")
        body = {
            "name": "transfer-peer",
            "region_id": _id("region_id", region_id),
            "from_store_id": _id("from_store_id", from_store_id),
            "to_store_id": _id("to_store_id", to_store_id),
        }
        return cls._operator(
            body,
            f"move the peer of region {region_id} from store {from_store_id} to store "
            f"{to_store_id}",
        )

    @classmethod
    def add_peer(cls, region_id: int, store_id: int) -> PDWrite:
        body = {
            "name": "add-peer",
            "region_id": _id("region_id", region_id),
            "store_id": _id("store_id", store_id),
        }
        return cls._operator(body, f"add a peer of region {region_id} on store {store_id}")

    @classmethod
    def remove_peer(cls, region_id: int, store_id: int) -> PDWrite:
        body = {
            "name": "remove-peer",
            "region_id": _id("region_id", region_id),
            "store_id": _id("store_id", store_id),
        }
        return cls._operator(body, f"remove the peer of region {region_id} on store {store_id}")

    @classmethod
    def split_region(
        cls,
        region_id: int,
        policy: SplitPolicy = "approximate",
        keys: Sequence[str] | None = None,
    ) -> PDWrite:
        """Split a region; ``keys`` (hex) only with policy ``usekey``."""
        if policy not in ("approximate", "scan", "usekey"):
            raise ValueError(f"unknown split policy {policy!r}")
        body: dict[str, Any] = {
            "name": "split-region",
            "region_id": _id("region_id", region_id),
            "policy": policy,
        }
        if policy == "usekey":
            if not keys:
                raise ValueError("policy 'usekey' needs at least one hex key")
            for key in keys:
                if not _HEX_RE.match(key):
                    raise ValueError(f"split key {key!r} is not hex")
            body["keys"] = list(keys)
        elif keys:
            raise ValueError("keys are only used with policy 'usekey'")
        return cls._operator(body, f"split region {region_id} ({policy})")

    @classmethod
    def merge_region(cls, source_region_id: int, target_region_id: int) -> PDWrite:
        body = {
            "name": "merge-region",
            "source_region_id": _id("source_region_id", source_region_id),
            "target_region_id": _id("target_region_id", target_region_id),
        }
        return cls._operator(
            body, f"merge region {source_region_id} into region {target_region_id}"
        )

    @classmethod
    def cancel_operator(cls, region_id: int) -> PDWrite:
        """Cancel the operator running on a region (it ends with status CANCEL)."""
        rid = _id("region_id", region_id)
        return cls(
            method="DELETE",
            template=f"{API_PREFIX}/operators/{{region_id}}",
            path=f"{API_PREFIX}/operators/{rid}",
            summary=f"cancel the operator on region {rid}",
        )

    # --- schedulers ---

    @classmethod
    def add_scheduler(cls, name: str, store_id: int | None = None) -> PDWrite:
        """Create a scheduler; evict/grant-leader take a store and can be posted once per store."""
        if not _SCHEDULER_NAME_RE.match(name):
            raise ValueError(f"bad scheduler name {name!r}")
        body: dict[str, Any] = {"name": name}
        summary = f"add scheduler {name}"
        if store_id is not None:
            body["store_id"] = _id("store_id", store_id)
            summary += f" for store {store_id}"
        return cls(
            method="POST",
            template=f"{API_PREFIX}/schedulers",
            path=f"{API_PREFIX}/schedulers",
            body=body,
            summary=summary,
        )

    @classmethod
    def add_evict_leader(cls, store_id: int) -> PDWrite:
        """Evict all leaders from a store (adds the store to evict-leader-scheduler)."""
        write = cls.add_scheduler(EVICT_LEADER_SCHEDULER, store_id)
        return write.model_copy(update={"summary": f"evict all leaders from store {store_id}"})

    @classmethod
    def remove_evict_leader_store(cls, store_id: int) -> PDWrite:
        """Stop evicting leaders from one store; the scheduler goes when its last store does."""
        sid = _id("store_id", store_id)
        return cls(
            method="DELETE",
            template=f"{API_PREFIX}/schedulers/{EVICT_LEADER_SCHEDULER}-{{store_id}}",
            path=f"{API_PREFIX}/schedulers/{EVICT_LEADER_SCHEDULER}-{sid}",
            summary=f"stop evicting leaders from store {sid}",
        )

    @classmethod
    def remove_scheduler(cls, name: str) -> PDWrite:
        """Remove a whole scheduler (for evict-leader: for every store)."""
        if not _SCHEDULER_NAME_RE.match(name):
            raise ValueError(f"bad scheduler name {name!r}")
        return cls(
            method="DELETE",
            template=f"{API_PREFIX}/schedulers/{{name}}",
            path=f"{API_PREFIX}/schedulers/{name}",
            summary=f"remove scheduler {name}",
        )

    # --- config ---

    @classmethod
    def set_schedule_config(cls, changes: Mapping[str, object]) -> PDWrite:
        """Set schedule config keys (known keys only; PD would ignore a misspelt one)."""
        body = encode_schedule_changes(changes)
        summary = "set schedule config " + ", ".join(f"{k}={v}" for k, v in body.items())
        return cls(
            method="POST",
            template=f"{API_PREFIX}/config/schedule",
            path=f"{API_PREFIX}/config/schedule",
            body=body,
            summary=summary,
        )

    @classmethod
    def set_replication_config(cls, changes: Mapping[str, object]) -> PDWrite:
        body = encode_replication_changes(changes)
        summary = "set replication config " + ", ".join(f"{k}={v}" for k, v in body.items())
        return cls(
            method="POST",
            template=f"{API_PREFIX}/config/replicate",
            path=f"{API_PREFIX}/config/replicate",
            body=body,
            summary=summary,
        )

    # --- stores ---

    @classmethod
    def set_store_state(cls, store_id: int, state: Literal["Up", "Offline"]) -> PDWrite:
        """``Offline`` starts decommissioning (reversible with ``Up`` until Tombstone)."""
        if state not in ("Up", "Offline"):
            raise ValueError(f"state must be 'Up' or 'Offline', got {state!r}")
        sid = _id("store_id", store_id)
        return cls(
            method="POST",
            template=f"{API_PREFIX}/store/{{store_id}}/state",
            path=f"{API_PREFIX}/store/{sid}/state",
            query={"state": state},
            summary=f"set store {sid} {state}",
        )

    @classmethod
    def set_store_weight(cls, store_id: int, leader: float, region: float) -> PDWrite:
        """Set both weights (PD requires both). Weights persist across restarts."""
        for name, value in (("leader", leader), ("region", region)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} weight must be a number >= 0, got {value!r}")
        sid = _id("store_id", store_id)
        return cls(
            method="POST",
            template=f"{API_PREFIX}/store/{{store_id}}/weight",
            path=f"{API_PREFIX}/store/{sid}/weight",
            body={"leader": leader, "region": region},
            summary=f"set store {sid} weights leader={leader} region={region}",
        )
