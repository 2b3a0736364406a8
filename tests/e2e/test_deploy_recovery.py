"""A deploy killed in the middle of its switch, then run again, on the real engine.

``TMINUS_FAULT_AT=deploy:draining`` makes ``invoke deploy`` SIGKILL itself at the worst moment of
a rolling switch: the new replicas are healthy beside the old ones and none of the old ones has
been removed, so the labels say "three of each" and the lock and the state file are left behind.
The next deploy or rollback must know the version that really ran before (the recorded intent,
not the majority of the labels), compare the watch against the baseline measured before the
switch, and leave no state file once it ends. Durations are printed (``-s``), never asserted.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ops.runtime.probe import LoadClient
from tests.e2e.conftest import INVOKE, SLOW, DemoStack

pytestmark = pytest.mark.e2e

DRAINING = "deploy:draining"
QUICK = ("--skip-checks", "--skip-backup", "--watch", "3")


def state_file(stack: DemoStack) -> Path:
    return stack.root / ".tminus" / "deploys" / "production.json"


def like_a_terminal() -> None:
    """Ctrl-C reaches a command typed at a terminal; a suite started as a background job
    (``cmd &`` in a script) inherits SIGINT ignored, and the fault's SIGINT would then be lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_with_fault(stack: DemoStack, fault: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``invoke …`` with the fault armed, in a session of its own (a ``…:SIGINT`` fault signals
    the whole process group, which must not be pytest's)."""
    return subprocess.run([INVOKE, *args], cwd=stack.root,
                          env={**stack.env, "TMINUS_FAULT_AT": fault}, capture_output=True,
                          text=True, timeout=600, check=False, start_new_session=True,
                          preexec_fn=like_a_terminal)


def kill_while_draining(stack: DemoStack, version: str) -> dict[str, Any]:
    """Deploy ``version`` and SIGKILL it before any old replica is removed; the state it left."""
    killed = run_with_fault(stack, DRAINING, "deploy", "production", version, *QUICK)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert len(set(stack.app_versions())) == 2  # both versions run side by side
    state: dict[str, Any] = json.loads(state_file(stack).read_text(encoding="utf-8"))
    return state


def last_audit(stack: DemoStack) -> dict[str, Any]:
    lines = (stack.root / "releases" / "deployments.jsonl").read_text().splitlines()
    event: dict[str, Any] = json.loads(lines[-1])
    return event


def timed(stack: DemoStack, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = stack.invoke(*args)
    return done, time.monotonic() - started


def load_on(url: str) -> LoadClient:
    """Three threads of back-to-back GETs, at most 60 000 requests or 5 minutes."""
    return LoadClient(url, concurrency=3, max_requests=60_000, max_seconds=300.0, pause_s=0.01)


def test_killed_deploy_records_what_ran_before_the_step_it_reached_and_the_baseline(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    state = kill_while_draining(demo_stack, "v0.2.0")
    try:
        assert (state["action"], state["from"], state["to"]) == ("deploy", "v0.1.0", "v0.2.0")
        assert state["step"] == "switching app"
        assert state["baseline_p95_ms"] > 0
        assert state["pid"] > 0 and state["started_at"].endswith("Z")
        marker = state_file(demo_stack).parent / ".gitignore"
        assert marker.read_text(encoding="utf-8").splitlines()[-1] == "*"
    finally:
        demo_stack.converge("v0.1.0", replicas=3)
    assert not state_file(demo_stack).exists()


def test_slow_release_killed_while_draining_is_rolled_back_by_the_recovery_to_the_real_previous(
        demo_stack: DemoStack, tmp_path: Path) -> None:
    demo_stack.converge("v0.2.0", replicas=3)
    state = kill_while_draining(demo_stack, SLOW)
    assert state["from"] == "v0.2.0"
    result_file = tmp_path / "result.json"
    done, took = timed(demo_stack, "deploy", "production", SLOW, *QUICK,
                       "--output", str(result_file))
    print(f"\n[recovery of the killed deploy of slow {SLOW}] {took:.1f}s")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (f"recovering an interrupted deploy of {SLOW} from v0.2.0, stopped at: "
            "switching app") in done.stdout
    assert f"deploy of {SLOW} failed, rolled back to v0.2.0" in done.stderr
    result = json.loads(result_file.read_text())
    assert (result["from_version"], result["rolled_back_to"]) == ("v0.2.0", "v0.2.0")
    assert result["reason"].startswith("post-deploy watch: p95")
    assert result["watch"]["baseline_p95_ms"] == pytest.approx(state["baseline_p95_ms"], abs=0.1)
    audit = last_audit(demo_stack)
    assert (audit["from_version"], audit["to_version"], audit["result"]) == \
        ("v0.2.0", SLOW, "rolled_back")
    assert audit["details"]["recovered_from"] == "switching app"
    assert demo_stack.app_versions() == ["v0.2.0"] * 3
    assert not state_file(demo_stack).exists()


def test_good_release_killed_while_draining_is_finished_as_a_change_from_the_real_previous(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    with load_on(demo_stack.version_url) as load:
        time.sleep(1)
        kill_while_draining(demo_stack, "v0.2.0")
        done, took = timed(demo_stack, "deploy", "production", "v0.2.0", *QUICK)
        assert not state_file(demo_stack).exists()
        back, back_took = timed(demo_stack, "rollback", "previous")
        time.sleep(1)
    stats = load.stats
    print(f"\n[recovery v0.1.0 → v0.2.0] {took:.1f}s · [rollback previous] {back_took:.1f}s · "
          f"{stats.total} requests · {stats.failed} failed · versions {dict(stats.versions)}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deploy v0.1.0 → v0.2.0 succeeded" in done.stdout
    assert last_audit(demo_stack)["action"] == "rollback"
    assert back.returncode == 0, back.stdout + back.stderr
    assert "rollback v0.2.0 → v0.1.0 succeeded" in back.stdout
    assert demo_stack.app_versions() == ["v0.1.0"] * 3
    assert load.stats.failed == 0, load.failures
    assert not state_file(demo_stack).exists()


def test_rollback_previous_after_a_killed_deploy_goes_back_to_the_version_it_was_leaving(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    kill_while_draining(demo_stack, "v0.2.0")
    done, took = timed(demo_stack, "rollback", "previous")
    print(f"\n[rollback previous after the killed deploy] {took:.1f}s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("recovering an interrupted deploy of v0.2.0 from v0.1.0, stopped at: "
            "switching app") in done.stdout
    audit = last_audit(demo_stack)
    assert (audit["action"], audit["to_version"], audit["result"]) == \
        ("rollback", "v0.1.0", "success")
    assert audit["details"]["recovered_from"] == "switching app"
    assert demo_stack.app_versions() == ["v0.1.0"] * 3
    assert not state_file(demo_stack).exists()


def test_deploy_interrupted_by_ctrl_c_while_draining_removes_its_state_and_still_is_recovered(
        demo_stack: DemoStack) -> None:
    demo_stack.converge("v0.1.0", replicas=3)
    stopped = run_with_fault(demo_stack, f"{DRAINING}:SIGINT", "deploy", "production", "v0.2.0",
                             *QUICK)
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert not state_file(demo_stack).exists()
    assert last_audit(demo_stack)["details"]["interrupted"]["step"] == "switching app"
    done, took = timed(demo_stack, "deploy", "production", "v0.2.0", *QUICK)
    print(f"\n[recovery after Ctrl-C] {took:.1f}s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("recovering an interrupted deploy of v0.2.0 from v0.1.0, stopped at: "
            "switching app") in done.stdout
    assert "deploy v0.1.0 → v0.2.0 succeeded" in done.stdout
    assert demo_stack.app_versions() == ["v0.2.0"] * 3
    assert not state_file(demo_stack).exists()
