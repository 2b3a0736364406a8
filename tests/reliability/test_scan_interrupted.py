"""predeploy stopped while its secret scan runs in worker processes.

A scan of a large repository runs in forked workers. Ctrl-C or SIGTERM must end the whole
scan at once (not after every queued chunk), exit 130 with one line, and leave no worker and no
traceback behind: the workers inherit the task's signal handlers and would each print one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

#: ``python -m ops`` with Ctrl-C at its default, as at a terminal, whatever started pytest (a
#: background job inherits SIGINT ignored); exec keeps the pid, so the signal reaches tminus.
TMINUS = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, "
          "signal.SIG_DFL); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
          "-m", "ops"]
#: Enough tracked text that the whole scan takes far longer (about 20 s here) than the
#: interrupted one may: a scan that drains its queue first is told apart from one that stops.
FILES = 3000
LINES = 800
#: How long the scan may take to stop once signalled (it took 7 to 10 s on a real monorepo).
STOP_S = 3.0


@pytest.fixture
def big_repo(git_repo: GitRepo) -> GitRepo:
    for number in range(FILES):
        lines = (f"VALUE_{line} = 'text {number} {line} of an ordinary module'"
                 for line in range(LINES))
        git_repo.write(f"src/module_{number}.py", "\n".join(lines))
    git_repo.commit("a large tree")
    git_repo.tag("v0.1.0")
    return git_repo


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the scan's workers, or git while it lists files)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def command_of(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for_workers(process: subprocess.Popen[str], deadline_s: float = 60) -> list[int]:
    """The forked scan workers (children running Python, not git), once they exist."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        workers = [p for p in children(process.pid) if "ops" in command_of(p)]
        if len(workers) >= 2:
            return workers
        time.sleep(0.05)
    pytest.fail("the scan never started its workers")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_the_parallel_scan_stops_at_once_leaving_no_worker_and_no_traceback(
        big_repo: GitRepo, signum: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "TMINUS_"))}
    process = subprocess.Popen([*TMINUS, "predeploy", "--version", "v0.1.0"], cwd=big_repo.path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        workers = wait_for_workers(process)
        process.send_signal(signum)
        signalled = time.monotonic()
        output, _ = process.communicate(timeout=60)
        stopped_after = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, output
    assert stopped_after < STOP_S, f"the scan drained its queue: stopped after {stopped_after:.1f}s"
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output
    time.sleep(0.5)
    assert [w for w in workers if Path(f"/proc/{w}").exists()
            and "ops" in command_of(w)] == []
