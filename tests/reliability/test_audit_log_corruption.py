"""The audit log survives corruption, and appends never follow a symlink.

``releases/deployments.jsonl`` is a file in the repository that anyone with write access can
edit. A line that is not UTF-8, not JSON, nested 100 000 deep or longer than any event is
skipped with a warning naming its number, and every other event still reads; before, such a
line failed every backup (``UnicodeDecodeError``, ``RecursionError``). An append is one write
on an ``O_APPEND | O_NOFOLLOW`` descriptor: concurrent writers never interleave, and a log that
is a symlink is refused instead of appended to wherever it points.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ops.deploy import audit
from ops.deploy.audit import AuditEvent, AuditLogRefused, read_events, record
from ops.errors import ExitCode
from tests.conftest import GitRepo

EVENT = {"action": "deploy", "env": "production", "result": "success", "to_version": "v0.1.0"}


def event_line(**changes: object) -> bytes:
    return (json.dumps({**EVENT, **changes}) + "\n").encode()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "releases" / "deployments.jsonl"


@pytest.fixture(autouse=True)
def fresh_warnings() -> None:
    """Warnings are given once per line per process; each test starts with none given."""
    audit._warned.clear()


def write_log(path: Path, *lines: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ops.audit"]


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "problem"), [
    (b"\xff\xfe not utf-8\n", "not UTF-8 text"),
    (b"{not json\n", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "JSON that nests deeper than 64 levels"),
    (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"\n",
     "JSON that nests deeper than 64 levels"),
    (b'["a list, not an event"]\n', "JSON but not an event object"),
], ids=["not utf-8", "not json", "100000-deep list", "100000-deep object", "not an object"])
def test_a_corrupt_line_is_skipped_with_a_warning_naming_it_and_later_events_still_read(
        log_path: Path, caplog: pytest.LogCaptureFixture, bad: bytes, problem: str) -> None:
    write_log(log_path, event_line(to_version="v0.1.0"), bad, event_line(to_version="v0.2.0"))
    with caplog.at_level(logging.WARNING, logger="ops.audit"):
        events = list(read_events(log_path))
    assert [e["to_version"] for e in events] == ["v0.1.0", "v0.2.0"]
    assert warnings_of(caplog) == [f"audit log {log_path}, line 2: {problem}; skipped"]


def test_a_line_longer_than_any_event_is_skipped_without_being_held_whole(
        log_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    huge = b'{"pad": "' + b"x" * (3 * audit.MAX_LINE_BYTES) + b'"}\n'
    write_log(log_path, huge, event_line())
    with caplog.at_level(logging.WARNING, logger="ops.audit"):
        events = list(read_events(log_path))
    assert events == [EVENT]
    assert warnings_of(caplog) == [
        f"audit log {log_path}, line 1: longer than {audit.MAX_LINE_BYTES} bytes; skipped"]


def test_blank_lines_are_no_events_and_no_warnings(log_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    write_log(log_path, b"\n", event_line(), b"   \n")
    with caplog.at_level(logging.WARNING, logger="ops.audit"):
        assert list(read_events(log_path)) == [EVENT]
    assert warnings_of(caplog) == []


def test_each_corrupt_line_is_warned_about_once_however_often_the_log_is_read(
        log_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_log(log_path, b"\xff\n", event_line())
    with caplog.at_level(logging.WARNING, logger="ops.audit"):
        for _ in range(3):  # a backup reads the log three times
            list(read_events(log_path))
    assert len(warnings_of(caplog)) == 1


def test_a_symlinked_log_is_not_read_and_says_why(tmp_path: Path, log_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(event_line())
    log_path.parent.mkdir(parents=True)
    log_path.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING, logger="ops.audit"):
        assert list(read_events(log_path)) == []
    assert warnings_of(caplog) == [f"audit log {log_path}: is a symlink: not read"]


def test_a_fifo_in_place_of_the_log_is_not_read_and_does_not_block(
        log_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log_path.parent.mkdir(parents=True)
    os.mkfifo(log_path)
    with caplog.at_level(logging.WARNING, logger="ops.audit"):
        assert list(read_events(log_path)) == []
    assert warnings_of(caplog) == [f"audit log {log_path}: is not a regular file: not read"]


# --- appending -----------------------------------------------------------------------------------


def test_appending_to_a_symlinked_log_is_refused_and_its_target_is_untouched(
        tmp_path: Path, log_path: Path) -> None:
    target = tmp_path / "not-the-log"
    target.write_bytes(b"precious\n")
    log_path.parent.mkdir(parents=True)
    log_path.symlink_to(target)
    with pytest.raises(AuditLogRefused, match="is a symlink: the audit log is never written "
                                              "through one") as refused:
        record(log_path, AuditEvent(action="backup", env="production", result="success"))
    assert refused.value.exit_code is ExitCode.USAGE
    assert isinstance(refused.value, OSError)  # callers that tolerate a failed write, tolerate it
    assert target.read_bytes() == b"precious\n"


def test_a_new_log_is_created_with_mode_0644(log_path: Path) -> None:
    record(log_path, AuditEvent(action="backup", env="production", result="success"))
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o644


def test_appends_after_a_corrupt_line_read_back(log_path: Path) -> None:
    write_log(log_path, b"\xff garbage\n")
    record(log_path, AuditEvent(action="backup", env="production", result="success"))
    assert [e["action"] for e in read_events(log_path)] == ["backup"]


def test_a_value_that_is_not_utf8_is_recorded_as_an_escape_and_reads_back(log_path: Path) -> None:
    label = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python hands over such an arg
    record(log_path, AuditEvent(action="backup", env="production", result="success",
                                details={"label": label}))
    assert [e["details"]["label"] for e in read_events(log_path)] == [label]


def _append_many(path: str, writer: int, count: int, size: int) -> None:
    for n in range(count):
        record(Path(path), AuditEvent(action="backup", env="production", result="success",
                                      details={"writer": writer, "n": n, "pad": "x" * size}))


def test_concurrent_appends_never_interleave_within_a_line(log_path: Path) -> None:
    """Eight processes append 64 KiB lines at once: with one write per line on O_APPEND,
    every line reads back whole."""
    writers, count = 8, 40
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_append_many, args=(str(log_path), w, count, 64 << 10))
                 for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    events = list(read_events(log_path))
    assert len(events) == writers * count
    assert {(e["details"]["writer"], e["details"]["n"]) for e in events} == {
        (w, n) for w in range(writers) for n in range(count)}


# --- through the real CLI ------------------------------------------------------------------------


def invoke(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False, env=environ)


@pytest.fixture
def service(git_repo: GitRepo) -> GitRepo:
    git_repo.write("tasks.py", "from ops.tasks import ns\n")
    git_repo.write(".env", "DATABASE_URL=postgresql://app@127.0.0.1:1/app\n")
    return git_repo


@pytest.mark.integration
def test_a_backup_reads_past_a_corrupt_audit_log_with_a_warning_and_appends_its_line(
        service: GitRepo) -> None:
    log = service.path / "releases" / "deployments.jsonl"
    write_log(log, event_line(to_version="v0.3.0"), b"\xff\xfe\n",
              b"[" * 100_000 + b"]" * 100_000 + b"\n")
    done = invoke(service.path, "backup", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"audit log {log}, line 2: not UTF-8 text; skipped" in done.stderr
    assert f"audit log {log}, line 3: JSON that nests deeper than 64 levels; skipped" in done.stderr
    assert "v0.3.0" in done.stdout  # the version came from the event before the damage
    last = list(read_events(log))[-1]
    assert (last["action"], last["result"]) == ("backup", "dry_run")


@pytest.mark.integration
def test_a_backup_whose_audit_log_is_a_symlink_exits_2_and_writes_nothing_through_it(
        service: GitRepo, tmp_path: Path) -> None:
    target = tmp_path / "outside.txt"
    target.write_bytes(b"untouched\n")
    log = service.path / "releases" / "deployments.jsonl"
    log.parent.mkdir(parents=True)
    log.symlink_to(target)
    done = invoke(service.path, "backup", "--dry-run")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: {log} is a symlink: the audit log is never written through one "
        "(hint: replace it with a regular file)")
    assert target.read_bytes() == b"untouched\n"
