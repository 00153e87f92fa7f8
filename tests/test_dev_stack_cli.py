"""`opsledger dev` beside the other commands, as a user runs them in two shells: a command given
dev's data dir uses dev's servers and leaves dev ready; dev stops (non-zero) when one of its
servers dies; a busy port is one line and exit code 2; help is in whole sentences; the README's
curl session works."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from libs.events.cli import SERVICE_MODULES, cli
from libs.events.embedded import LOCALHOST, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self").exists(), reason="uses /proc"),
]

ROOT = Path(__file__).resolve().parents[1]


def servers_using(data_dir: Path) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data_dir) in text and ("nats-server" in text or "postgres" in text):
            pids.append(int(cmdline.parent.name))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLEDGER_")}
    env["OPSLEDGER_DATA_DIR"] = str(data_dir)
    return env


def opsledger(
    env: dict[str, str], *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "libs.events.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Dev:
    """`opsledger dev` in a child process; its output is read all along (so it never blocks)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "libs.events.cli", "dev", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._running = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "OpsLedger is running at" in line:
                self._running.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_running(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self._running.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"opsledger dev did not start:\n{self.output}")

    def wait_exit(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait_exit(timeout=30)


@dataclass
class Stack:
    env: dict[str, str]
    data_dir: Path
    base: str
    dev: Dev


def start_stack(data_dir: Path) -> Stack:
    env = clean_env(data_dir)
    port = free_port()
    dev = Dev(env, "--port", str(port))
    dev.wait_running()
    return Stack(env=env, data_dir=data_dir, base=f"http://{LOCALHOST}:{port}", dev=dev)


def kill_leftovers(data_dir: Path) -> None:
    for pid in servers_using(data_dir):  # never leave a server behind, even on failure
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One `opsledger dev` shared by the tests that leave it running."""
    data_dir = tmp_path_factory.mktemp("dev") / "data"
    running = start_stack(data_dir)
    try:
        yield running
        assert running.dev.stop() == 0, running.dev.output
        assert servers_using(data_dir) == []
        assert not (data_dir / "dev-stack.json").exists()
    finally:
        if running.dev.proc.poll() is None:
            running.dev.proc.kill()
        kill_leftovers(data_dir)


@pytest.fixture
def own_data_dir(tmp_path: Path) -> Iterator[Path]:
    data_dir = tmp_path / "data"
    yield data_dir
    kill_leftovers(data_dir)


def nats_pid(data_dir: Path) -> int:
    return int((data_dir / "nats" / "nats-server.pid").read_text())


def postgres_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def assert_ready(base: str) -> None:
    answer = httpx.get(f"{base}/readyz")
    assert answer.status_code == 200, answer.text


# --- point 1: one stack per data dir, used by every command ---------------------------------


def test_dev_records_its_pid_and_servers_in_the_data_dir(stack: Stack) -> None:
    record = json.loads((stack.data_dir / "dev-stack.json").read_text())
    assert record["pid"] == stack.dev.proc.pid
    assert record["http_url"] == f"{stack.base}/"
    assert record["nats_url"].startswith("nats://127.0.0.1:")
    assert record["database_url"].startswith("postgresql://")


def test_commands_beside_dev_use_its_servers_and_leave_it_ready(stack: Stack) -> None:
    nats_before, postgres_before = nats_pid(stack.data_dir), postgres_pid(stack.data_dir)
    servers_before = sorted(servers_using(stack.data_dir))

    listed = opsledger(stack.env, "parked", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "No events are parked for any consumer.\n"
    assert f"using the servers of `opsledger dev` (pid {stack.dev.proc.pid})" in listed.stderr
    assert "starting embedded" not in listed.stderr

    for args in (("migrate",), ("replay", "tickets"), ("parked", "list", "--consumer", "x")):
        done = opsledger(stack.env, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert "starting embedded" not in done.stderr

    assert_ready(stack.base)
    assert nats_pid(stack.data_dir) == nats_before and alive(nats_before)
    assert postgres_pid(stack.data_dir) == postgres_before and alive(postgres_before)
    assert sorted(servers_using(stack.data_dir)) == servers_before
    time.sleep(1.0)  # dev's NATS connection would notice a lost server by now
    assert_ready(stack.base)
    assert stack.dev.proc.poll() is None


def test_a_second_dev_on_the_same_data_dir_is_refused(stack: Stack) -> None:
    second = opsledger(stack.env, "dev", "--port", str(free_port()))
    assert second.returncode == 1
    assert f"`opsledger dev` (pid {stack.dev.proc.pid}) is already running" in second.stderr
    assert "Traceback" not in second.stderr
    assert_ready(stack.base)


def test_run_adds_a_replica_to_the_running_stack(stack: Stack) -> None:
    replica = subprocess.Popen(
        [sys.executable, "-m", "libs.events.cli", "run", "tickets", "--no-relay", "--no-timers"],
        env=stack.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert replica.stdout is not None
        seen = []
        for line in replica.stdout:
            seen.append(line)
            if "running: tickets" in line:
                break
        assert any("using the servers of `opsledger dev`" in line for line in seen), seen
    finally:
        replica.send_signal(signal.SIGINT)
        out, _ = replica.communicate(timeout=30)
    assert replica.returncode == 0, out
    assert_ready(stack.base)


def test_a_record_left_by_a_dead_dev_is_ignored(own_data_dir: Path) -> None:
    own_data_dir.mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    stale = {
        "pid": int(gone.stdout),
        "started": None,
        "database_url": "postgresql://postgres@/nowhere?host=/nonexistent",
        "nats_url": "nats://127.0.0.1:1",
        "http_url": None,
    }
    (own_data_dir / "dev-stack.json").write_text(json.dumps(stale))
    listed = opsledger(clean_env(own_data_dir), "parked", "list")
    assert listed.returncode == 0, listed.stderr
    assert "starting embedded Postgres" in listed.stderr
    assert listed.stdout == "No events are parked for any consumer.\n"
    assert servers_using(own_data_dir) == []


@pytest.mark.parametrize("server", ["NATS", "Postgres"])
def test_dev_exits_non_zero_when_its_server_dies(own_data_dir: Path, server: str) -> None:
    running = start_stack(own_data_dir)
    try:
        pid = nats_pid(own_data_dir) if server == "NATS" else postgres_pid(own_data_dir)
        os.kill(pid, signal.SIGKILL)
        code = running.dev.wait_exit(timeout=60)
    finally:
        if running.dev.proc.poll() is None:
            running.dev.proc.kill()
    assert code == 1, running.dev.output
    # the last word is dev's own, one line (the NATS client may have logged reconnect attempts)
    assert running.dev.lines[-1].startswith(
        f"Error: embedded {server} exited unexpectedly, so `opsledger dev` stopped"
    ), running.dev.output
    deadline = time.monotonic() + 15
    while servers_using(own_data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)  # a killed postmaster's backends take a moment to notice
    assert servers_using(own_data_dir) == []
    assert not (own_data_dir / "dev-stack.json").exists()


# --- point 2: a busy port, help, an empty parked list -------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_dev_on_a_busy_port_says_so_in_one_line_and_exits_2(
    own_data_dir: Path, busy_port: int
) -> None:
    done = opsledger(clean_env(own_data_dir), "dev", "--port", str(busy_port), timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.fullmatch(rf"port {busy_port} is in use; try --port \d+\n", done.stderr), done.stderr
    suggested = int(done.stderr.split()[-1])
    with socket.socket() as sock:
        sock.bind((LOCALHOST, suggested))  # the port it suggests is free
    assert servers_using(own_data_dir) == []  # nothing was started


def test_run_gateway_on_a_busy_port_says_so_in_one_line_and_exits_2(
    own_data_dir: Path, busy_port: int
) -> None:
    env = clean_env(own_data_dir) | {
        "OPSLEDGER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "OPSLEDGER_NATS_URL": "nats://127.0.0.1:1",
    }
    done = opsledger(env, "run", "gateway", "--port", str(busy_port), timeout=30)
    assert done.returncode == 2
    assert re.fullmatch(rf"port {busy_port} is in use; try --port \d+\n", done.stderr), done.stderr


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


SENTENCE = re.compile(r"[A-Z`\[(].*[.!?]", re.DOTALL)


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def test_every_help_text_is_whole_sentences() -> None:
    runner = CliRunner()
    paths = list(_commands(cli))
    assert ("parked", "list") in paths and ("run",) in paths
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"], prog_name="opsledger")
        assert result.exit_code == 0, (path, result.output)
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        assert command.help, f"`opsledger {' '.join(path)}` has no help"
        for paragraph in _paragraphs(command.help):
            assert SENTENCE.fullmatch(paragraph), (path, paragraph)
        for param in command.params:
            if isinstance(param, click.Option) and param.help:
                assert SENTENCE.fullmatch(param.help), (path, param.name, param.help)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                short = sub.get_short_help_str(limit=80)
                assert SENTENCE.fullmatch(short), (path, name, short)
        listing = result.output.partition("Commands:")[2]
        assert "..." not in listing, result.output  # no command's summary is cut short


@pytest.mark.parametrize("command", ["run", "replay"])
def test_run_and_replay_list_the_service_names(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], prog_name="opsledger")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert f"SERVICE is one of: {', '.join(SERVICE_MODULES)}." in text


# --- point 3: the README's curl session --------------------------------------------------------


def readme_curl_session() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it with curl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the curl section has no sh block"
    return match.group(1)


def test_the_readme_curl_session_works(stack: Stack, tmp_path: Path) -> None:
    session = readme_curl_session()
    assert len(session.strip().splitlines()) <= 10
    assert "http://127.0.0.1:8080" in session
    script = session.replace("http://127.0.0.1:8080", stack.base)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    registered, signed_in, comment, trail, found = answers
    assert registered["email"] == signed_in["email"] == "ada@example.com"
    assert comment["body"] == "Looking into it."
    assert [e["type"] for e in trail["items"]] == ["ticket.created", "ticket.commented"]
    assert all(e["actor"]["id"] == registered["id"] for e in trail["items"])
    assert [t["title"] for t in found["items"]] == ["Checkout is down"]
    docs = httpx.get(f"{stack.base}/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
