"""Read-only, short-timeout looks at the live stores: Postgres's alembic_version, Redis key types.

The predeploy checks may run against production, so nothing here can write. Postgres is asked
inside a READ ONLY transaction with ``connect_timeout`` and ``statement_timeout``; Redis only
answers SCAN and TYPE, bounded by a sample size. Failures become ``DatabaseUnavailable`` with the
URL shown without its password, so a check can turn them into a skip that names the reason.
URLs are shown and driver errors scrubbed by ``ops.redact``, the one home of the masking rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ops.errors import DatabaseUnavailable
from ops.redact import ENCODE_HINT, describe_url, is_parseable_url, summarise, unparseable_reason

__all__ = ["KeySample", "alembic_revisions", "describe_url", "sample_redis_types"]


def _readable(url: str) -> None:
    """Refuse a URL that cannot be read unambiguously before any driver sees it: a driver's
    own parse error may quote the URL, password and all. The caller names the key."""
    if not is_parseable_url(url):
        raise DatabaseUnavailable(unparseable_reason(url), hint=ENCODE_HINT)


def _libpq_url(url: str) -> str:
    """SQLAlchemy spellings (``postgresql+psycopg://``) to the libpq URI psycopg expects."""
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if base == "postgres":
        base = "postgresql"
    return f"{base}{sep}{rest}"


def alembic_revisions(url: str, *, timeout_s: float = 3.0,
                      table: str = "alembic_version") -> tuple[str, ...] | None:
    """The revisions recorded in ``alembic_version``; None when the table does not exist.

    The session is read-only from its first statement (``default_transaction_read_only``), so
    even a mistaken query could not change the database.
    """
    import psycopg
    from psycopg import sql

    _readable(url)
    if url.split("://", 1)[0].split("+", 1)[0] not in ("postgresql", "postgres"):
        raise DatabaseUnavailable(f"{describe_url(url)} is not a PostgreSQL URL",
                                  hint="DATABASE_URL must start with postgresql://")
    statement_ms = max(int(timeout_s * 1000), 1)
    options = f"-c default_transaction_read_only=on -c statement_timeout={statement_ms}"
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=max(math.ceil(timeout_s), 1),
                             options=options, autocommit=False) as conn:
            conn.read_only = True
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                row = cur.fetchone()
                if not row or not row[0]:
                    return None
                cur.execute(sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(table)))
                revisions = tuple(sorted(str(r[0]) for r in cur.fetchall()))
            conn.rollback()
            return revisions
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"Postgres at {describe_url(url)} did not answer: "
            f"{summarise(str(exc), url, default='no answer')}",
            hint="check DATABASE_URL and that the database accepts connections") from None


@dataclass(frozen=True)
class KeySample:
    """What a bounded SCAN saw: each sampled key and its type, and whether the scan was cut."""

    types: dict[str, str]
    truncated: bool


def sample_redis_types(url: str, *, limit: int = 1000, timeout_s: float = 3.0) -> KeySample:
    """Up to ``limit`` keys with their TYPE, read with SCAN (never KEYS, which blocks Redis)."""
    import redis

    _readable(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout_s,
                                      socket_connect_timeout=timeout_s)
    except ValueError:  # redis-py's message quotes the offending part of the URL
        raise DatabaseUnavailable(f"{describe_url(url)} is not a Redis URL",
                                  hint="write redis://[:password@]host[:port][/db]") from None
    try:
        keys: list[bytes] = []
        truncated = False
        for key in client.scan_iter(count=min(max(limit, 10), 1000)):
            if len(keys) >= limit:
                truncated = True
                break
            keys.append(key)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = pipe.execute() if keys else []
    except redis.RedisError as exc:
        raise DatabaseUnavailable(
            f"Redis at {describe_url(url)} did not answer: "
            f"{summarise(str(exc), url, default='no answer')}",
            hint="check REDIS_URL and that Redis accepts connections") from None
    finally:
        client.close()
    types = {_text(key): _text(kind) for key, kind in zip(keys, kinds, strict=True)}
    return KeySample(types=types, truncated=truncated)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
