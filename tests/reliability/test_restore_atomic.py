"""Restore is all or nothing: whatever fails, Postgres and Redis are both as they were before.

Faults are injected with real parts: a backup whose Nth Redis key carries a damaged DUMP payload
(re-sealed, so its checksums agree and it gets past verification), a statement that fails inside
the Postgres transaction, Redis refusing SWAPDB (an ACL change on the server) after Postgres has
committed, a real SIGTERM after Postgres has committed, and a server with no spare db index.

Redis is a throwaway ``redis-server`` per test on a free port (its ACL and all its 16 db indexes
are the test's to change); Postgres is the shared server, a fresh database per test.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import redis
from ops.config import Settings, load_settings
from ops.deploy.backup import PG_FILE, REDIS_FILE, Backup, create_backup, list_backups
from ops.deploy.restore import restore_backup
from ops.errors import DeployFailed
from ops.hashing import sha256_file
from ops.runtime import redis as rds
from ops.taskkit import install_sigterm_as_interrupt
from tests.conftest import need

pytestmark = pytest.mark.integration

ENV = "production"
DB = 3  # the db index the environment's REDIS_URL names
KEYS = 52
DAMAGED = 27  # the key whose payload a crafted backup damages


# --- the world -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[int]:
    """A throwaway redis-server (no persistence) on a free port; killed afterwards."""
    port = _free_port()
    try:
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        need("redis-server is not installed")
        raise
    try:
        client: Any = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    need("the throwaway redis-server did not start")
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        server.kill()
        server.wait(timeout=10)


def _client(port: int, db: int = DB) -> Any:
    return redis.Redis(port=port, db=db, socket_timeout=5)


@pytest.fixture
def kv(redis_server: int) -> Iterator[Any]:
    client = _client(redis_server)
    client.set("s:plain", "hello")
    client.set("s:ttl", b"\x00\xffbinary", ex=600)
    client.hset("h:user:1", mapping={"name": "Ada", "score": "42"})
    client.rpush("l:queue", *[f"job-{i}" for i in range(100)])
    client.sadd("set:tags", "a", "b", "c")
    client.zadd("z:rank", {"ada": 1.5, "bob": 2.25})
    client.xadd("x:events", {"kind": "signup"})
    for i in range(KEYS - 7):
        client.set(f"bulk:{i:02d}", i)
    assert client.dbsize() == KEYS
    yield client
    client.close()


@pytest.fixture
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, profile jsonb);
            CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
            INSERT INTO alembic_version VALUES ('0002');
            INSERT INTO users (email, profile)
            SELECT 'u' || g || '@example.com', jsonb_build_object('n', g)
            FROM generate_series(1, 2000) g;
        """)
        yield conn


@pytest.fixture
def project(tmp_path: Path, pg_url: str, redis_server: int) -> Path:
    root = tmp_path / "service"
    root.mkdir()
    (root / ".env").write_text(f"DATABASE_URL={pg_url}\n"
                               f"REDIS_URL=redis://127.0.0.1:{redis_server}/{DB}\n")
    return root


@pytest.fixture
def settings() -> Settings:
    return load_settings({})


def postgres_state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Every table, its row count and an md5 over its rows: equal means the same data."""
    tables = [str(r[0]) for r in conn.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND relkind = 'r' ORDER BY 1").fetchall()]
    state: dict[str, Any] = {}
    for table in tables:
        query = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY "
                        "t::text), '')) FROM {} t").format(sql.Identifier(table))
        row = conn.execute(query).fetchone()
        state[table] = tuple(row) if row else None
    return state


def redis_state(client: Any) -> dict[bytes, tuple[str, Any, bool]]:
    """key → (type, value, has a TTL) for every key of the db index."""
    read = {"string": client.get, "hash": client.hgetall, "list": lambda k: client.lrange(k, 0, -1),
            "set": lambda k: sorted(client.smembers(k)),
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True), "stream": client.xrange}
    state = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        state[key] = (kind, read[kind](key), client.pttl(key) > 0)
    return state


def other_indexes(port: int) -> dict[int, int]:
    """Key counts of every db index but the environment's that holds any key."""
    counts = {}
    for index in range(16):
        if index != DB:
            client = _client(port, index)
            if client.dbsize():
                counts[index] = int(client.dbsize())
            client.close()
    return counts


def mutate(conn: psycopg.Connection[Any], client: Any) -> None:
    conn.execute("DELETE FROM users WHERE id % 3 = 0")
    conn.execute("CREATE TABLE invoices (id int)")
    conn.execute("UPDATE alembic_version SET version_num = '0003'")
    client.delete("l:queue")
    client.set("s:new", "after the backup")
    client.hset("h:user:1", "name", "Changed")


def damage_redis_key(backup: Backup, position: int) -> None:
    """Flip one byte inside the payload of the ``position``-th key (its DUMP checksum no longer
    matches), then re-seal backup.json so the backup still passes verification."""
    path = backup.path / REDIS_FILE
    records = list(rds.read_records(path))
    key, pttl, payload = records[position - 1]
    broken = bytearray(payload)
    broken[1] ^= 0xFF
    records[position - 1] = (key, pttl, bytes(broken))
    data = bytearray(rds.MAGIC)
    for k, t, p in records:
        data += struct.pack(">I", len(k)) + k + struct.pack(">q", t) + struct.pack(">I", len(p))
        data += p
    data += struct.pack(">IQ", 0xFFFFFFFF, len(records))
    path.write_bytes(bytes(data))
    meta = json.loads((backup.path / "backup.json").read_text())
    meta["files"][REDIS_FILE] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    (backup.path / "backup.json").write_text(json.dumps(meta))


def safety_of(root: Path, settings: Settings, backup: Backup) -> Backup:
    found = [b for b in list_backups(root, settings, ENV) if b.restore_of == backup.id]
    assert len(found) == 1, [b.id for b in found]
    return found[0]


def last_audit(root: Path) -> dict[str, Any]:
    lines = (root / "releases" / "deployments.jsonl").read_text().splitlines()
    event: dict[str, Any] = json.loads(lines[-1])
    return event


# --- the faults ----------------------------------------------------------------------------------


def test_redis_refusing_a_key_halfway_leaves_postgres_and_redis_exactly_as_before(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_server: int) -> None:
    made = create_backup(project, settings, ENV)
    damage_redis_key(made, DAMAGED)
    mutate(db, kv)
    before_pg, before_redis = postgres_state(db), redis_state(kv)

    with pytest.raises(DeployFailed) as caught:
        restore_backup(project, settings, ENV, made.id, assume_yes=True)

    safety = safety_of(project, settings, made)
    assert f"Redis refused key {DAMAGED} of {KEYS} of the backup" in caught.value.message
    assert caught.value.message.endswith(
        f"nothing was changed (the state before the restore is saved as backup {safety.id})")
    assert postgres_state(db) == before_pg
    assert redis_state(kv) == before_redis
    assert other_indexes(redis_server) == {}  # the staged keys are gone too
    assert last_audit(project)["details"]["safety_backup_id"] == safety.id


def test_failing_postgres_statement_after_redis_was_staged_leaves_both_as_before(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_server: int) -> None:
    role = f"tminus_ghost_{uuid.uuid4().hex[:8]}"
    db.execute(f'CREATE ROLE "{role}"')
    try:
        db.execute(f'CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO "{role}"')
        made = create_backup(project, settings, ENV)
        mutate(db, kv)
        db.execute(f'ALTER TABLE owned OWNER TO postgres; DROP ROLE "{role}"')
        before_pg, before_redis = postgres_state(db), redis_state(kv)

        with pytest.raises(DeployFailed) as caught:
            restore_backup(project, settings, ENV, made.id, assume_yes=True)

        assert f'role "{role}" does not exist' in caught.value.message
        assert "nothing was changed (the state before the restore is saved as backup" \
            in caught.value.message
        assert postgres_state(db) == before_pg
        assert redis_state(kv) == before_redis
        assert other_indexes(redis_server) == {}
    finally:
        db.execute(f'DROP TABLE IF EXISTS owned; DROP ROLE IF EXISTS "{role}"')


def test_swap_refused_after_postgres_committed_returns_postgres_to_its_state_before(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_server: int) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    before_pg, before_redis = postgres_state(db), redis_state(kv)
    admin = _client(redis_server, 0)

    def refuse_swapdb(phase: str, _done: int) -> None:
        if phase == "swap redis":  # Postgres has committed the backup's data by now
            admin.execute_command("ACL", "SETUSER", "default", "-swapdb")

    with pytest.raises(DeployFailed) as caught:
        restore_backup(project, settings, ENV, made.id, assume_yes=True, progress=refuse_swapdb)

    safety = safety_of(project, settings, made)
    assert "Redis refused to swap the restored keys in" in caught.value.message
    assert caught.value.message.endswith(
        "nothing was changed: Postgres was returned to its state before the restore from "
        f"safety backup {safety.id}, Redis kept its keys")
    assert postgres_state(db) == before_pg
    assert redis_state(kv) == before_redis
    assert other_indexes(redis_server) == {}
    admin.close()


def test_sigterm_after_postgres_committed_returns_both_to_their_state_before(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_server: int) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    before_pg, before_redis = postgres_state(db), redis_state(kv)

    def terminate(phase: str, _done: int) -> None:
        if phase == "swap redis":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here

    said = io.StringIO()
    previous = signal.getsignal(signal.SIGTERM)
    install_sigterm_as_interrupt()
    try:
        with pytest.raises(KeyboardInterrupt):
            restore_backup(project, settings, ENV, made.id, assume_yes=True, progress=terminate,
                           out=said)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert postgres_state(db) == before_pg
    assert redis_state(kv) == before_redis
    assert other_indexes(redis_server) == {}
    assert said.getvalue().startswith(f"restore of {made.id} interrupted; nothing was changed: "
                                      "Postgres was returned to its state before the restore")
    event = last_audit(project)
    assert (event["action"], event["result"], event["details"]["error"]) == (
        "restore", "failed", "interrupted")
    assert not (made.path / ".restoring").exists()


def test_no_spare_db_index_refuses_before_anything_is_touched(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_server: int) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    for index in range(16):
        if index != DB:
            _client(redis_server, index).set("in-use", "yes")
    before_pg, before_redis = postgres_state(db), redis_state(kv)

    with pytest.raises(DeployFailed, match=r"no empty Redis db index to stage the restore in "
                                           r"\(all 15 other than db 3 hold keys\)"):
        restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert postgres_state(db) == before_pg
    assert redis_state(kv) == before_redis
    assert other_indexes(redis_server) == {i: 1 for i in range(16) if i != DB}
    assert [b.id for b in list_backups(project, settings, ENV)] == [made.id]  # no safety yet


def test_spare_index_left_by_a_killed_restore_is_emptied_and_used_again(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_server: int) -> None:
    made = create_backup(project, settings, ENV)
    expected_pg, expected_redis = postgres_state(db), redis_state(kv)
    mutate(db, kv)
    gone = subprocess.Popen(["true"])
    gone.wait()
    for index in range(16):
        if index not in {DB, 7}:
            _client(redis_server, index).set("in-use", "yes")
    stale = _client(redis_server, 7)  # what a restore killed with SIGKILL while staging leaves
    stale.set(rds.STAGING_KEY, f"{socket.gethostname()}:{gone.pid}:None deadbeef")
    stale.set("half-staged", "x")

    restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert postgres_state(db) == expected_pg
    assert redis_state(kv) == expected_redis
    assert stale.dbsize() == 0


def test_successful_restore_swaps_every_key_in_and_leaves_no_staging_behind(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any,
        redis_server: int) -> None:
    made = create_backup(project, settings, ENV)
    expected_pg, expected_redis = postgres_state(db), redis_state(kv)
    mutate(db, kv)

    result = restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert result.redis_keys == KEYS
    assert (result.tables, result.rows) == (2, 2001)
    assert postgres_state(db) == expected_pg
    assert redis_state(kv) == expected_redis
    assert kv.get(rds.STAGING_KEY) is None
    deadline = time.monotonic() + 10  # the previous keys are dropped with FLUSHDB ASYNC
    while other_indexes(redis_server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other_indexes(redis_server) == {}


def test_restore_verifies_postgres_inside_its_transaction_before_commit(
        project: Path, settings: Settings, db: psycopg.Connection[Any], kv: Any) -> None:
    made = create_backup(project, settings, ENV)
    mutate(db, kv)
    before_pg, before_redis = postgres_state(db), redis_state(kv)
    meta = json.loads((made.path / "backup.json").read_text())
    meta["postgres"]["row_counts"]["public.users"] += 1  # backup.json says one row more
    (made.path / "backup.json").write_text(json.dumps(meta))

    with pytest.raises(DeployFailed) as caught:
        restore_backup(project, settings, ENV, made.id, assume_yes=True)

    assert "public.users has 2000 rows (backup: 2001)" in caught.value.message
    assert "the transaction was rolled back" in caught.value.message
    assert postgres_state(db) == before_pg
    assert redis_state(kv) == before_redis
    assert (made.path / PG_FILE).is_file()
