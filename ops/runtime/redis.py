"""Redis export and import through redis-py: SCAN + DUMP/PTTL out, RESTORE in.

Chosen over ``redis-cli --rdb`` because an RDB snapshot is the whole server (all 16 db indexes)
and can only be loaded by replacing a server's data file and restarting it; SCAN + DUMP is scoped
to the URL's db index, works over a plain client connection (managed Redis included) and restores
into any running server of the same or a newer major version. DUMP payloads carry every type
(string, hash, list, set, zset, stream) bit for bit; the remaining TTL is stored beside each key.

The file (``redis.tmdump``) is a small length-prefixed stream::

    MAGIC, then per key:  u32 key length, key, i64 pttl (-1 = none), u32 payload length, payload
    END:                  u32 0xFFFFFFFF, u64 number of keys

so a truncated file is detected before anything is flushed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ops.errors import ConfigError, DatabaseUnavailable, DeployFailed
from ops.redact import (
    ENCODE_HINT,
    is_parseable_url,
    mask_url,
    printable,
    summarise,
    unparseable_reason,
)

MAGIC = b"TMINUS-REDIS-DUMP 1\n"
_END = 0xFFFFFFFF
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
FILE_FORMAT = "tminus-redis-dump-1 (SCAN + DUMP + PTTL)"


def connect(url: str, *, timeout: float = 5.0) -> Any:
    """A ``redis.Redis`` for the URL's db index that has answered PING."""
    import redis

    if not is_parseable_url(url):  # redis-py's own parse errors quote the URL's parts
        raise ConfigError(f"REDIS_URL: {unparseable_reason(url)}", hint=ENCODE_HINT)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout * 6,
                                      socket_connect_timeout=timeout)
    except ValueError:
        raise ConfigError(f"Redis URL {mask_url(url)} is not valid",
                          hint="write redis://[:password@]host[:port][/db]") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DatabaseUnavailable(
            f"Redis at {mask_url(url)} refused or did not answer: {error_summary(exc, url)}",
            hint="check that Redis runs and the URL's host, password and db index") from None
    return client


def error_summary(exc: BaseException, url: str | None = None) -> str:
    """A redis-py error fit for a message: the error class and the server's first line, bounded
    and scrubbed, never a command's arguments (a pipeline's error quotes the command it failed
    on, DUMP payloads and values included)."""
    text = str(exc)
    if text.startswith("Command # "):
        return type(exc).__name__
    summary = summarise(text, url or (), limit=160, default="")
    return f"{type(exc).__name__}: {summary}" if summary else type(exc).__name__


def shown_key(key: bytes, *, limit: int = 80) -> str:
    """A key name for a message: decoded, control characters escaped, long names cut."""
    text = printable(key.decode("utf-8", "backslashreplace"))
    return text if len(text) <= limit else f"{text[:limit - 1]}…({len(key)} bytes)"


def key_count(client: Any) -> int:
    return int(client.dbsize())


def server_version(client: Any) -> str:
    return str(client.info("server").get("redis_version", "unknown"))


def db_index(client: Any) -> int:
    return int(client.connection_pool.connection_kwargs.get("db", 0))


def export_keys(client: Any, path: Path, *, batch: int = 1000) -> int:
    """Write every key of the client's db index to ``path``; returns how many were written.

    A key that expires or is deleted between SCAN and DUMP is skipped; SCAN may return a key
    twice, so keys are de-duplicated.
    """
    seen: set[bytes] = set()
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        out.write(MAGIC)
        cursor = 0
        while True:
            cursor, keys = client.scan(cursor=cursor, count=batch)
            fresh = [k for k in keys if k not in seen]
            seen.update(fresh)
            if fresh:
                written += _write_batch(client, out, fresh)
            if cursor == 0:
                break
        out.write(_U32.pack(_END) + _U64.pack(written))
        out.flush()
        os.fsync(out.fileno())
    return written


def _write_batch(client: Any, out: IO[bytes], keys: list[bytes]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
        pipe.dump(key)
    replies = pipe.execute()
    written = 0
    for key, pttl, payload in zip(keys, replies[0::2], replies[1::2], strict=True):
        if payload is None or pttl == -2:  # gone between SCAN and DUMP
            continue
        out.write(_U32.pack(len(key)) + key + _I64.pack(int(pttl)) + _U32.pack(len(payload)))
        out.write(payload)
        written += 1
    return written


def read_records(path: Path) -> Iterator[tuple[bytes, int, bytes]]:
    """(key, pttl, payload) in file order; ``DeployFailed`` for a foreign or truncated file."""
    with path.open("rb", buffering=1 << 20) as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise DeployFailed(f"{path.name} is not a tminus Redis dump")
        count = 0
        while True:
            size = _U32.unpack(_exactly(handle, 4, path))[0]
            if size == _END:
                declared = _U64.unpack(_exactly(handle, 8, path))[0]
                if declared != count or handle.read(1):
                    raise DeployFailed(f"{path.name} is damaged: {count} keys read, "
                                       f"{declared} declared")
                return
            key = _exactly(handle, size, path)
            pttl = _I64.unpack(_exactly(handle, 8, path))[0]
            payload = _exactly(handle, _U32.unpack(_exactly(handle, 4, path))[0], path)
            count += 1
            yield key, pttl, payload


def _exactly(handle: IO[bytes], size: int, path: Path) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise DeployFailed(f"{path.name} is truncated")
    return data


def count_records(path: Path) -> int:
    """Reads the whole file, so a damaged one fails here rather than halfway through a restore."""
    return sum(1 for _ in read_records(path))


def import_keys(client: Any, path: Path, *, batch: int = 500) -> int:
    """Replace the db index's content with the file's keys; returns how many were restored.

    The file is read through once before FLUSHDB, so a damaged file leaves Redis untouched.
    A TTL is restored as the time that remained when the backup was taken.
    """
    import redis

    count_records(path)
    restored = 0
    try:
        client.flushdb()
        pipe = client.pipeline(transaction=False)
        keys: list[bytes] = []
        for key, pttl, payload in read_records(path):
            pipe.restore(key, max(pttl, 0), payload, replace=True)
            keys.append(key)
            if len(keys) >= batch:
                restored += _restore_batch(pipe, keys)
                keys = []
        if keys:
            restored += _restore_batch(pipe, keys)
    except _Refused as refused:
        raise DeployFailed(f"RESTORE of key {shown_key(refused.key)} from {path.name} failed: "
                           f"{refused.reason} ({restored + refused.done} keys restored before "
                           "it)", hint="DUMP payloads restore on the same or a newer Redis "
                                       "version") from None
    except redis.RedisError as exc:
        raise DatabaseUnavailable("Redis stopped answering during the restore: "
                                  f"{error_summary(exc)}") from None
    return restored


class _Refused(Exception):
    """One RESTORE of a batch failed: which key, how many of the batch went in before it."""

    def __init__(self, key: bytes, done: int, reason: str) -> None:
        super().__init__(reason)
        self.key, self.done, self.reason = key, done, reason


def _restore_batch(pipe: Any, keys: list[bytes]) -> int:
    """Send one batch of queued RESTOREs; the replies are read without redis-py's annotation,
    whose text would carry the failing command's payload into the message."""
    import redis

    replies = pipe.execute(raise_on_error=False)
    for done, (key, reply) in enumerate(zip(keys, replies, strict=True)):
        if isinstance(reply, redis.ResponseError):
            code = str(reply).split(" ", 1)[0]
            reason = f"{type(reply).__name__} {code}" if code.isupper() and code.isalpha() \
                else type(reply).__name__
            raise _Refused(key, done, reason)
    return len(keys)
