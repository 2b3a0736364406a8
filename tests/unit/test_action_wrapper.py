"""The one wrapper of every changing action, without an engine: a temp dir as the root, a body
that succeeds, fails, rolls back or is interrupted; the outcome and the one audit line. And the
one status vocabulary (``Outcome``) of actions and their steps, in the strings they always wrote."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from ops.deploy.action import Act, Outcome, changing_action, failure_reason, outcome_of
from ops.deploy.audit import AuditEvent
from ops.deploy.deploy import DeployResult
from ops.deploy.lock import LockInfo, lock_path
from ops.deploy.stack import Steps
from ops.errors import DeployFailed, LockHeld


def line(act: Act) -> AuditEvent:
    return AuditEvent(action=act.action, env=act.env, result=act.outcome.recorded,
                      to_version=act.version, duration_s=act.duration_s,
                      details={"reason": act.reason} if act.reason else {})


def events(log: Path) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in log.read_text().splitlines()] if log.exists() else []


def run(root: Path, body: object = None, **kw: object) -> tuple[Act | None, list[Act]]:
    ended: list[Act] = []
    with changing_action(root, "staging", action="deploy", version="v1.2.0", describe=line,
                         audit_log=root / "releases/deployments.jsonl",
                         done=ended.append, **kw) as act:  # type: ignore[arg-type]
        assert lock_path(root, "staging").exists() or kw.get("lock") is False \
            or kw.get("dry_run")
        if callable(body):
            body(act)
    return act, ended


def test_success_holds_the_lock_writes_one_line_and_frees_the_lock(tmp_path: Path) -> None:
    act, ended = run(tmp_path)
    assert act is not None and act.outcome is Outcome.SUCCESS and act.audited
    assert ended == [act]
    [event] = events(tmp_path / "releases/deployments.jsonl")
    assert (event["action"], event["env"], event["result"], event["to_version"]) == \
        ("deploy", "staging", "success", "v1.2.0")
    assert not lock_path(tmp_path, "staging").exists()


def test_a_failure_is_failed_with_its_message_and_still_leaves_through_the_caller(
        tmp_path: Path) -> None:
    def fails(_act: Act) -> None:
        raise DeployFailed("smoke test: /health answered 503")

    with pytest.raises(DeployFailed):
        run(tmp_path, fails)
    [event] = events(tmp_path / "releases/deployments.jsonl")
    assert event["result"] == "failed"
    assert event["details"] == {"reason": "smoke test: /health answered 503"}
    assert not lock_path(tmp_path, "staging").exists()


def test_a_rollback_the_body_reports_stays_rolled_back_though_it_raises(tmp_path: Path) -> None:
    def rolls_back(act: Act) -> None:
        act.outcome, act.reason = Outcome.ROLLED_BACK, "post-deploy watch: p95 900 ms"
        raise DeployFailed("deploy of v1.2.0 failed, rolled back to v1.1.0")

    with pytest.raises(DeployFailed):
        run(tmp_path, rolls_back)
    [event] = events(tmp_path / "releases/deployments.jsonl")
    assert event["result"] == "rolled_back"
    assert event["details"] == {"reason": "post-deploy watch: p95 900 ms"}


def test_ctrl_c_is_interrupted_recorded_as_failed_interrupted_as_the_log_always_said(
        tmp_path: Path) -> None:
    ended: list[Act] = []

    def interrupted(_act: Act) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), changing_action(
            tmp_path, "staging", action="rollback", version="v1.1.0", describe=line,
            audit_log=tmp_path / "audit.jsonl", done=ended.append) as act:
        interrupted(act)
    assert ended[0].outcome is Outcome.INTERRUPTED and ended[0].interrupted
    [event] = events(tmp_path / "audit.jsonl")
    assert (event["result"], event["details"]) == ("failed", {"reason": "interrupted"})
    assert not lock_path(tmp_path, "staging").exists()


def test_a_lock_held_by_another_process_is_refused_and_the_attempt_audited(
        tmp_path: Path) -> None:
    other = LockInfo(env="staging", action="deploy", version="v9.9.9", holder="ana",
                     pid=1, pid_start=None)
    path = lock_path(tmp_path, "staging")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(other.__dict__))
    ran: list[bool] = []
    with pytest.raises(LockHeld):
        run(tmp_path, lambda _act: ran.append(True))
    assert ran == []
    [event] = events(tmp_path / "releases/deployments.jsonl")
    assert event["result"] == "failed" and "lock is held by ana" in str(event["details"])
    assert path.exists()  # never someone else's lock removed


def test_reentrant_does_not_take_again_the_lock_this_process_holds(tmp_path: Path) -> None:
    with changing_action(tmp_path, "staging", action="rollback", describe=line,
                         audit_log=tmp_path / "audit.jsonl"):
        mine = json.loads(lock_path(tmp_path, "staging").read_text())
        assert mine["pid"] == os.getpid()
        with changing_action(tmp_path, "staging", action="restore", describe=line,
                             audit_log=tmp_path / "audit.jsonl", reentrant=True) as inner:
            pass
        assert lock_path(tmp_path, "staging").exists()  # still the rollback's
    assert inner.outcome is Outcome.SUCCESS
    assert [e["action"] for e in events(tmp_path / "audit.jsonl")] == ["restore", "rollback"]


def test_dry_run_takes_no_lock_says_so_and_writes_what_describe_gives(tmp_path: Path) -> None:
    said: list[str] = []
    with changing_action(tmp_path, "staging", action="deploy", describe=lambda _a: None,
                         audit_log=tmp_path / "audit.jsonl", dry_run=True,
                         say=said.append) as act:
        assert not lock_path(tmp_path, "staging").exists()
        act.outcome = Outcome.DRY_RUN
    assert act.outcome is Outcome.DRY_RUN and not act.audited
    assert said == [f"[dry-run] take the staging deploy lock ({lock_path(tmp_path, 'staging')})"]
    assert not (tmp_path / "audit.jsonl").exists()


def test_outcomes_keep_the_strings_of_the_audit_log_and_the_json_result() -> None:
    assert [o.value for o in Outcome] == ["success", "failed", "rolled_back", "dry_run",
                                          "interrupted"]
    assert Outcome("success") is Outcome.SUCCESS and str(Outcome.SUCCESS) == "success"
    assert json.dumps(Outcome.ROLLED_BACK) == '"rolled_back"'
    assert Outcome.INTERRUPTED.recorded == "failed"
    assert outcome_of(None, Outcome.DRY_RUN) is Outcome.DRY_RUN
    assert outcome_of(ValueError("x"), Outcome.DRY_RUN) is Outcome.FAILED
    assert outcome_of(KeyboardInterrupt(), Outcome.SUCCESS) is Outcome.INTERRUPTED
    assert failure_reason(ValueError("bad")) == "ValueError: bad"


# --- one status vocabulary -----------------------------------------------------------------------


def test_steps_end_as_outcomes_and_are_still_written_ok_failed_dry_run() -> None:
    out = io.StringIO()
    steps = Steps(out=out)
    with steps.step("pull images") as rec:
        rec.detail = "2 images"
    with pytest.raises(KeyboardInterrupt), steps.step("drain app-1"):
        raise KeyboardInterrupt
    with pytest.raises(DeployFailed), steps.step("start app-2"):
        raise DeployFailed("app-2 never became healthy")
    dry = Steps(out=io.StringIO(), dry_run=True)
    with dry.step("start app-2"):
        pass
    assert [r.status for r in steps.records + dry.records] == [
        Outcome.SUCCESS, Outcome.INTERRUPTED, Outcome.FAILED, Outcome.DRY_RUN]
    assert [r.to_dict()["status"] for r in steps.records + dry.records] == [
        "ok", "failed", "failed", "dry_run"]
    assert steps.records[2].detail == "app-2 never became healthy"
    shown = out.getvalue().splitlines()
    assert shown[1].startswith("  ✓ pull images (") and shown[1].endswith("s): 2 images")
    assert shown[3].startswith("  ✗ drain app-1 (")
    assert shown[5].startswith("  ✗ start app-2 (") and shown[5].endswith(
        ": app-2 never became healthy")


def test_an_interrupted_result_and_its_audit_line_still_say_failed_interrupted() -> None:
    result = DeployResult("deploy", "staging", "v1.2.0", from_version="v1.1.0",
                          result=Outcome.INTERRUPTED, reason="interrupted")
    assert result.interrupted
    assert result.to_dict()["result"] == "failed"
    assert result.message == "deploy of v1.2.0 failed: interrupted"
    event = json.loads(AuditEvent(action="deploy", env="staging",
                                  result=Outcome.INTERRUPTED).to_json())
    assert event["result"] == "failed"
    rolled = DeployResult("deploy", "staging", "v1.2.0", result=Outcome.ROLLED_BACK)
    assert json.loads(json.dumps(rolled.to_dict()))["result"] == "rolled_back"
