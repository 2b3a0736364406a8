"""The intent a deploy records before it changes anything: written whole, read back, recognised
as interrupted when its process is gone, and the baseline rule for a stack left half-switched."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.deploy.history import history_rows
from ops.deploy.intent import (
    Intent,
    IntentUnreadable,
    Tracker,
    choose_baseline,
    intent_path,
    interrupted_in_log,
    is_orphaned,
    read_intent,
    remove_intent,
    unfinished,
    write_intent,
)
from ops.deploy.lock import _process_start
from ops.deploy.rollback import rollback_target


def intent(**kw: Any) -> Intent:
    values: dict[str, Any] = {"action": "deploy", "env": "production", "from_version": "v0.3.0",
                              "to_version": "v0.4.0"}
    values.update(kw)
    return Intent(**values)


def dead_pid() -> int:
    """A pid that certainly belonged to a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def sleeper() -> Iterator[int]:
    """A live process other than this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


# --- the file ------------------------------------------------------------------------------------


def test_written_intent_reads_back_equal(tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    recorded = intent(step="switching app", baseline_p95_ms=21.5, backup_id="b-1")
    write_intent(path, recorded)
    assert read_intent(path) == recorded


def test_state_file_holds_action_from_to_step_baseline_pid_and_start(tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    write_intent(path, intent(step="baseline", baseline_p95_ms=30.0))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["action"], data["from"], data["to"], data["step"]) == \
        ("deploy", "v0.3.0", "v0.4.0", "baseline")
    assert data["baseline_p95_ms"] == 30.0
    assert data["pid"] == os.getpid()
    assert data["started_at"].endswith("Z")


def test_state_folder_keeps_itself_out_of_git_status(tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    write_intent(path, intent())
    assert path.parent == tmp_path / ".tminus" / "deploys"
    assert (path.parent / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"


def test_a_write_that_fails_half_way_leaves_the_previous_step_whole_and_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk failing at fsync is simulated (a full disk cannot be had in a unit test)."""
    path = intent_path(tmp_path, "production")
    write_intent(path, intent(step="baseline"))

    def full_disk(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_intent(path, intent(step="switching app"))
    monkeypatch.undo()
    recorded = read_intent(path)
    assert recorded is not None and recorded.step == "baseline"
    assert sorted(p.name for p in path.parent.iterdir()) == [".gitignore", "production.json"]


def test_no_state_file_means_no_intent(tmp_path: Path) -> None:
    assert read_intent(intent_path(tmp_path, "production")) is None


def test_state_file_that_is_not_json_is_unreadable(tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    path.parent.mkdir(parents=True)
    path.write_text("{half", encoding="utf-8")
    with pytest.raises(IntentUnreadable, match="not JSON"):
        read_intent(path)


def test_state_file_missing_its_target_is_unreadable(tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    write_intent(path, intent())
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["to"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IntentUnreadable, match="'to'"):
        read_intent(path)


def test_state_file_that_is_a_symlink_is_never_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    write_intent(elsewhere, intent())
    path = intent_path(tmp_path, "production")
    path.parent.mkdir(parents=True)
    path.symlink_to(elsewhere)
    with pytest.raises(IntentUnreadable, match="symlink"):
        read_intent(path)


def test_oversized_state_file_is_unreadable_without_being_read_whole(tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    path.parent.mkdir(parents=True)
    path.write_bytes(b" " * (1 << 20))
    with pytest.raises(IntentUnreadable, match="larger than"):
        read_intent(path)


def test_removal_leaves_a_successors_state_file_in_place(tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    mine, theirs = intent(), intent(to_version="v0.5.0")
    write_intent(path, theirs)
    remove_intent(path, mine)
    assert read_intent(path) == theirs


def test_tracker_rewrites_the_step_and_baseline_and_removes_the_file_on_close(
        tmp_path: Path) -> None:
    path = intent_path(tmp_path, "production")
    tracker = Tracker(path, intent())
    tracker.start()
    tracker.step("baseline")
    tracker.baseline(42.0)
    tracker.step("switching app")
    recorded = read_intent(path)
    assert recorded is not None
    assert (recorded.step, recorded.baseline_p95_ms) == ("switching app", 42.0)
    tracker.close()
    assert not path.exists()


def test_tracker_of_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    tracker = Tracker(None, intent())
    tracker.start()
    tracker.step("switching app")
    tracker.close()
    assert not (tmp_path / ".tminus").exists()


# --- dead or alive -------------------------------------------------------------------------------


def test_intent_of_a_process_that_is_gone_is_interrupted() -> None:
    assert is_orphaned(intent(pid=dead_pid(), pid_start=None))


def test_intent_of_a_process_that_still_runs_is_not_interrupted(sleeper: int) -> None:
    assert not is_orphaned(intent(pid=sleeper, pid_start=_process_start(sleeper)))


def test_intent_whose_pid_now_belongs_to_another_program_is_interrupted(sleeper: int) -> None:
    assert is_orphaned(intent(pid=sleeper, pid_start="1"))


def test_intent_left_by_an_earlier_action_of_this_process_is_interrupted() -> None:
    assert is_orphaned(intent())


def test_intent_of_another_host_counts_as_interrupted_once_its_lock_is_gone() -> None:
    assert is_orphaned(intent(host=f"not-{socket.gethostname()}", pid=1))


# --- what the recovery takes as "before" ---------------------------------------------------------


def test_an_interrupted_deploy_settles_on_the_version_it_was_switching_away_from() -> None:
    assert intent(action="deploy").settled_version == "v0.3.0"


def test_an_interrupted_rollback_settles_on_the_version_it_was_going_back_to() -> None:
    back = intent(action="rollback", from_version="v0.4.0", to_version="v0.2.0")
    assert back.settled_version == "v0.2.0"


def test_the_recovery_names_the_interrupted_action_its_versions_and_its_step() -> None:
    assert intent(step="switching app").describe() == \
        "deploy of v0.4.0 from v0.3.0, stopped at: switching app"


def test_rollback_previous_after_an_interrupted_deploy_goes_to_the_version_it_left() -> None:
    events = [{"action": "deploy", "result": "success", "from_version": "v0.2.0",
               "to_version": "v0.3.0"}]
    assert rollback_target(events, "v0.3.0", intent(step="switching app"), None) == "v0.3.0"


def test_rollback_previous_without_an_interrupted_action_reads_the_audit_log() -> None:
    events = [{"action": "deploy", "result": "success", "from_version": "v0.2.0",
               "to_version": "v0.3.0"}]
    assert rollback_target(events, "v0.3.0", None, None) == "v0.2.0"


def test_a_named_rollback_target_wins_over_the_interrupted_action() -> None:
    assert rollback_target([], "v0.3.0", intent(), "v0.1.0") == "v0.1.0"


# --- what an ending leaves for the next run ------------------------------------------------------


def test_an_action_that_settled_the_stack_leaves_nothing_to_recover() -> None:
    own = intent(step="watch")
    assert unfinished(own, intent(step="switching app"), settled=True, interrupted=False) is None


def test_ctrl_c_while_switching_leaves_the_actions_own_record() -> None:
    own = intent(step="switching app", baseline_p95_ms=20.0)
    assert unfinished(own, None, settled=False, interrupted=True) == own


def test_ctrl_c_before_anything_changed_leaves_nothing_to_recover() -> None:
    assert unfinished(intent(step="backup"), None, settled=False, interrupted=True) is None


def test_a_recovery_that_fails_before_changing_anything_passes_the_interrupted_record_on(
        ) -> None:
    killed = intent(step="switching app", pid=1)
    assert unfinished(intent(step="gates"), killed, settled=False, interrupted=False) == killed


def test_a_deploy_that_failed_after_switching_without_a_rollback_leaves_nothing() -> None:
    assert unfinished(intent(step="watch"), None, settled=False, interrupted=False) is None


def test_an_interrupted_record_in_the_newest_deploy_line_is_recovered() -> None:
    left = intent(step="switching app", baseline_p95_ms=18.0)
    events: list[dict[str, Any]] = [
        {"env": "production", "action": "deploy", "result": "failed",
         "details": {"reason": "interrupted", "interrupted": left.to_dict()}},
        {"env": "production", "action": "backup", "result": "success"},
        {"env": "staging", "action": "deploy", "result": "success"}]
    assert interrupted_in_log(events, "production") == left


def test_an_interrupted_record_is_spent_once_a_later_deploy_ran() -> None:
    left = intent(step="switching app")
    events = [{"env": "production", "action": "deploy", "result": "failed",
               "details": {"interrupted": left.to_dict()}},
              {"env": "production", "action": "deploy", "result": "success", "details": {}}]
    assert interrupted_in_log(events, "production") is None


def test_a_deploy_refused_at_the_lock_does_not_hide_an_interrupted_record() -> None:
    left = intent(step="switching app")
    events: list[dict[str, Any]] = [
        {"env": "production", "action": "deploy", "result": "failed",
         "details": {"interrupted": left.to_dict()}},
        {"env": "production", "action": "deploy", "result": "failed",
         "details": {"reason": "the production deploy lock is held", "began": False}}]
    assert interrupted_in_log(events, "production") == left


# --- the baseline on a half-switched stack -------------------------------------------------------


def test_a_recorded_baseline_is_used_even_on_a_mixed_stack() -> None:
    choice = choose_baseline(["v0.3.0", "v0.4.0"], 25.0, has_previous=True)
    assert (choice.source, choice.p95_ms) == ("recorded", 25.0)


def test_a_mixed_stack_without_a_recorded_baseline_skips_the_p95_rule_saying_why() -> None:
    choice = choose_baseline(["v0.3.0", "v0.4.0", "v0.3.0"], None, has_previous=True)
    assert choice.source == "skip"
    assert choice.reason is not None
    assert "v0.3.0 and v0.4.0" in choice.reason and "p95 rule is off" in choice.reason


def test_a_stack_running_one_version_is_measured() -> None:
    assert choose_baseline(["v0.3.0", "v0.3.0", None], None, has_previous=True).source == \
        "measure"


def test_a_first_deploy_has_no_baseline() -> None:
    assert choose_baseline([], None, has_previous=False).source == "none"


# --- the history -------------------------------------------------------------------------------


def test_history_row_notes_the_recovery_of_an_interrupted_deploy() -> None:
    event = {"at": "2026-11-26T12:00:00Z", "env": "production", "action": "deploy",
             "from_version": "v0.3.0", "to_version": "v0.4.0", "result": "success",
             "duration_s": 30.0, "who": "ci", "host": "runner",
             "details": {"recovered_from": "switching app",
                         "recovered": {"action": "deploy", "to": "v0.4.0"}}}
    assert history_rows([event])[0][-1] == \
        "recovered an interrupted deploy (stopped at: switching app)"

