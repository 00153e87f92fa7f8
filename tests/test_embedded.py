"""Tests for the embedded dev servers: data survives a restart, no child outlives stop()."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import asyncpg
import nats
import pytest

from libs.events.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedServerError,
    nats_server_binary,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="uses /proc")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}/status").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text()
    )


def _pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        if not pids:
            break
        time.sleep(0.1)
    return pids


def test_nats_binary_comes_from_the_venv_not_path() -> None:
    binary = nats_server_binary()
    assert binary.parent == Path(sysconfig.get_path("scripts"))
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert "v2." in out.stdout


@pytest.mark.asyncio
async def test_nats_stream_survives_restart(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path)
    url = await server.start()
    try:
        assert url.startswith("nats://127.0.0.1:")
        assert not url.endswith(":4222")
        assert (tmp_path / "nats").is_dir()
        pid = server.pid
        assert pid is not None
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="EMB", subjects=["emb.>"])
        ack = await js.publish("emb.one", b"hello")
        assert ack.seq == 1
        await nc.close()
    finally:
        await server.stop()
    assert server.pid is None
    assert not _alive(pid)
    await server.stop()  # idempotent

    async with EmbeddedNats(tmp_path) as again:
        nc = await nats.connect(again.url)
        js = nc.jetstream()
        info = await js.stream_info("EMB")
        assert info.state.messages == 1
        msg = await js.get_msg("EMB", seq=1)
        assert msg.data == b"hello"
        await nc.close()
        second_pid = again.pid
    assert second_pid is not None and not _alive(second_pid)
    assert _pids_mentioning(str(tmp_path / "nats")) == []


@pytest.mark.asyncio
async def test_nats_reaps_stale_server_on_same_store(tmp_path: Path) -> None:
    first = EmbeddedNats(tmp_path)
    await first.start()
    old_pid = first.pid
    assert old_pid is not None
    second = EmbeddedNats(tmp_path)  # as if `first`'s process had died without stopping it
    try:
        await second.start()
        assert _wait_gone([old_pid]) == []
        assert second.pid is not None and second.pid != old_pid
    finally:
        await second.stop()
        await first.stop()
    assert _pids_mentioning(str(tmp_path / "nats")) == []


def _env_with_repo_on_path() -> dict[str, str]:
    root = Path(__file__).resolve().parents[1]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.mark.asyncio
async def test_nats_never_stops_a_server_whose_owner_is_alive(tmp_path: Path) -> None:
    """Another process's live server is refused, not reaped; once its owner dies, it is stale."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from libs.events.embedded import EmbeddedNats

        async def main() -> None:
            server = EmbeddedNats(Path({str(tmp_path)!r}))
            await server.start()
            print(server.pid, flush=True)
            await asyncio.to_thread(sys.stdin.read)  # until the test kills us
            await server.stop()

        asyncio.run(main())
        """
    )
    owner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=_env_with_repo_on_path(),
    )
    second = EmbeddedNats(tmp_path)
    try:
        assert owner.stdout is not None
        owned_pid = int(await asyncio.wait_for(owner.stdout.readline(), 60))
        with pytest.raises(EmbeddedServerError, match=f"belongs to process {owner.pid}"):
            await second.start()
        assert _alive(owned_pid), "a live owner's server was stopped"
        assert second.pid is None

        owner.kill()  # dies hard: its server is left behind, orphaned
        await asyncio.wait_for(owner.wait(), 10)
        assert _alive(owned_pid)
        await second.start()
        assert _wait_gone([owned_pid]) == []
        assert second.pid is not None and second.pid != owned_pid
    finally:
        await second.stop()
        if owner.returncode is None:
            owner.kill()
            await owner.wait()
        for pid in _pids_mentioning(str(tmp_path / "nats")):
            os.kill(pid, signal.SIGKILL)
    assert _pids_mentioning(str(tmp_path / "nats")) == []


@pytest.mark.asyncio
async def test_postgres_row_survives_restart(tmp_path: Path) -> None:
    pgdata = str((tmp_path / "postgres").resolve())
    server = EmbeddedPostgres(tmp_path)
    url = await server.start()
    try:
        assert url.startswith("postgresql://")
        pid = server.pid
        assert pid is not None
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("select 1") == 1
            await conn.execute("create table t (id int primary key, note text)")
            await conn.execute("insert into t values (1, 'kept')")
        finally:
            await conn.close()
    finally:
        await server.stop()
    assert server.pid is None
    assert _wait_gone([pid]) == []
    assert _pids_mentioning(pgdata) == []
    await server.stop()  # idempotent

    async with EmbeddedPostgres(tmp_path) as again:
        conn = await asyncpg.connect(again.url)
        try:
            assert await conn.fetchval("select note from t where id = 1") == "kept"
        finally:
            await conn.close()
    assert _wait_gone(_pids_mentioning(pgdata)) == []


def test_interpreter_exit_stops_both_servers(tmp_path: Path) -> None:
    """The atexit safety net: a process that never calls stop() leaves no server behind."""
    script = textwrap.dedent(
        f"""
        import asyncio
        from pathlib import Path
        from libs.events.embedded import EmbeddedNats, EmbeddedPostgres

        async def main() -> None:
            n = EmbeddedNats(Path({str(tmp_path)!r}))
            p = EmbeddedPostgres(Path({str(tmp_path)!r}))
            await n.start()
            await p.start()
            print(n.pid, p.pid, flush=True)

        asyncio.run(main())
        """
    )
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    nats_pid, pg_pid = (int(x) for x in out.stdout.split())
    assert _wait_gone([nats_pid, pg_pid]) == []
    assert _pids_mentioning(str(tmp_path)) == []


@pytest.mark.asyncio
async def test_postgres_data_dir_with_whitespace(tmp_path: Path) -> None:
    """pgserver alone cannot start postgres when the socket dir has a space in it."""
    data_dir = tmp_path / "Application Support"
    async with EmbeddedPostgres(data_dir) as server:
        conn = await asyncpg.connect(server.url)
        try:
            assert await conn.fetchval("select 1") == 1
        finally:
            await conn.close()
    assert _pids_mentioning(str(data_dir)) == []
