"""Short, human-friendly IDs (`I-12`, `P-7`) allocated from a counter in the database, so they
are unique across every process sharing the file."""

from __future__ import annotations

import aiosqlite

from storage.base import SqlDatabase

PREFIX = {"incident": "I", "proposal": "P"}


async def allocate(conn: aiosqlite.Connection, name: str) -> str:
    """Take the next value of sequence `name` (inside the caller's transaction)."""
    cursor = await conn.execute(
        "UPDATE id_sequences SET next_value = next_value + 1 WHERE name = ? "
        "RETURNING next_value - 1",
        (name,),
    )
    row = await cursor.fetchone()
    await cursor.close()
    if row is None:
        raise LookupError(f"no ID sequence named {name!r}")
    return f"{PREFIX[name]}-{int(row[0])}"


async def next_id(db: SqlDatabase, name: str) -> str:
    async with db.transaction() as conn:
        return await allocate(conn, name)
