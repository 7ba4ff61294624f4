"""Engine settings on SQLite: the kill switch (global, and one per cluster) and observe-only
mode, in a single row, changed together with the audit event of the change."""

from __future__ import annotations

from engine.model import AuditEvent, EngineSettings, KillSwitch
from storage.audit import insert_audit
from storage.base import SqlDatabase
from storage.codec import dumps, loads, parse_ts_or_none, ts_or_none


class SqliteEngineSettingsRepo:
    """`engine.ports.EngineSettingsRepo` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def get(self) -> EngineSettings:
        row = await self._db.fetchone("SELECT * FROM engine_settings WHERE id = 1")
        if row is None:  # pragma: no cover - the migration inserts the row
            return EngineSettings()
        return EngineSettings(
            kill_switch=KillSwitch.model_validate(loads(row["kill_switch"])),
            observe_only=bool(row["observe_only"]),
            updated_at=parse_ts_or_none(row["updated_at"]),
            cluster_switches={
                name: KillSwitch.model_validate(switch)
                for name, switch in (loads(row["cluster_switches"]) or {}).items()
            },
        )

    async def save(self, settings: EngineSettings, *, audit: AuditEvent) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE engine_settings SET kill_switch = ?, observe_only = ?, updated_at = ?, "
                "cluster_switches = ? WHERE id = 1",
                (
                    dumps(settings.kill_switch),
                    int(settings.observe_only),
                    ts_or_none(settings.updated_at),
                    dumps(
                        {k: v.model_dump(mode="json") for k, v in settings.cluster_switches.items()}
                    ),
                ),
            )
            await insert_audit(conn, audit)
