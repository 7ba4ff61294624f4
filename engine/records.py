"""The base of every engine record (frozen, no unknown fields) and the field types they share."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from engine.clock import utc

JsonDict = dict[str, Any]
"""A JSON-able mapping (action parameters, details, snapshots, PD requests)."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(utc)]
"""An aware datetime, normalised to UTC; naive datetimes are refused."""


class Record(BaseModel):
    """Base of all records: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


DEFAULT_CLUSTER = "default"
"""The cluster of a single-cluster deployment, and of every record written before clusters."""

__all__ = ["DEFAULT_CLUSTER", "JsonDict", "Record", "UtcDatetime"]
