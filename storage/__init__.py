"""SQLite persistence (aiosqlite): migrations and the repositories that implement engine.ports."""
