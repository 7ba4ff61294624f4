"""The database at start-up: `tikvops run` (its `serve()`, without Slack) on a corrupted file, a
locked file, a full disk and a database of an older schema. Each failure is one sentence naming
the file and what to do, with exit code 2, and leaves the file exactly as it was; an older
schema is migrated with its data kept.

The full disk is made two ways: a file-size limit (`RLIMIT_FSIZE`) in a child process, which
works everywhere, and a 256 KiB tmpfs filled up, which needs root's mount (skipped without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import StorageError
from sim.server import SimServer
from storage import Database
from storage.migrate import latest_version
from tikvops.commands.run import serve
from tikvops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2000


def settings(sim: SimServer, db: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        pd_url=sim.pd_url,
        db=db,
        health_addr="127.0.0.1:0",
        poll_interval=3600,
        anthropic_api_key=None,
    )


async def start_and_stop(cfg: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `serve()`; stop it as soon as it has started. Returns (exit code, stderr + stdout)."""
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cfg, out=out, stop=stop))
    async with asyncio.timeout(30):
        while not task.done() and "tikvops run: started" not in out.getvalue():
            await asyncio.sleep(0.02)
    stop.set()
    code = await asyncio.wait_for(task, 30)
    return code, capsys.readouterr().err + out.getvalue()


async def make_database(path: Path, *, version: int | None = None) -> None:
    """A database with ROWS processed-request rows, checkpointed into the main file."""
    db = await Database.open(path, migrate_to=version)
    await db.close()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO processed_requests (request_id, seen_at, expires_at) VALUES (?, ?, ?)",
            [(f"req-{i:05d}", "2026-01-01T00:00:00.000000Z", "2027-01-01T00:00:00.000000Z")
             for i in range(ROWS)],
        )  # fmt: skip
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM processed_requests").fetchone()
    return int(count)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tikvops.db"
    asyncio.run(make_database(path))
    return path


def corrupt(data: bytes, how: str) -> bytes:
    if how == "not a database":
        return b"this is not an SQLite database\n" * 200
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "header":
        return b"\x01" * 100 + data[100:]
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["not a database", "truncated", "header"])
async def test_a_corrupted_file_stops_start_up_clearly_and_is_kept(
    sim: SimServer,
    template: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    path = tmp_path / "tikvops.db"
    damaged = corrupt(template.read_bytes(), how)
    path.write_bytes(damaged)
    code, text = await start_and_stop(settings(sim, path), capsys)
    assert code == 2
    assert f"the database file {path} is corrupted" in text
    assert "move it aside" in text
    assert path.read_bytes() == damaged  # nothing overwritten, nothing recreated


async def test_a_damaged_page_inside_the_file_is_noticed_at_start_up(
    sim: SimServer, template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tikvops.db"
    data = bytearray(template.read_bytes())
    data[8192:16384] = b"\xde\xad" * 4096
    path.write_bytes(bytes(data))
    code, text = await start_and_stop(settings(sim, path), capsys)
    assert code == 2 and "corrupted" in text


async def test_a_newer_schema_is_refused_and_kept(
    sim: SimServer, template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tikvops.db"
    shutil.copy(template, path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    code, text = await start_and_stop(settings(sim, path), capsys)
    assert code == 2
    assert "schema version 99" in text and "upgrade tikvops" in text
    assert path.read_bytes() == before


async def test_a_locked_file_fails_with_the_reason_then_opens_with_its_data(
    template: Path, tmp_path: Path
) -> None:
    """Another program (a sqlite3 shell, say) holds an exclusive lock on a database in rollback
    journal mode: opening it waits the busy timeout, then says who to look for."""
    path = tmp_path / "tikvops.db"
    shutil.copy(template, path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageError) as failed:
            await Database.open(path, busy_timeout=0.3)
        assert f"the database file {path} stayed locked" in str(failed.value)
        assert "another tikvops (or sqlite3 shell)" in str(failed.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    db = await Database.open(path)
    try:
        row = await db.fetchone("SELECT COUNT(*) FROM processed_requests")
        assert row is not None and row[0] == ROWS
    finally:
        await db.close()


async def test_an_older_schema_is_migrated_at_start_up_with_its_data(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tikvops.db"
    await make_database(path, version=1)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name = 'outbox'").fetchall()
    code, _ = await start_and_stop(settings(sim, path), capsys)
    assert code == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == latest_version()
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'outbox'").fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert rows(path) == ROWS


# ---------------------------------------------------------------------------- full disk

CHILD = """
import asyncio, resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from tikvops.commands.run import serve
from tikvops.settings import Settings

async def main():
    cfg = Settings(_env_file=None, pd_url=sys.argv[1], db=Path(sys.argv[2]),
                   health_addr="127.0.0.1:0", poll_interval=3600)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(2.0, stop.set)
    return await serve(cfg, out=sys.stdout, stop=stop)

sys.exit(asyncio.run(main()))
"""


async def run_limited(sim: SimServer, path: Path, limit: int) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        sim.pd_url,
        str(path),
        str(limit),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_no_room_for_a_new_database_is_a_clear_error(sim: SimServer, tmp_path: Path) -> None:
    path = tmp_path / "tikvops.db"
    code, text = await run_limited(sim, path, 8192)
    assert code == 2, text
    assert f"tikvops run: the database file {path} could not be written" in text, text
    assert "check free space" in text  # what to do next
    assert "Traceback" not in text


async def test_no_room_to_grow_keeps_every_row(
    sim: SimServer, template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "tikvops.db"
    shutil.copy(template, path)
    before = path.read_bytes()
    code, text = await run_limited(sim, path, len(before))
    assert "Traceback" not in text
    assert code in (0, 2), text  # it may start (nothing to write yet) or stop clearly
    if code == 2:
        assert str(path) in text
    assert rows(path) == ROWS
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> None:
    """Write a filler file until the file system is full."""
    filler = (directory / "filler").open("wb")
    try:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            filler.close()


async def test_a_full_disk_at_start_up_says_so(
    sim: SimServer, tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny_disk / "tikvops.db"
    fill(tiny_disk)
    code, text = await start_and_stop(settings(sim, path), capsys)
    assert code == 2, text
    assert f"the disk holding {path} is full" in text and "free space" in text


def test_the_file_size_limit_stays_in_the_child() -> None:
    """The limit above is set in child processes only: this process can still write."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    assert soft == resource.RLIM_INFINITY
