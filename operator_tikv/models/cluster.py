"""PD cluster models: health, members, cluster status, version and status (pd-api.md §5.4-5.6).

Member ids and the cluster id are random uint64 values that can exceed 2^63.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from operator_tikv.models.common import PDModel

__all__ = [
    "ClusterInfo",
    "ClusterStatus",
    "Member",
    "MemberHealth",
    "Members",
    "PDStatus",
    "VersionInfo",
]


def _none_to_list(value: object) -> object:
    return [] if value is None else value


class MemberHealth(PDModel):
    """One element of ``GET /health``."""

    name: str = ""
    member_id: int = 0
    client_urls: list[str] = Field(default_factory=list)
    health: bool = False

    @field_validator("client_urls", mode="before")
    @classmethod
    def _null_urls(cls, value: object) -> object:
        return _none_to_list(value)


class Member(PDModel):
    """A PD member (``pdpb.Member``, all keys omitempty)."""

    name: str = ""
    member_id: int = 0
    peer_urls: list[str] = Field(default_factory=list)
    client_urls: list[str] = Field(default_factory=list)
    leader_priority: int = 0
    deploy_path: str = ""
    binary_version: str = ""
    git_hash: str = ""

    @field_validator("peer_urls", "client_urls", mode="before")
    @classmethod
    def _null_urls(cls, value: object) -> object:
        return _none_to_list(value)


class Members(PDModel):
    """``GET /members``. ``leader`` is missing while PD elects one."""

    cluster_id: int = 0
    members: list[Member] = Field(default_factory=list)
    leader: Member | None = None
    etcd_leader: Member | None = None

    @field_validator("members", mode="before")
    @classmethod
    def _null_members(cls, value: object) -> object:
        return _none_to_list(value)

    @model_validator(mode="before")
    @classmethod
    def _lift_cluster_id(cls, value: Any) -> Any:
        """PD puts the cluster id in ``header.cluster_id``."""
        if isinstance(value, dict) and "cluster_id" not in value:
            header = value.get("header")
            if isinstance(header, dict) and "cluster_id" in header:
                return {**value, "cluster_id": header["cluster_id"]}
        return value


class ClusterStatus(PDModel):
    """``GET /cluster/status``. ``replication_status`` is opaque (``""`` in majority mode)."""

    raft_bootstrap_time: datetime | None = None
    is_initialized: bool = False
    replication_status: str = ""


class VersionInfo(PDModel):
    """``GET /version``; only ``version`` is filled by PD."""

    version: str


class PDStatus(PDModel):
    """``GET /status``: build and start information of the PD answering."""

    build_ts: str = ""
    version: str = ""
    git_hash: str = ""
    start_timestamp: int = 0


class ClusterInfo(PDModel):
    """``GET /cluster`` (``metapb.Cluster``)."""

    id: int
    max_peer_count: int = 0
