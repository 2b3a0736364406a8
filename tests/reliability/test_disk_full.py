"""A full disk while tminus writes a backup, a manifest or the audit log: one error, nothing
half-written, nothing lost.

Each test mounts a small tmpfs (root is needed; CI runs as root) and fills it, then lets tminus
write there. Unmounted at the end, also when the test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ops.atomic import atomic_write_text
from ops.config import load_settings
from ops.deploy import audit
from ops.deploy.backup import create_backup, list_backups
from ops.errors import ExitCode, OpsError
from tests.conftest import need

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs at tmp_path/disk."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        need(f"cannot mount a tmpfs for the disk-full tests: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill the disk, then free about ``leave`` bytes of it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with suppress(OSError):
            while os.write(fd, b"\0" * 4096) == 4096:
                pass
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))


def test_manifest_rewrite_on_a_full_disk_keeps_the_old_file_and_leaves_no_temp(
        small_disk: Path) -> None:
    manifest = small_disk / "manifest_v0.2.0.json"
    manifest.write_text('{"version": "v0.2.0"}\n')
    fill(small_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(manifest, json.dumps({"version": "v0.2.0", "pad": "x" * 65536}))
    assert manifest.read_text() == '{"version": "v0.2.0"}\n'
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "manifest_v0.2.0.json"]


def test_audit_append_on_a_full_disk_is_one_error_and_leaves_no_torn_line(
        small_disk: Path) -> None:
    log = small_disk / "deployments.jsonl"
    event = audit.AuditEvent(action="deploy", env="production", result="success",
                             from_version="v0.1.0", to_version="v0.2.0", duration_s=1.0,
                             details={"pad": "x" * 2000})
    audit.record(log, event)
    before = log.read_bytes()
    fill(small_disk, leave=1000)  # room for half a line
    with pytest.raises(audit.AuditNotWritten) as caught:
        audit.record(log, event)
    assert caught.value.exit_code is ExitCode.FAILED
    assert "No space left on device" in caught.value.message
    assert log.read_bytes() == before
    assert len(list(audit.read_events(log))) == 1


@pytest.fixture
def database(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE blobs (id serial PRIMARY KEY, data text)")
        conn.execute("INSERT INTO blobs (data) SELECT (SELECT string_agg(md5((g * 97 + k)::text), "
                     "'') FROM generate_series(1, 40) k) FROM generate_series(1, 4000) g")
    return pg_url


def test_backup_onto_a_full_disk_fails_in_one_line_keeps_nothing_and_is_audited(
        tmp_path: Path, small_disk: Path, database: str) -> None:
    root = tmp_path / "service"
    root.mkdir()
    (root / ".env").write_text(f"DATABASE_URL={database}\n")
    settings = load_settings({"backup": {"dir": str(small_disk / "backups")}})
    with pytest.raises(OpsError) as caught:
        create_backup(root, settings, "production", label="pre-deploy")
    assert caught.value.exit_code is ExitCode.FAILED
    assert "No space left on device" in caught.value.one_line()
    folder = small_disk / "backups" / "production"
    assert [p for p in folder.iterdir() if p.is_dir()] == []  # the partial one is gone
    assert list_backups(root, settings, "production") == []
    events: list[dict[str, Any]] = list(audit.read_events(root / settings.audit_log))
    assert [(e["action"], e["result"]) for e in events] == [("backup", "failed")]
