"""Backup pieces that need no database: argv builders, URL masking, the Redis file format,
listing, retention and checksum verification over real files in a temp dir."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from ops.config import Settings, load_settings
from ops.deploy.backup import (
    BACKUP_JSON,
    Backup,
    check_files,
    find_backup,
    list_backups,
    prune,
    targets,
)
from ops.errors import ConfigError, DeployFailed, UsageError
from ops.hashing import sha256_file
from ops.redact import mask_url, scrub
from ops.runtime import postgres as pg
from ops.runtime import redis as rds

URL = "postgresql://app:s3cr%40t-pw@db.internal:5433/app"  # pragma: allowlist secret
ENV = "production"


# --- argv builders and URLs ----------------------------------------------------------------------


def test_pg_dump_argv_never_carries_the_password() -> None:
    argv = pg.pg_dump_argv(URL, Path("/b/postgres.dump"))

    assert not any("s3cr" in part for part in argv)
    assert "--dbname=postgresql://app@db.internal:5433/app" in argv


def test_pg_dump_argv_writes_custom_format_from_the_exported_snapshot() -> None:
    argv = pg.pg_dump_argv(URL, Path("/b/postgres.dump"), snapshot="00000003-1")

    assert argv[:4] == ["pg_dump", "--format=custom", "--no-password",
                        "--file=/b/postgres.dump"]
    assert "--snapshot=00000003-1" in argv


def test_pg_restore_builders_read_the_archive_and_restore_in_one_transaction() -> None:
    assert pg.pg_restore_list_argv(Path("d.dump")) == ["pg_restore", "--list", "d.dump"]
    clean = pg.pg_restore_clean_argv(URL, Path("d.dump"))
    assert clean[:5] == ["pg_restore", "--clean", "--if-exists", "--single-transaction",
                         "--exit-on-error"]
    assert not any("s3cr" in part for part in clean)


def test_client_env_hands_the_decoded_password_to_libpq() -> None:
    env = pg.client_env(URL, base={"PATH": "/usr/bin"})

    assert env == {"PATH": "/usr/bin", "PGPASSWORD": "s3cr@t-pw"}  # pragma: allowlist secret


def test_mask_url_hides_the_password_and_keeps_where_it_points() -> None:
    assert mask_url(URL) == "postgresql://app:***@db.internal:5433/app"
    assert mask_url("redis://:pw@cache:6379/2") == "redis://:***@cache:6379/2"


def test_mask_url_leaves_a_url_without_password_unchanged() -> None:
    assert mask_url("redis://127.0.0.1:6379/3") == "redis://127.0.0.1:6379/3"


def test_scrub_removes_raw_and_decoded_password_from_error_text() -> None:
    text = 'FATAL:  password "s3cr@t-pw" for\n user s3cr%40t-pw'

    assert scrub(text, URL) == 'FATAL: password "***" for user ***'


def test_schema_reset_quotes_names_and_recreates_public() -> None:
    sql = pg.reset_schemas_sql(["public", 'we"ird'])

    assert 'DROP SCHEMA IF EXISTS "we""ird" CASCADE;' in sql
    assert sql.rstrip().endswith("GRANT USAGE ON SCHEMA public TO PUBLIC;")


def test_toc_entries_counts_listing_lines_not_comments() -> None:
    listing = ";\n; Archive created\n;\n215; 1259 16388 TABLE public t postgres\n" \
              "3348; 0 16388 TABLE DATA public t postgres\n"

    assert pg.toc_entries(listing) == 2


# --- the Redis dump file -------------------------------------------------------------------------


def _record(key: bytes, pttl: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(key)) + key + struct.pack(">q", pttl) + \
        struct.pack(">I", len(payload)) + payload


def test_redis_dump_file_reads_back_its_records(tmp_path: Path) -> None:
    path = tmp_path / "redis.tmdump"
    path.write_bytes(rds.MAGIC + _record(b"a", -1, b"p1") + _record(b"b", 5000, b"p2")
                     + struct.pack(">IQ", 0xFFFFFFFF, 2))

    assert list(rds.read_records(path)) == [(b"a", -1, b"p1"), (b"b", 5000, b"p2")]


def test_truncated_redis_dump_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "redis.tmdump"
    path.write_bytes(rds.MAGIC + _record(b"a", -1, b"payload")[:-3])

    with pytest.raises(DeployFailed, match="truncated"):
        rds.count_records(path)


def test_redis_dump_missing_its_end_count_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "redis.tmdump"
    path.write_bytes(rds.MAGIC + _record(b"a", -1, b"p") + struct.pack(">IQ", 0xFFFFFFFF, 5))

    with pytest.raises(DeployFailed, match="1 keys read, 5 declared"):
        rds.count_records(path)


def test_foreign_file_is_not_taken_for_a_redis_dump(tmp_path: Path) -> None:
    path = tmp_path / "redis.tmdump"
    path.write_bytes(b"REDIS0011\xfa")

    with pytest.raises(DeployFailed, match="not a tminus Redis dump"):
        rds.count_records(path)


# --- listing, retention, verification ------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    return load_settings({"backup": {"keep": 2}})


def fake_backup(root: Path, backup_id: str, created_at: str, *, env: str = ENV) -> Path:
    """A complete backup directory as create_backup leaves it, with a small real dump file."""
    path = root / "backups" / env / backup_id
    path.mkdir(parents=True)
    dump = path / "postgres.dump"
    dump.write_bytes(f"dump of {backup_id}".encode())
    meta = {"format": 1, "id": backup_id, "env": env, "created_at": created_at,
            "version": "v0.1.0", "postgres": {"row_counts": {"public.t": 3}},
            "redis": None,
            "files": {"postgres.dump": {"size": dump.stat().st_size,
                                        "sha256": sha256_file(dump)}}}
    (path / BACKUP_JSON).write_text(json.dumps(meta))
    return path


IDS = [f"2026010{d}T000000Z_v0.1.0" for d in range(1, 6)]


def make_five(root: Path) -> None:
    for day, backup_id in enumerate(IDS, start=1):
        fake_backup(root, backup_id, f"2026-01-0{day}T00:00:00Z")


def test_list_backups_is_newest_first(tmp_path: Path, settings: Settings) -> None:
    make_five(tmp_path)

    assert [b.id for b in list_backups(tmp_path, settings, ENV)] == IDS[::-1]


def test_list_backups_ignores_partial_and_foreign_directories(
        tmp_path: Path, settings: Settings) -> None:
    fake_backup(tmp_path, "20260101T000000Z_v0.1.0", "2026-01-01T00:00:00Z")
    partial = fake_backup(tmp_path, ".partial-20260102T000000Z_v0.1.0-123", "2026-01-02")
    assert partial.name.startswith(".")
    (tmp_path / "backups" / ENV / "notes").mkdir()
    (tmp_path / "backups" / ENV / "broken").mkdir()
    (tmp_path / "backups" / ENV / "broken" / BACKUP_JSON).write_text("{not json")

    assert [b.id for b in list_backups(tmp_path, settings, ENV)] == ["20260101T000000Z_v0.1.0"]


def test_prune_keeps_the_newest_and_the_backup_taken_before_the_current_deploy(
        tmp_path: Path, settings: Settings) -> None:
    make_five(tmp_path)
    log = tmp_path / "releases" / "deployments.jsonl"
    log.parent.mkdir()
    log.write_text(json.dumps({"action": "deploy", "env": ENV, "result": "success",
                               "details": {"backup_id": IDS[0]}}) + "\n")

    removed = prune(tmp_path, settings, ENV)

    assert sorted(removed) == [IDS[1], IDS[2]]
    assert [b.id for b in list_backups(tmp_path, settings, ENV)] == [IDS[4], IDS[3], IDS[0]]


def test_prune_keeps_explicitly_protected_backups(tmp_path: Path, settings: Settings) -> None:
    make_five(tmp_path)

    prune(tmp_path, settings, ENV, protect={IDS[1]})

    assert [b.id for b in list_backups(tmp_path, settings, ENV)] == [IDS[4], IDS[3], IDS[1]]


def test_prune_removes_partials_of_dead_processes_but_not_of_live_ones(
        tmp_path: Path, settings: Settings) -> None:
    import os

    base = tmp_path / "backups" / ENV
    dead = base / ".partial-20260101T000000Z_v0.1.0-999999999"
    live = base / f".partial-20260102T000000Z_v0.1.0-{os.getpid()}"
    dead.mkdir(parents=True)
    live.mkdir()

    prune(tmp_path, settings, ENV)

    assert not dead.exists()
    assert live.exists()


def test_find_backup_suggests_the_closest_id_for_an_unknown_one(
        tmp_path: Path, settings: Settings) -> None:
    make_five(tmp_path)

    with pytest.raises(UsageError) as caught:
        find_backup(tmp_path, settings, ENV, IDS[2].replace("v0.1.0", "v0.1.1"))

    assert caught.value.hint == f"did you mean {IDS[2]!r}?"


def test_find_backup_latest_is_the_newest(tmp_path: Path, settings: Settings) -> None:
    make_five(tmp_path)

    assert find_backup(tmp_path, settings, ENV, "latest").id == IDS[4]


def test_check_files_rejects_an_altered_dump(tmp_path: Path) -> None:
    path = fake_backup(tmp_path, IDS[0], "2026-01-01T00:00:00Z")
    (path / "postgres.dump").write_bytes(b"dump of 20260101T000000Z_v0.1.X")  # same size
    backup = Backup.load(path)
    assert backup is not None

    with pytest.raises(DeployFailed, match="does not match its checksum"):
        check_files(backup)


def test_check_files_rejects_a_missing_file(tmp_path: Path) -> None:
    path = fake_backup(tmp_path, IDS[0], "2026-01-01T00:00:00Z")
    (path / "postgres.dump").unlink()
    backup = Backup.load(path)
    assert backup is not None

    with pytest.raises(DeployFailed, match=r"postgres\.dump missing"):
        check_files(backup)


def test_environment_without_database_or_redis_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a database nor a Redis"):
        targets(tmp_path, load_settings({}), ENV)


def test_unknown_environment_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'prod'"):
        list_backups(tmp_path, load_settings({}), "prod")


def test_a_backup_started_in_the_same_second_gets_a_distinct_id(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ops.deploy.backup import _new_id

    base = tmp_path / "backups" / ENV
    (base / ".partial-20260101T000000Z_v0.2.0-4242").mkdir(parents=True)
    now = datetime(2026, 1, 1, tzinfo=UTC)

    assert _new_id(base, now, "v0.2.0") == "20260101T000000Z_v0.2.0-2"
    assert _new_id(base, now, "v0.2.0 rc/1") == "20260101T000000Z_v0.2.0-rc-1"
