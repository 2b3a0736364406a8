"""The environment deploy lock: exclusive, named, waits, and never stuck after a crash."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ops.deploy.lock import DeployLock, LockInfo, deploy_lock, lock_path, pid_alive
from ops.errors import LockHeld


def info(**kw: object) -> LockInfo:
    values: dict[str, object] = {"env": "production", "action": "deploy", "version": "v0.2.0",
                                 "holder": "alice"}
    values.update(kw)
    return LockInfo(**values)  # type: ignore[arg-type]


def dead_pid() -> int:
    """A pid that certainly belonged to a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_file_records_holder_host_pid_version_and_start(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    with DeployLock(path, info()):
        data = json.loads(path.read_text())
    assert data["holder"] == "alice"
    assert data["host"] == socket.gethostname()
    assert data["pid"] == os.getpid()
    assert data["version"] == "v0.2.0"
    assert data["started_at"].endswith("Z")


def test_lock_is_removed_when_the_block_ends(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    with DeployLock(path, info()):
        assert path.exists()
    assert not path.exists()


def test_second_deploy_without_wait_fails_naming_the_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    with DeployLock(path, info()), pytest.raises(LockHeld) as caught:
        DeployLock(path, info(holder="bob", version="v0.3.0")).acquire()
    assert "held by alice@" in caught.value.message
    assert "deploy of v0.2.0" in caught.value.message
    assert caught.value.exit_code == 1


def test_second_deploy_waits_and_gets_the_lock_once_released(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    first = DeployLock(path, info())
    first.acquire()
    timer = threading.Timer(0.5, first.release)
    timer.start()
    second = DeployLock(path, info(holder="bob"), wait_s=10, poll_s=0.05)
    try:
        got = second.acquire()
    finally:
        timer.join()
    assert got.holder == "bob"
    second.release()


def test_lock_of_a_dead_process_on_this_host_is_reclaimed_with_a_warning(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**info(holder="ci", pid=dead_pid()).__dict__}))
    warnings: list[str] = []
    with DeployLock(path, info(), warn=warnings.append) as lock:
        assert lock.held
    assert len(warnings) == 1
    assert "reclaiming the production deploy lock of ci@" in warnings[0]


def test_lock_held_on_another_host_is_never_reclaimed(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**info(holder="ci", host="elsewhere", pid=dead_pid()).__dict__}))
    with pytest.raises(LockHeld, match="held by ci@elsewhere"):
        DeployLock(path, info()).acquire()


def test_lock_of_a_killed_process_is_reclaimed(tmp_path: Path) -> None:
    """A deploy killed with SIGKILL never released its lock; the next one must not block."""
    path = lock_path(tmp_path, "production")
    code = ("import sys, time; from pathlib import Path; from ops.deploy.lock import *; "
            f"l = DeployLock(Path({str(path)!r}), LockInfo('production', 'deploy', 'v1', 'x')); "
            "l.acquire(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    with DeployLock(path, info(), warn=lambda _m: None) as lock:
        assert lock.held


def test_release_does_not_remove_a_lock_someone_else_now_holds(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    mine = DeployLock(path, info())
    mine.acquire()
    path.unlink()
    theirs = DeployLock(path, info(holder="bob"))
    theirs.acquire()
    mine.release()
    assert json.loads(path.read_text())["holder"] == "bob"


def test_unreadable_lock_file_is_reclaimed_with_a_warning(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    warnings: list[str] = []
    with DeployLock(path, info(), warn=warnings.append) as lock:
        assert lock.held
    assert warnings and "unreadable" in warnings[0]


def test_running_process_is_alive_and_a_reaped_one_is_not() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())


def test_waiting_reports_what_it_waits_for(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "production")
    said: list[str] = []
    with DeployLock(path, info()), pytest.raises(LockHeld):
        DeployLock(path, info(holder="bob"), wait_s=0.3, poll_s=0.05,
                   progress=said.append).acquire()
    assert said == [said[0]] and "held by alice@" in said[0]


def test_lock_folder_keeps_itself_out_of_git_status(tmp_path: Path) -> None:
    with deploy_lock(tmp_path, LockInfo(env="production", action="deploy", version="v0.1.0",
                                        holder="test")):
        pass
    assert (tmp_path / ".tminus/locks/.gitignore").read_text().strip().endswith("*")
