"""Shared parameter types of the actions: region and store IDs with their labels and bounds.

IDs are strict positive integers (PD wants JSON numbers; a string "5" would be "missing" to
PD), titled so errors, help and rendering can name them ("region ID must be ..."). A model
narrows the title with another `Field`, e.g. `Annotated[StoreId, Field(title="target store ID")]`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: Region and store IDs are uint64 in PD; JSON numbers are exact up to 2**53.
MAX_ID = 2**53

RegionId = Annotated[
    int,
    Field(strict=True, ge=1, le=MAX_ID, title="region ID", description="a region's ID in PD"),
]
StoreId = Annotated[
    int,
    Field(strict=True, ge=1, le=MAX_ID, title="store ID", description="a TiKV store's ID in PD"),
]
