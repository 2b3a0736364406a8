"""Backup and restore against the real Postgres and Redis: round trips, the audit trail, faults.

Every test gets a fresh database (``pg_url``) and a flushed Redis db index (``redis_url``); the
project root is a temp dir whose ``.env`` points at them, so the code under test resolves its URLs
exactly as it does for a real service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import redis
from ops.config import Settings, load_settings
from ops.deploy.backup import (
    PG_FILE,
    REDIS_FILE,
    Backup,
    create_backup,
    list_backups,
)
from ops.deploy.restore import restore_backup
from ops.errors import DatabaseUnavailable, DeployFailed, ExitCode, UsageError
from ops.hashing import sha256_file

pytestmark = pytest.mark.integration

ENV = "production"
USERS = 3000
JOBS = 2000


# --- the world ----------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, pg_url: str, redis_url: str) -> Path:
    root = tmp_path / "service"
    root.mkdir()
    (root / ".env").write_text(f"DATABASE_URL={pg_url}\nREDIS_URL={redis_url}\n")
    return root


@pytest.fixture
def settings() -> Settings:
    return load_settings({})


@pytest.fixture
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        seed_postgres(conn)
        yield conn


@pytest.fixture
def kv(redis_url: str) -> Iterator[Any]:
    client: Any = redis.Redis.from_url(redis_url)
    seed_redis(client)
    yield client
    client.close()


def seed_postgres(conn: psycopg.Connection[Any]) -> None:
    """Two schemas, a foreign key, NULLs, JSON, timestamps, a sequence and alembic's table."""
    conn.execute("""
        CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, score numeric,
                            profile jsonb, created timestamptz NOT NULL);
        CREATE SCHEMA work;
        CREATE TABLE work.jobs (id bigserial PRIMARY KEY, user_id int REFERENCES users(id),
                                payload bytea, note text);
        CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('0002');
    """)
    conn.execute(f"""
        INSERT INTO users (email, score, profile, created)
        SELECT 'u' || g || '@example.com', CASE WHEN g % 7 = 0 THEN NULL ELSE g * 1.5 END,
               jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 3)),
               timestamptz '2026-01-01' + g * interval '1 minute'
        FROM generate_series(1, {USERS}) g
    """)  # noqa: S608 - module constants
    conn.execute(f"""
        INSERT INTO work.jobs (user_id, payload, note)
        SELECT 1 + g % {USERS}, decode(md5(g::text), 'hex'),
               CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('x', g % 40) END
        FROM generate_series(1, {JOBS}) g
    """)  # noqa: S608 - module constants


def table_checksums(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row, in key order: equal means the same data."""
    out = {}
    for name in ("users", "work.jobs", "alembic_version"):
        order = "version_num" if name == "alembic_version" else "id"
        query = f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), ''))"
        row = conn.execute(f"{query} FROM {name} t").fetchone()
        assert row is not None
        out[name] = (int(row[0]), str(row[1]))
    return out


def seed_redis(client: Any) -> None:
    """One key of every type, some with TTLs, and binary keys and values."""
    client.set("s:plain", "hello")
    client.set("s:ttl", b"\x00\xffbinary", ex=600)
    client.set(b"k:\xc3\xa9\x00bin", "binary key")
    client.hset("h:user:1", mapping={"name": "Ada", "score": "42"})
    client.expire("h:user:1", 1200)
    client.rpush("l:queue", *[f"job-{i}" for i in range(300)])
    client.sadd("set:tags", "a", "b", "c")
    client.zadd("z:rank", {"ada": 1.5, "bob": 2.25, "cy": -3})
    client.expire("z:rank", 90)
    client.xadd("x:events", {"kind": "signup", "user": "1"})
    client.xadd("x:events", {"kind": "login", "user": "1"})
    for i in range(500):
        client.set(f"bulk:{i}", i)


def redis_state(client: Any) -> dict[bytes, tuple[str, Any, int]]:
    """key → (type, value, pttl) for every key of the db index."""
    state: dict[bytes, tuple[str, Any, int]] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            raise AssertionError(f"unexpected type {kind}")
        state[key] = (kind, value, int(client.pttl(key)))
    return state


def assert_same_redis(before: dict[bytes, tuple[str, Any, int]],
                      after: dict[bytes, tuple[str, Any, int]]) -> None:
    assert set(after) == set(before)
    for key, (kind, value, pttl) in before.items():
        assert after[key][:2] == (kind, value), key
        if pttl < 0:
            assert after[key][2] == pttl, key
        else:  # the remaining TTL is kept: it only went down by the time the restore took
            assert pttl - 30_000 <= after[key][2] <= pttl + 50, key


def mutate(conn: psycopg.Connection[Any], client: Any) -> None:
    conn.execute("DELETE FROM work.jobs WHERE id % 3 = 0")
    conn.execute("UPDATE users SET score = -1, profile = NULL WHERE id < 500")
    conn.execute("INSERT INTO users (email, created) VALUES ('new@example.com', now())")
    conn.execute("CREATE TABLE invoices (id int)")  # as a newer migration would
    conn.execute("UPDATE alembic_version SET version_num = '0003'")
    client.delete("l:queue", "s:plain")
    client.set("s:new", "after the backup")
    client.hset("h:user:1", "name", "Changed")
    client.persist("s:ttl")


# --- round trips ---------------------------------------------------------------------------------


def test_restore_returns_every_table_to_its_rows_at_backup_time(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    before = table_checksums(db)
    made = create_backup(project, settings, ENV, label="t")
    mutate(db, kv)
    assert table_checksums(db) != before

    restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert table_checksums(db) == before


def test_restore_drops_tables_created_after_the_backup(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)

    restore_backup(project, settings, ENV, made.id, assume_yes=True)

    row = db.execute("SELECT to_regclass('invoices')").fetchone()
    assert row is not None and row[0] is None


def test_restore_returns_every_redis_key_with_its_type_value_and_ttl(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    before = redis_state(kv)
    made = create_backup(project, settings, ENV)
    mutate(db, kv)

    restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert_same_redis(before, redis_state(kv))


def test_redis_backup_and_restore_stay_within_the_urls_db_index(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_url: str) -> None:
    other: Any = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/0")
    marker = f"tminus-test-other-db-{uuid.uuid4().hex}"
    other.set(marker, "untouched", ex=300)
    try:
        made = create_backup(project, settings, ENV)
        restore_backup(project, settings, ENV, made.id, assume_yes=True)
        assert made.redis_keys == kv.dbsize()
        assert other.get(marker) == b"untouched"
    finally:
        other.delete(marker)
        other.close()


def test_backup_directory_holds_verified_files_private_to_the_owner(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_url: str) -> None:
    made = create_backup(project, settings, ENV, label="nightly", version="v0.2.0")

    assert made.path == project / "backups" / ENV / made.id
    assert made.id.endswith("_v0.2.0")
    assert made.path.stat().st_mode & 0o777 == 0o700
    meta = json.loads((made.path / "backup.json").read_text())
    for name in (PG_FILE, REDIS_FILE):
        path = made.path / name
        assert path.stat().st_mode & 0o777 == 0o600
        assert meta["files"][name] == {"size": path.stat().st_size, "sha256": sha256_file(path)}
    assert meta["postgres"]["row_counts"] == {"public.users": USERS, "work.jobs": JOBS,
                                              "public.alembic_version": 1}
    assert meta["postgres"]["alembic_revision"] == "0002"
    assert meta["redis"]["keys"] == kv.dbsize()
    assert (meta["label"], meta["version"]) == ("nightly", "v0.2.0")
    assert meta["postgres"]["pg_dump_version"].split(".")[0].isdigit()
    assert meta["redis"]["db"] == int(redis_url.rsplit("/", 1)[1])


def test_backup_json_and_listing_never_hold_the_database_password(
        tmp_path: Path, settings: Settings, pg_url: str, redis_url: str) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    with_password = pg_url.replace("postgres@", "postgres:Sup3r-s3cret-pw@")
    (root / ".env").write_text(f"DATABASE_URL={with_password}\nREDIS_URL={redis_url}\n")

    made = create_backup(root, settings, ENV)

    assert "Sup3r-s3cret-pw" not in (made.path / "backup.json").read_text()
    assert made.postgres is not None and "postgres:***@" in made.postgres["url"]


def test_backup_version_defaults_to_the_last_successful_deploy_in_the_audit_log(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    log = project / "releases" / "deployments.jsonl"
    log.parent.mkdir()
    log.write_text(json.dumps({"action": "deploy", "env": ENV, "result": "success",
                               "to_version": "v0.3.1"}) + "\n"
                   + json.dumps({"action": "deploy", "env": ENV, "result": "failed",
                                 "to_version": "v0.4.0"}) + "\n")

    assert create_backup(project, settings, ENV).version == "v0.3.1"


def test_restore_first_saves_the_current_state_as_a_safety_backup(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    mutated = table_checksums(db)

    result = restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert result.safety_backup is not None
    assert (result.safety_backup.label, result.safety_backup.restore_of) == ("safety", made.id)
    assert result.safety_backup.row_counts["public.users"] == mutated["users"][0]
    assert result.safety_backup.alembic_revision == "0003"
    restore_backup(project, settings, ENV, result.safety_backup.id, assume_yes=True)
    assert table_checksums(db) == mutated


def test_backup_and_restore_each_append_one_audit_line(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    result = restore_backup(project, settings, ENV, made.id, assume_yes=True)

    lines = (project / "releases" / "deployments.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["action"], e["result"]) for e in events] == [
        ("backup", "success"), ("backup", "success"), ("restore", "success")]
    assert events[2]["details"]["backup_id"] == made.id
    assert result.safety_backup is not None
    assert events[2]["details"]["safety_backup_id"] == result.safety_backup.id


def test_a_dot_prefixed_partial_directory_is_never_listed(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    partial = made.path.with_name(f".partial-{made.id}x-999999")
    partial.mkdir()
    (partial / "backup.json").write_text((made.path / "backup.json").read_text())

    assert [b.id for b in list_backups(project, settings, ENV)] == [made.id]


def test_environment_with_only_redis_backs_up_and_restores_redis(
        tmp_path: Path, settings: Settings, kv: Any, redis_url: str) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    (root / ".env").write_text(f"REDIS_URL={redis_url}\n")
    before = redis_state(kv)
    made = create_backup(root, settings, ENV)
    kv.flushdb()

    restore_backup(root, settings, ENV, made.id, assume_yes=True)

    assert made.postgres is None and sorted(made.files) == [REDIS_FILE]
    assert_same_redis(before, redis_state(kv))


def test_each_backup_prunes_all_but_the_newest_and_the_pre_deploy_one(
        project: Path, db: psycopg.Connection[Any], kv: Any) -> None:
    settings = load_settings({"backup": {"keep": 1}})
    first = create_backup(project, settings, ENV)
    record_line = json.dumps({"action": "deploy", "env": ENV, "result": "success",
                              "details": {"backup_id": first.id}})
    with (project / "releases" / "deployments.jsonl").open("a") as log:
        log.write(record_line + "\n")
    create_backup(project, settings, ENV)
    third = create_backup(project, settings, ENV)

    assert _only_listed(project, settings) == [third.id, first.id]
    assert _leftovers(project) == sorted([third.id, first.id])


# --- credentials never in an argv ----------------------------------------------------------------


@pytest.fixture
def password_role(pg_url: str) -> Iterator[tuple[str, str]]:
    """A login role with a password (special characters included) owning the test database,
    and its URL through 127.0.0.1. Trust auth accepts any password: what matters is where the
    password travels, not that the server checks it."""
    from urllib.parse import quote

    canary = f"c4n#ry?{uuid.uuid4().hex}/x@y"  # pragma: allowlist secret
    role = f"tminus_pw_{uuid.uuid4().hex[:8]}"
    database = pg_url.rsplit("/", 1)[1]
    literal = canary.replace("'", "''")
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'{literal}\'')
        admin.execute(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
    try:
        yield f"postgresql://{role}:{quote(canary, safe='')}@127.0.0.1:5432/{database}", canary
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" OWNER TO postgres')
            admin.execute(f'REASSIGN OWNED BY "{role}" TO postgres')
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


class _ArgvSampler:
    """Reads every process's /proc/<pid>/cmdline in a loop while the block runs."""

    def __init__(self) -> None:
        import threading

        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        self.seen.add((proc / "cmdline").read_bytes())
                    except OSError:
                        continue


def test_no_child_process_argv_ever_holds_the_database_password(
        tmp_path: Path, settings: Settings, password_role: tuple[str, str], redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, canary = password_role
    with psycopg.connect(url, autocommit=True) as conn:
        seed_postgres(conn)
    root = tmp_path / "svc"
    root.mkdir()
    (root / ".env").write_text(f"DATABASE_URL={url}\nREDIS_URL={redis_url}\n")
    started: list[tuple[list[str], dict[str, str] | None]] = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            started.append(([str(a) for a in args], kwargs.get("env")))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    with _ArgvSampler() as sampler:
        made = create_backup(root, settings, ENV)
        restore_backup(root, settings, ENV, made.id, assume_yes=True)

    tools = {argv[0] for argv, _ in started}
    assert {"pg_dump", "pg_restore", "psql"} <= tools
    assert not [argv for argv, _ in started if any(canary in part for part in argv)]
    connecting = [env for argv, env in started if any(a.startswith("--dbname=") for a in argv)]
    assert connecting and all(env is not None and env.get("PGPASSWORD") == canary
                              for env in connecting)
    assert any(b"pg_dump" in line or b"psql" in line for line in sampler.seen)
    assert not [line for line in sampler.seen if canary.encode() in line]
    assert os.environ.get("PGPASSWORD") != canary
    assert canary not in (made.path / "backup.json").read_text()


# --- the lock and retention -----------------------------------------------------------------------

_HOLD_LOCK = """
import sys, time
from pathlib import Path
from ops.deploy.lock import LockInfo, deploy_lock
with deploy_lock(Path(sys.argv[1]), LockInfo(env=sys.argv[2], action="deploy",
                                            version="v9.9.9", holder="deployer")):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def deploy_holding_the_lock(project: Path) -> Iterator[subprocess.Popen[str]]:
    """Another live process holding production's deploy lock, as a deploy does."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(project), ENV],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_restore_refuses_while_a_deploy_holds_the_lock_naming_the_holder(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        deploy_holding_the_lock: subprocess.Popen[str]) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    mutated, mutated_keys = table_checksums(db), redis_state(kv)
    (project / "tasks.py").write_text("from ops.tasks import ns\n")

    done = _invoke(project, "restore", made.id, "--yes")

    assert done.returncode == ExitCode.FAILED  # what deploy exits with when the lock is held
    line = done.stderr.strip()
    assert "\n" not in line
    assert line.startswith("error: the production deploy lock is held by deployer@")
    assert f"(pid {deploy_holding_the_lock.pid}, deploy of v9.9.9, since" in line
    assert table_checksums(db) == mutated
    assert_same_redis(mutated_keys, redis_state(kv))
    assert _only_listed(project, settings) == [made.id]  # no safety backup either


def test_restore_inside_a_rollback_of_this_process_that_holds_the_lock_goes_ahead(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    from ops.deploy.lock import LockInfo, deploy_lock

    before = table_checksums(db)
    made = create_backup(project, settings, ENV)
    mutate(db, kv)

    with deploy_lock(project, LockInfo(env=ENV, action="rollback", version="v0.1.0",
                                       holder="me")):
        restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert table_checksums(db) == before


_BACKUP_WITH_KEEP_1 = """
import sys
from pathlib import Path
from ops.config import load_settings
from ops.deploy.backup import create_backup
print(create_backup(Path(sys.argv[1]), load_settings({"backup": {"keep": 1}}), sys.argv[2]).id)
"""


def test_backup_being_restored_is_never_pruned_by_another_process(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    before = table_checksums(db)
    made = create_backup(project, settings, ENV)
    newer = create_backup(project, settings, ENV)  # with keep 1, `made` would go next
    mutate(db, kv)
    other: list[subprocess.CompletedProcess[str]] = []

    def meanwhile(phase: str, _done: int) -> None:
        if phase == "restore postgres" and not other:  # a nightly backup in another process
            other.append(subprocess.run([sys.executable, "-c", _BACKUP_WITH_KEEP_1,
                                         str(project), ENV], capture_output=True, text=True,
                                        timeout=120, check=False))

    restore_backup(project, settings, ENV, made.id, assume_yes=True, progress=meanwhile)

    assert other and other[0].returncode == 0, other[0].stderr if other else "not run"
    listed = _only_listed(project, settings)
    assert made.id in listed
    assert newer.id not in listed  # the other process's retention did run
    assert not (made.path / ".restoring").exists()
    assert table_checksums(db) == before


def test_cli_redis_url_with_a_non_integer_db_index_is_exit_2_naming_the_key(
        project: Path, pg_url: str, redis_url: str) -> None:
    (project / "tasks.py").write_text("from ops.tasks import ns\n")
    (project / ".env").write_text(f"DATABASE_URL={pg_url}\n"
                                  f"REDIS_URL={redis_url.rsplit('/', 1)[0]}/abc\n")

    done = _invoke(project, "backup")

    assert done.returncode == ExitCode.USAGE
    assert done.stderr.strip().startswith(
        "error: REDIS_URL in .env: the Redis db index (the URL's path) is not a whole number")
    assert _leftovers(project) == []


# --- faults --------------------------------------------------------------------------------------


def _only_listed(root: Path, settings: Settings) -> list[str]:
    return [b.id for b in list_backups(root, settings, ENV)]


def _leftovers(root: Path) -> list[str]:
    base = root / "backups" / ENV
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def test_database_that_does_not_answer_fails_with_exit_3_and_leaves_nothing(
        tmp_path: Path, settings: Settings, redis_url: str) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    url = "postgresql://app:pw@127.0.0.1:1/app"  # pragma: allowlist secret
    (root / ".env").write_text(f"DATABASE_URL={url}\n")

    with pytest.raises(DatabaseUnavailable) as caught:
        create_backup(root, settings, ENV)

    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert "\n" not in caught.value.one_line()
    assert "127.0.0.1" in caught.value.message
    assert _leftovers(root) == []


def test_wrong_postgres_credentials_fail_without_showing_the_password(
        tmp_path: Path, settings: Settings, pg_url: str) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    wrong = pg_url.replace("postgres@", "no_such_role:hunter2-do-not-leak@")
    (root / ".env").write_text(f"DATABASE_URL={wrong}\n")

    with pytest.raises(DatabaseUnavailable) as caught:
        create_backup(root, settings, ENV)

    text = caught.value.one_line()
    assert "hunter2-do-not-leak" not in text
    assert "no_such_role:***@" in text
    assert 'role "no_such_role" does not exist' in text
    assert _leftovers(root) == []


def test_wrong_redis_password_fails_without_showing_the_password(
        tmp_path: Path, settings: Settings, redis_url: str) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    wrong = redis_url.replace("redis://", "redis://nobody:hunter2-do-not-leak@")
    (root / ".env").write_text(f"REDIS_URL={wrong}\n")

    with pytest.raises(DatabaseUnavailable) as caught:
        create_backup(root, settings, ENV)

    assert "hunter2-do-not-leak" not in caught.value.one_line()
    assert "nobody:***@" in caught.value.one_line()
    assert _leftovers(root) == []


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: a full disk without filling the real one (needs root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_fails_and_leaves_no_partial_backup(
        project: Path, db: psycopg.Connection[Any], kv: Any, tiny_disk: Path) -> None:
    db.execute("CREATE TABLE blob AS SELECT g, md5(g::text) || md5((g * 7)::text) AS v "
               "FROM generate_series(1, 60000) g")
    settings = load_settings({"backup": {"dir": str(tiny_disk)}})
    before = table_checksums(db)

    with pytest.raises(DeployFailed) as caught:
        create_backup(project, settings, ENV)

    assert "No space left on device" in caught.value.message
    assert list_backups(project, settings, ENV) == []
    assert sorted(p.name for p in (tiny_disk / ENV).iterdir()) == []
    assert table_checksums(db) == before


def _kill_pg_dump_of(database: str) -> bool:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # pg_wrapper (Debian) runs perl first, then execs the real pg_dump in the same process
        is_pg_dump = argv and argv[0].endswith(b"/pg_dump") and b"bin" in argv[0]
        if is_pg_dump and any(database.encode() in a for a in argv):
            os.kill(int(proc.name), signal.SIGKILL)
            return True
    return False


def test_killed_pg_dump_fails_and_leaves_no_partial_backup(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        pg_url: str) -> None:
    database = pg_url.rsplit("/", 1)[1]
    killed: list[bool] = []
    with psycopg.connect(pg_url) as locker:  # pg_dump waits on this lock until it is killed
        locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")

        def kill_it(phase: str, done: int) -> None:
            if phase == "postgres" and not killed and _kill_pg_dump_of(database):
                killed.append(True)

        with pytest.raises(DeployFailed) as caught:
            create_backup(project, settings, ENV, progress=kill_it)
        locker.rollback()

    assert killed == [True]
    assert "pg_dump was killed (signal 9)" in caught.value.message
    assert _only_listed(project, settings) == []
    assert _leftovers(project) == []


def test_corrupted_dump_is_refused_before_anything_is_touched(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    mutated, mutated_keys = table_checksums(db), redis_state(kv)
    dump = made.path / PG_FILE
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    with pytest.raises(DeployFailed, match="does not match its checksum"):
        restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert table_checksums(db) == mutated
    assert redis_state(kv).keys() == mutated_keys.keys()
    assert _only_listed(project, settings) == [made.id]  # no safety backup: nothing started


def test_dump_that_breaks_halfway_through_a_restore_leaves_the_database_as_it_was(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    mutated = table_checksums(db)
    _truncate_and_reseal(made, keep=0.6)  # damaged before it was hashed: checksums agree

    with pytest.raises(DeployFailed, match="database left unchanged"):
        restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert table_checksums(db) == mutated


def test_statement_failing_during_restore_rolls_back_everything(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    role = f"tminus_ghost_{uuid.uuid4().hex[:8]}"
    db.execute(f'CREATE ROLE "{role}"')
    try:
        db.execute(f'CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO "{role}"')
        made = create_backup(project, settings, ENV)
        mutate(db, kv)
        db.execute(f'ALTER TABLE owned OWNER TO postgres; DROP ROLE "{role}"')
        mutated = table_checksums(db)

        with pytest.raises(DeployFailed) as caught:
            restore_backup(project, settings, ENV, made.id, assume_yes=True)

        assert f'role "{role}" does not exist' in caught.value.message
        assert "the transaction was rolled back" in caught.value.message
        assert table_checksums(db) == mutated
        row = db.execute("SELECT to_regclass('invoices')").fetchone()
        assert row is not None and row[0] is not None  # the schema drop was rolled back too
    finally:
        db.execute(f'DROP TABLE IF EXISTS owned; DROP ROLE IF EXISTS "{role}"')


def _truncate_and_reseal(backup: Backup, *, keep: float) -> None:
    dump = backup.path / PG_FILE
    data = dump.read_bytes()
    dump.write_bytes(data[: int(len(data) * keep)])
    meta = json.loads((backup.path / "backup.json").read_text())
    meta["files"][PG_FILE] = {"size": dump.stat().st_size, "sha256": sha256_file(dump)}
    (backup.path / "backup.json").write_text(json.dumps(meta))


def test_unknown_backup_id_is_a_usage_error_that_suggests_the_closest(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)

    with pytest.raises(UsageError) as caught:
        restore_backup(project, settings, ENV, made.id[:-1] + "X", assume_yes=True)

    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.hint == f"did you mean {made.id!r}?"


def test_restore_without_confirmation_changes_nothing(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    mutated = table_checksums(db)

    with pytest.raises(UsageError, match="refusing without confirmation"):
        restore_backup(project, settings, ENV, made.id)

    assert table_checksums(db) == mutated
    assert _only_listed(project, settings) == [made.id]


# --- the tasks, through the real invoke CLI -------------------------------------------------------


def _invoke(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    invoke = Path(sys.executable).with_name("invoke")
    return subprocess.run([str(invoke), *args], cwd=root, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False, timeout=300)


def test_cli_backup_list_and_restore_with_yes(
        project: Path, db: psycopg.Connection[Any], kv: Any) -> None:
    (project / "tasks.py").write_text("from ops.tasks import ns\n")
    made = _invoke(project, "backup", "--label", "cli")
    assert made.returncode == 0, made.stderr
    backup_id = made.stdout.split("backup ", 1)[1].split()[0]

    listing = _invoke(project, "backups")
    assert backup_id in listing.stdout and "cli" in listing.stdout

    refused = _invoke(project, "restore", backup_id)
    assert refused.returncode == ExitCode.USAGE
    assert refused.stderr.strip().startswith("error: restore overwrites production")

    restored = _invoke(project, "restore", backup_id, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert f"restored {backup_id} into production and verified" in restored.stdout


def test_cli_unknown_backup_id_is_one_line_and_exit_2(
        project: Path, db: psycopg.Connection[Any], kv: Any) -> None:
    (project / "tasks.py").write_text("from ops.tasks import ns\n")

    done = _invoke(project, "restore", "20990101T000000Z_v9.9.9", "--yes")

    assert done.returncode == ExitCode.USAGE
    assert done.stderr.strip().splitlines() == [
        "error: no backup '20990101T000000Z_v9.9.9' for environment 'production' "
        "(hint: there is no backup for production yet)"]


def test_dry_run_backup_prints_the_commands_and_writes_nothing(
        tmp_path: Path, settings: Settings, pg_url: str, redis_url: str) -> None:
    import io

    root = tmp_path / "svc"
    root.mkdir()
    (root / ".env").write_text(
        f"DATABASE_URL={pg_url.replace('postgres@', 'postgres:pw-not-shown@')}\n"
        f"REDIS_URL={redis_url}\n")
    out = io.StringIO()

    made = create_backup(root, settings, ENV, dry_run=True, out=out)

    assert made.dry_run
    assert out.getvalue().startswith("[dry-run] pg_dump --format=custom")
    assert "pw-not-shown" not in out.getvalue()
    assert _leftovers(root) == []


def test_dry_run_restore_verifies_and_changes_nothing(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    import io

    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    mutated = table_checksums(db)
    out = io.StringIO()

    result = restore_backup(project, settings, ENV, made.id, dry_run=True, out=out)

    assert result.dry_run
    assert "| psql" in out.getvalue()
    assert table_checksums(db) == mutated
    assert _only_listed(project, settings) == [made.id]
