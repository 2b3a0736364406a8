"""A deploy never reports success with fewer replicas than it was asked for.

A replica of the new version that is stopped, or crashes and is restarted in place by the
restart policy, during the post-deploy watch fails the release (it is not quietly replaced): the
automatic rollback brings back the previous version at the count asked for. A replica lost
between deploys is started again by the next deploy, which says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import DemoStack

pytestmark = pytest.mark.e2e

OLD, NEW = "v0.1.0", "v0.2.0"


def stop(container: Any) -> None:
    container.kill()  # `docker kill`: the restart policy leaves it stopped


def crash(container: Any) -> None:
    """SIGKILL its process from the host, as the kernel's OOM killer would (root, one PID
    namespace: how CI runs): the restart policy starts it again in place. `docker kill` would
    not do -- the engine counts any signal it sends as a manual stop."""
    os.kill(int(container.attrs["State"]["Pid"]), signal.SIGKILL)


class Output:
    """The lines a running task printed so far, read on a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no {text!r} in:\n{''.join(self.lines)}"
            time.sleep(0.1)

    @property
    def text(self) -> str:
        self.thread.join(timeout=10)
        return "".join(self.lines)


def running_app_versions(stack: DemoStack) -> list[str]:
    return sorted(c.labels.get("tminus.version", "?") for c in stack.app_containers()
                  if c.status == "running")


@pytest.mark.parametrize("lose", [stop, crash], ids=["stopped", "crashed-and-restarted"])
def test_a_replica_lost_during_the_watch_fails_the_release_and_the_rollback_restores_three(
        demo_stack: DemoStack, lose: Callable[[Any], None]) -> None:
    demo_stack.converge(OLD, replicas=3)
    deploy = demo_stack.popen("deploy", "production", NEW, "--skip-checks", "--skip-backup",
                              "--watch", "30")
    output = Output(deploy)
    try:
        output.wait_for("post-deploy watch", timeout_s=120)
        assert running_app_versions(demo_stack) == [NEW] * 3
        lose(demo_stack.app_containers()[0])
        code = deploy.wait(timeout=180)
    finally:
        if deploy.poll() is None:
            deploy.kill()
    said = output.text
    assert code == 1, said
    assert "a replica was lost: app:" in said
    assert f"rolled back to {OLD}" in said
    assert running_app_versions(demo_stack) == [OLD] * 3


def test_the_next_deploy_starts_again_a_replica_lost_since_the_last_one(
        demo_stack: DemoStack) -> None:
    demo_stack.converge(OLD, replicas=3)
    stop(demo_stack.app_containers()[0])
    assert running_app_versions(demo_stack) == [OLD] * 2
    done = demo_stack.invoke("deploy", "production", NEW, "--skip-checks", "--skip-backup",
                             "--watch", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "app: restoring 3 replicas (2 running" in done.stdout
    assert running_app_versions(demo_stack) == [NEW] * 3
