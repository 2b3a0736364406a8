"""Shared fixtures: real git repositories, a Postgres database and a Redis db index per test,
and the Docker engine.

When a service is missing the test is skipped with the reason, unless OPS_REQUIRE_SERVICES=1
(set by .ci/run), which turns every such skip into a failure: CI never counts a skip as a pass.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("OPS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("OPS_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REQUIRE_SERVICES = os.environ.get("OPS_REQUIRE_SERVICES") == "1"


def need(reason: str) -> None:
    """Skip for a missing service, or fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable (OPS_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


# --- git -----------------------------------------------------------------------------------------


class GitRepo:
    """A real git repository in a temp dir, with helpers that read like the scenario."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev Example")
        self.git("config", "commit.gpgsign", "false")
        self.git("config", "tag.gpgsign", "false")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.path, check=True, capture_output=True,
                              text=True)
        return done.stdout.strip()

    def write(self, relative: str, content: str | bytes) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        return target

    def commit(self, message: str = "change", *, all_files: bool = True) -> str:
        if all_files:
            self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, annotated: bool = True, message: str | None = None) -> None:
        if annotated:
            self.git("tag", "-a", name, "-m", message or f"release {name}")
        else:
            self.git("tag", name)

    @property
    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


# --- Postgres ------------------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"tminus_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        need(f"Postgres not reachable at {PG_ADMIN_URL}: {exc}")
        raise AssertionError("unreachable") from exc
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Redis ---------------------------------------------------------------------------------------

_redis_dbs = itertools.cycle(range(1, 16))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis db index (1-15) flushed before and after this test."""
    redis = pytest.importorskip("redis")
    db = next(_redis_dbs)
    url = f"{REDIS_BASE_URL}/{db}"
    client: Any = redis.Redis.from_url(url, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        need(f"Redis not reachable at {REDIS_BASE_URL}: {exc}")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- Docker --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """The real Docker engine, or a skip (a failure under OPS_REQUIRE_SERVICES=1)."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # any failure means "no engine here"
        need(f"no Docker engine answers: {exc}")
        raise AssertionError("unreachable") from exc
    return client
