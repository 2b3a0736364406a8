"""`invoke backup` under faults: the database stopped mid-dump, SIGTERM and SIGINT mid-dump.

Each test runs the real CLI as a child process against a throwaway Postgres cluster of its own
(``initdb`` into a temp dir, run as the ``postgres`` user, on a free port: stopping it disturbs
no one), big enough that pg_dump is still copying rows when the fault arrives; the test waits
until the partial backup's dump file has grown, then stops the database or signals the task.
What must hold: one line naming what happened, the exit code of DESIGN.md, no partial
directory, no pg_dump left running, and an audit line with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need

pytestmark = pytest.mark.integration

ENV = "production"
ROWS = 2_000_000  # ~150 MB of table: pg_dump runs for seconds
GROWN = 512 * 1024  # the dump file has this much in it: pg_dump is copying rows
INVOKE = [sys.executable, "-m", "invoke"]


class Cluster:
    """A Postgres cluster in a temp dir, owned by the ``postgres`` user, on ``port``."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.data = home / "data"

    def _as_postgres(self, *argv: str) -> subprocess.CompletedProcess[str]:
        runner = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        return subprocess.run([*runner, *argv], capture_output=True, text=True, timeout=120,
                              check=False)

    def init(self) -> None:
        done = self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U",
                                 "postgres")
        if done.returncode != 0:
            need(f"initdb failed: {done.stderr.strip()[-200:]}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off")
        done = self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                                 str(self.home / "log"), "-w", "-t", "60", "start")
        if done.returncode != 0:
            need(f"pg_ctl start failed: {done.stderr.strip()[-200:]}")

    def stop(self, mode: str) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self._as_postgres("pg_ctl", "-D", str(self.data), "status").returncode == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            need(f"{tool} is not on PATH")
    home = Path(tempfile.mkdtemp(prefix="tminus-pg-"))  # not under pytest's 0700 tmp dir
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    made = Cluster(home, _free_port())
    made.init()
    made.start()
    try:
        import psycopg

        with psycopg.connect(made.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE big AS SELECT g, md5(g::text) AS a, md5((-g)::text) AS b "
                         "FROM generate_series(1, %s) g", (ROWS,))
        yield made
    finally:
        made.stop("immediate")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def running(cluster: Cluster) -> Cluster:
    """The cluster, started again if the previous test stopped it."""
    if not cluster.running():
        cluster.start()
    return cluster


@pytest.fixture
def project(tmp_path: Path, running: Cluster) -> Path:
    root = tmp_path / "service"
    root.mkdir()
    (root / "tasks.py").write_text("from ops.tasks import ns\n")
    (root / ".env").write_text(f"DATABASE_URL={running.url}\n")
    return root


def _pg_dumps_of(port: int) -> list[int]:
    """Pids of pg_dump processes connected to ``port`` (read from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"pg_dump") and any(f"port={port}".encode() in a
                                                           for a in argv):
            pids.append(int(proc.name))
    return pids


def _partials(root: Path) -> list[Path]:
    base = root / "backups" / ENV
    return sorted(base.glob(".partial-*")) if base.is_dir() else []


def _leftovers(root: Path) -> list[str]:
    base = root / "backups" / ENV
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def _backup_until_dumping(root: Path, fault: Callable[[subprocess.Popen[str]], None],
                          port: int) -> subprocess.CompletedProcess[str]:
    """Run ``invoke backup``; once its pg_dump is copying rows, inject ``fault``."""
    child = subprocess.Popen([*INVOKE, "backup"], cwd=root, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            dumps = [p / "postgres.dump" for p in _partials(root)]
            if any(d.is_file() and d.stat().st_size > GROWN for d in dumps) and _pg_dumps_of(port):
                break
            if child.poll() is not None or time.monotonic() > deadline:
                out, err = child.communicate(timeout=10)
                raise AssertionError(f"backup ended before the fault: {child.returncode} {err}")
            time.sleep(0.02)
        fault(child)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=10)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _last_audit(root: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (root / "releases" / "deployments.jsonl").read_text().splitlines()[-1])
    return event


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_database_stopped_mid_dump_is_one_line_exit_1_nothing_kept_and_audited(
        project: Path, running: Cluster, mode: str) -> None:
    done = _backup_until_dumping(project, lambda _child: running.stop(mode), running.port)

    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: Postgres stopped answering during the backup (pg_dump: ")
    assert "nothing was kept" in lines[0] and "cancel failed" not in lines[0]
    assert _leftovers(project) == []
    assert _pg_dumps_of(running.port) == []
    event = _last_audit(project)
    assert (event["action"], event["result"]) == ("backup", "failed")
    assert event["details"]["error"].startswith("Postgres stopped answering during the backup")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_dump_stops_pg_dump_removes_the_partial_audits_and_exits_130(
        project: Path, running: Cluster, signum: signal.Signals) -> None:
    # only the task's own process gets the signal (as from `kill`, a supervisor or a CI
    # runner): stopping pg_dump is the task's job, not the terminal's
    done = _backup_until_dumping(project, lambda child: child.send_signal(signum), running.port)

    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "interrupted"
    assert _leftovers(project) == []
    assert _pg_dumps_of(running.port) == []
    event = _last_audit(project)
    assert (event["action"], event["result"], event["details"]["error"]) == (
        "backup", "failed", "interrupted")
    assert running.running()  # the database itself was never touched
