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


def test_pg_dump_argv_passes_a_conninfo_without_the_password() -> None:
    argv = pg.pg_dump_argv(URL, Path("/b/postgres.dump"))

    assert not any("s3cr" in part for part in argv)
    assert "--dbname=user=app dbname=app host=db.internal port=5433" in argv


@pytest.mark.parametrize("url", [
    "postgresql://app:c4n%23ry%3Fpw%2Fx%40y@db:5432/app",  # encoded # ? / @
    "postgresql://app:c4n#ry?pw@db:5432/app",  # raw '#' and '?': libpq reads them as password
    "postgresql://app@db:5432/app?password=c4n%23ry&sslmode=require",
    "postgresql+psycopg://app:c4n-ry@db/app",
    "host=db dbname=app user=app password=c4n-ry",
])
def test_no_argv_builder_carries_any_part_of_the_password_whatever_its_shape(url: str) -> None:
    argvs = [pg.pg_dump_argv(url, Path("/b/p.dump")), pg.psql_argv(url),
             pg.pg_restore_clean_argv(url, Path("/b/p.dump"))]

    assert not any("c4n" in part for argv in argvs for part in argv)
    assert pg.client_env(url, base={})["PGPASSWORD"].startswith("c4n")


def test_postgres_password_travels_only_in_the_childs_environment() -> None:
    import os

    env = pg.client_env(URL)

    assert env["PGPASSWORD"] == "s3cr@t-pw"  # pragma: allowlist secret
    assert os.environ.get("PGPASSWORD") != "s3cr@t-pw"  # pragma: allowlist secret


@pytest.mark.parametrize("url", ["user:c4n-ry@db:5432/app", "[::1:5432", "postgresql://a b"])
def test_unparseable_postgres_url_is_a_config_error_naming_the_key_never_the_value(
        url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        pg.libpq_params(url, key="DATABASE_URL in .env")

    assert caught.value.one_line().startswith("DATABASE_URL in .env: unparseable Postgres URL")
    assert "c4n" not in caught.value.one_line() and "::1" not in caught.value.one_line()


@pytest.mark.parametrize("url", [
    "postgresql://app:c4n@ry@db:5432/app",  # libpq: password 'c4n', host 'ry@db'
    "postgresql://app:c4n/ry@db/app",  # libpq: host 'app', port 'c4n', dbname 'ry@db/app'
])
def test_postgres_url_whose_password_libpq_would_split_into_other_fields_is_refused(
        url: str) -> None:
    with pytest.raises(ConfigError, match="ambiguous Postgres URL") as caught:
        pg.libpq_params(url)

    assert "c4n" not in caught.value.one_line() and "ry@" not in caught.value.one_line()
    assert caught.value.hint is not None and "%40" in caught.value.hint


def test_database_name_with_an_at_is_not_taken_for_a_split_password() -> None:
    assert pg.libpq_params("postgresql://app@db/my%40db")["dbname"] == "my@db"


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


# --- Redis URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "db"), [
    ("redis://cache:6379/3", 3), ("redis://cache:6379", 0), ("redis://cache:6379/", 0),
    ("redis://cache:6379?db=4", 4), ("rediss://:pw@cache:6380/12", 12),
    ("unix:///run/redis.sock?db=2", 2), ("redis://cache/5?db=5", 5),
])
def test_redis_url_db_index_is_read_from_its_path_or_db_parameter(url: str, db: int) -> None:
    assert rds.url_db_index(url) == db


@pytest.mark.parametrize("url", [
    "redis://cache:6379/abc", "redis://cache:6379/1/2", "redis://cache:6379/-1",
    "redis://cache:6379/0x1", "redis://cache:6379?db=one", "redis://cache:6379/1?db=2",
    "redis://:c4n/ry@cache:6379/0",  # an unencoded '/' in the password ends up in the path
])
def test_redis_url_whose_db_index_is_not_an_integer_is_a_config_error_naming_the_key(
        url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rds.url_db_index(url, key="REDIS_URL in .env")

    assert caught.value.exit_code == 2
    assert caught.value.message.startswith("REDIS_URL in .env: ")
    assert "c4n" not in caught.value.one_line() and "ry@" not in caught.value.one_line()


def test_environment_whose_redis_url_has_a_non_integer_db_index_is_refused_naming_the_key(
        tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:6379/abc\n")

    with pytest.raises(ConfigError, match=r"^REDIS_URL in \.env: the Redis db index"):
        targets(tmp_path, load_settings({}), ENV)


def test_configured_database_url_that_libpq_cannot_parse_is_refused_naming_the_setting(
        tmp_path: Path) -> None:
    settings = load_settings({"environments": {ENV: {
        "database_url": "postgresql://app:pw@[::1:5432/app"}}})  # pragma: allowlist secret

    with pytest.raises(ConfigError, match=rf"^ops\.environments\.{ENV}\.database_url: "):
        targets(tmp_path, settings, ENV)


# --- what pg_dump says -----------------------------------------------------------------------


def test_pg_dump_losing_its_server_is_reported_as_the_database_stopping() -> None:
    from ops.deploy.backup import _check_dump
    from ops.runtime.process import Completed

    stderr = ('pg_dump: error: Dumping the contents of table "big" failed: PQgetCopyData() '
              "failed.\npg_dump: detail: Error message from server: server closed the "
              "connection unexpectedly\n\tThis probably means the server terminated abnormally"
              "\npg_dump: detail: Command was: COPY public.big (g, v) TO stdout;\n")

    with pytest.raises(DeployFailed) as caught:
        _check_dump(Completed(["pg_dump"], 1, "", stderr), URL)

    assert caught.value.message == (
        'Postgres stopped answering during the backup (pg_dump: Dumping the contents of table '
        '"big" failed: PQgetCopyData() failed: server closed the connection unexpectedly); '
        "nothing was kept")


def test_other_pg_dump_failures_name_pg_dumps_error_line() -> None:
    from ops.deploy.backup import _check_dump
    from ops.runtime.process import Completed

    stderr = "pg_dump: error: could not write to output file: No space left on device\n"

    with pytest.raises(DeployFailed, match=r"^pg_dump failed \(exit 1\): could not write to "
                                           r"output file: No space left on device$"):
        _check_dump(Completed(["pg_dump"], 1, "", stderr), URL)


# --- SIGTERM ---------------------------------------------------------------------------------


def test_sigterm_raises_keyboard_interrupt_once_installed() -> None:
    import os
    import signal
    import time

    from ops.taskkit import install_sigterm_as_interrupt

    previous = signal.getsignal(signal.SIGTERM)
    try:
        install_sigterm_as_interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode; the sleep is interrupted
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def _pin(path: Path, pid: int, start: str | None) -> None:
    import socket

    (path / ".restoring").write_text(json.dumps({"pid": pid, "pid_start": start,
                                                 "host": socket.gethostname()}))


def test_prune_never_deletes_a_backup_a_live_process_restores_from(
        tmp_path: Path, settings: Settings) -> None:
    import os

    from ops.deploy.lock import _process_start

    make_five(tmp_path)
    _pin(tmp_path / "backups" / ENV / IDS[0], os.getpid(), _process_start(os.getpid()))

    prune(tmp_path, settings, ENV)

    assert [b.id for b in list_backups(tmp_path, settings, ENV)] == [IDS[4], IDS[3], IDS[0]]


def test_prune_ignores_the_pin_of_a_process_that_is_gone(
        tmp_path: Path, settings: Settings) -> None:
    import subprocess

    make_five(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    _pin(tmp_path / "backups" / ENV / IDS[0], gone.pid, None)

    prune(tmp_path, settings, ENV)

    assert [b.id for b in list_backups(tmp_path, settings, ENV)] == [IDS[4], IDS[3]]


def _make_safety(root: Path, backup_id: str, created_at: str) -> None:
    path = fake_backup(root, backup_id, created_at)
    meta = json.loads((path / BACKUP_JSON).read_text())
    meta.update({"label": "safety", "restore_of": IDS[0]})
    (path / BACKUP_JSON).write_text(json.dumps(meta))


def test_safety_backups_are_kept_apart_from_keep(tmp_path: Path, settings: Settings) -> None:
    make_five(tmp_path)
    safety = [f"2026010{d}T120000Z_v0.1.0" for d in range(1, 6)]
    for day, backup_id in enumerate(safety, start=1):
        _make_safety(tmp_path, backup_id, f"2026-01-0{day}T12:00:00Z")

    prune(tmp_path, settings, ENV)  # keep: 2

    left = list_backups(tmp_path, settings, ENV)
    assert [b.id for b in left if not b.is_safety] == [IDS[4], IDS[3]]
    assert [b.id for b in left if b.is_safety] == [safety[4], safety[3]]


def test_prune_keeps_the_newest_complete_backup_even_when_others_fill_keep(
        tmp_path: Path) -> None:
    settings = load_settings({"backup": {"keep": 1}})
    make_five(tmp_path)
    _make_safety(tmp_path, "20260109T000000Z_v0.1.0", "2026-01-09T00:00:00Z")

    prune(tmp_path, settings, ENV, protect={IDS[0]})

    assert [b.id for b in list_backups(tmp_path, settings, ENV)] == [
        "20260109T000000Z_v0.1.0", IDS[4], IDS[0]]


def test_prune_finishes_deleting_what_a_killed_prune_left_half_deleted(
        tmp_path: Path, settings: Settings) -> None:
    make_five(tmp_path)
    half = tmp_path / "backups" / ENV / f".deleting-{IDS[0]}"
    (tmp_path / "backups" / ENV / IDS[0]).rename(half)

    prune(tmp_path, settings, ENV)

    assert not half.exists()


def test_pin_holds_for_the_block_and_is_removed_after(tmp_path: Path) -> None:
    from ops.deploy.backup import pin, pinned

    path = fake_backup(tmp_path, IDS[0], "2026-01-01T00:00:00Z")
    backup = Backup.load(path)
    assert backup is not None

    with pin(backup) as held:
        assert held.id == IDS[0] and pinned(path)
        check_files(held)  # the pin file is not taken for an unlisted file of the backup
    assert not pinned(path) and not (path / ".restoring").exists()


def test_pinning_a_backup_that_retention_deleted_meanwhile_is_refused(tmp_path: Path) -> None:
    import shutil

    from ops.deploy.backup import pin

    path = fake_backup(tmp_path, IDS[0], "2026-01-01T00:00:00Z")
    backup = Backup.load(path)
    assert backup is not None
    shutil.rmtree(path)

    with pytest.raises(DeployFailed, match="deleted by retention before the restore could pin"), \
            pin(backup, settle_s=0.2):
        pass


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
