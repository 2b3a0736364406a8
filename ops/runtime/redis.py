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
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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


def connect(url: str, *, timeout: float = 5.0, read_timeout: float | None = None) -> Any:
    """A ``redis.Redis`` for the URL's db index that has answered PING.

    ``read_timeout`` bounds each command (default: six times the connect ``timeout``, room for a
    large DUMP batch); a probe passes its own short one.
    """
    import redis

    if not is_parseable_url(url):  # redis-py's own parse errors quote the URL's parts
        raise ConfigError(f"REDIS_URL: {unparseable_reason(url)}", hint=ENCODE_HINT)
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout * 6 if read_timeout is None else read_timeout,
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


@dataclass(frozen=True)
class KeySample:
    """What a bounded SCAN saw: each sampled key and its type, and whether the scan was cut."""

    types: dict[str, str]
    truncated: bool


def sample_key_types(url: str, *, limit: int = 1000, timeout_s: float = 3.0) -> KeySample:
    """Up to ``limit`` keys with their TYPE, read with SCAN (never KEYS, which blocks Redis).

    What the predeploy checks sample: only SCAN and TYPE, each bounded by ``timeout_s``. Every way
    it cannot answer is ``DatabaseUnavailable`` without the password, so a check can skip.
    """
    import redis

    try:
        client = connect(url, timeout=timeout_s, read_timeout=timeout_s)
    except ConfigError as exc:
        raise DatabaseUnavailable(exc.message, hint=exc.hint) from None
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
            f"Redis at {mask_url(url)} did not answer: {error_summary(exc, url)}",
            hint="check REDIS_URL and that Redis accepts connections") from None
    finally:
        client.close()
    types = {_text(key): _text(kind) for key, kind in zip(keys, kinds, strict=True)}
    return KeySample(types=types, truncated=truncated)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


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


# --- the URL's db index --------------------------------------------------------------------------


def url_db_index(url: str, *, key: str = "REDIS_URL") -> int:
    """The db index ``url`` selects, read strictly: a path ``/<n>`` or a ``?db=<n>`` parameter.

    redis-py reads a path it cannot parse (``/abc``) as db 0, which a restore would flush, and
    ``/1/2`` as db 12; both are a ``ConfigError`` here, naming ``key`` and never showing the
    value (an unencoded ``/`` in a password lands in the path).
    """
    from urllib.parse import parse_qs, unquote, urlsplit

    hint = ("end the URL with the db index, e.g. redis://host:6379/0, and percent-encode "
            "'/', '?', '#' and '@' in a password")
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query).get("db", [])
    except ValueError:
        raise ConfigError(f"{key}: unparseable Redis URL", hint=hint) from None
    found: set[int] = set()
    for value in query:
        if not value.strip().isdigit():
            raise ConfigError(f"{key}: the Redis db index (?db=) is not a whole number",
                              hint=hint)
        found.add(int(value))
    path = unquote(parts.path)
    if parts.scheme != "unix" and path not in {"", "/"}:
        digits = path[1:]
        if not (digits.isascii() and digits.isdigit()):
            raise ConfigError(f"{key}: the Redis db index (the URL's path) is not a whole "
                              "number", hint=hint)
        found.add(int(digits))
    if len(found) > 1:
        raise ConfigError(f"{key}: the Redis URL names two db indexes (path and ?db=)",
                          hint=hint)
    return found.pop() if found else 0


# --- restoring through a spare db index ----------------------------------------------------------

#: Claims a spare db index for one restore; deleted in the same atomic step that swaps it in.
STAGING_KEY = b"tminus:restore-staging"

# KEYS[1] the claim key; ARGV: target db, spare db, claim token, fewest and most keys expected.
# Swaps only while the spare still carries our claim and the expected keys, so a spare that
# someone flushed or wrote to in the meantime is never swapped in; the claim key is deleted in
# the same step, so no client ever sees it in the target. Ends selected on the target again
# (before Redis 7 a script's SELECT outlives the script).
_SWAP_SCRIPT = """
redis.call('SELECT', ARGV[2])
if redis.call('GET', KEYS[1]) ~= ARGV[3] then
  redis.call('SELECT', ARGV[1])
  return {-1, 0}
end
local staged = redis.call('DBSIZE') - 1
if staged < tonumber(ARGV[4]) or staged > tonumber(ARGV[5]) then
  redis.call('SELECT', ARGV[1])
  return {-2, staged}
end
redis.call('SWAPDB', ARGV[1], ARGV[2])
redis.call('SELECT', ARGV[1])
redis.call('DEL', KEYS[1])
return {1, redis.call('DBSIZE')}
"""


@dataclass
class Staging:
    """A restore's keys waiting in a spare db index of the target's server, claimed by a token.

    Nothing a client of the target index can see changes until ``swap_in``; ``discard`` empties
    the spare (before the swap: the staged keys; after it: the target's previous keys).
    """

    target: Any
    spare: Any
    target_db: int
    spare_db: int
    token: bytes
    keys: int = 0
    swapped: bool | None = False
    #: monotonic time after which each restored key with a TTL may have expired
    deadlines: list[float] = field(default_factory=list)

    def may_have_expired(self, margin_s: float = 1.0) -> int:
        now = time.monotonic() + margin_s
        return sum(1 for deadline in self.deadlines if deadline <= now)


def client_for_db(client: Any, db: int) -> Any:
    """A client for db index ``db`` of the same server, with the same connection settings."""
    import redis

    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "db": db}
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **kwargs))


def database_count(client: Any) -> int:
    """How many db indexes the server has (``databases``); 16 when CONFIG is not allowed."""
    import redis

    try:
        value = client.config_get("databases").get("databases")
    except redis.ResponseError:  # managed Redis often disables CONFIG
        return 16
    return int(value) if value and str(value).isdigit() else 16


def claim_spare(client: Any, *, owner: str = "",
                stale: Callable[[bytes], bool] | None = None) -> Staging:
    """Claim an empty db index (the highest free one) of ``client``'s server for a restore.

    Refused (``DeployFailed``) on a Redis older than 4.0, which has no SWAPDB, and when every
    other index holds keys. The claim is a key set with NX in an index that holds nothing else,
    so two restores never stage into the same index; its value is ``owner`` and a random token.
    An index whose claim ``stale`` recognises (a restore killed half-way) is emptied and reused.
    """
    import redis

    version = server_version(client)
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) < 4:
        raise DeployFailed(f"Redis {version} has no SWAPDB (needs 4.0 or newer) to restore "
                           "all or nothing; nothing was changed")
    target_db = db_index(client)
    count = database_count(client)
    token = f"{owner} {uuid.uuid4().hex}".strip().encode()
    for index in range(count - 1, -1, -1):
        if index == target_db:
            continue
        spare = client_for_db(client, index)
        try:
            if stale is not None and stale(spare.get(STAGING_KEY) or b""):
                _flush_if_claimed_by(spare, spare.get(STAGING_KEY) or b"")
            if spare.set(STAGING_KEY, token, nx=True) and spare.dbsize() == 1:
                return Staging(client, spare, target_db, index, token)
            _release_claim(spare, token)
        except redis.ResponseError:  # an index the server does not have after all
            spare.close()
            break
        spare.close()
    raise DeployFailed(f"no empty Redis db index to stage the restore in (all {count - 1} "
                       f"other than db {target_db} hold keys); nothing was changed",
                       hint="empty an unused db index, or raise `databases` in redis.conf")


def _release_claim(spare: Any, token: bytes) -> None:
    """Delete our claim key, and only ours (another restore may own the index now)."""
    _if_claimed_by(spare, token, lambda pipe: pipe.delete(STAGING_KEY))


def _flush_if_claimed_by(spare: Any, token: bytes) -> None:
    _if_claimed_by(spare, token, lambda pipe: pipe.flushdb())


def _if_claimed_by(spare: Any, token: bytes, action: Callable[[Any], object]) -> None:
    """Run ``action`` in a transaction that happens only while the claim is still ``token``."""
    import redis

    if not token:
        return
    with spare.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(STAGING_KEY)
            if pipe.get(STAGING_KEY) == token:
                pipe.multi()
                action(pipe)
                pipe.execute()
        except redis.WatchError:
            pass


def stage_keys(staging: Staging, path: Path, *, batch: int = 500) -> int:
    """RESTORE every key of the file into the spare index; returns how many were restored.

    A key the server refuses fails the staging with its position (``key 27 of 52``), never its
    name or payload; the target index is untouched either way.
    """
    import redis

    total = count_records(path)  # a damaged file fails here, before any key is sent
    pipe = staging.spare.pipeline(transaction=False)
    pending: list[int] = []
    sent_at = time.monotonic()
    try:
        for key, pttl, payload in read_records(path):
            ttl = 1 if pttl == 0 else max(pttl, 0)  # 0 would mean "never expires"
            pipe.restore(key, ttl, payload)
            pending.append(ttl)
            if len(pending) >= batch:
                _flush_batch(staging, pipe, pending, sent_at, total)
                pending, sent_at = [], time.monotonic()
        if pending:
            _flush_batch(staging, pipe, pending, sent_at, total)
    except redis.RedisError as exc:
        raise DatabaseUnavailable(
            f"Redis stopped answering while staging the restore ({staging.keys} of {total} "
            f"keys staged): {error_summary(exc)}") from None
    return staging.keys


def _flush_batch(staging: Staging, pipe: Any, ttls: list[int], sent_at: float,
                 total: int) -> None:
    replies = pipe.execute(raise_on_error=False)
    for ttl, reply in zip(ttls, replies, strict=True):
        if isinstance(reply, Exception):
            raise DeployFailed(f"Redis refused key {staging.keys + 1} of {total} of the backup "
                               f"({_refusal(reply)})",
                               hint="DUMP payloads restore on the same or a newer Redis version")
        staging.keys += 1
        if ttl > 0:
            staging.deadlines.append(sent_at + ttl / 1000)


def _refusal(exc: BaseException) -> str:
    """What a refused RESTORE means, without echoing the server's text (it may quote data)."""
    text = str(exc)
    if "payload" in text or "checksum" in text:
        return "its DUMP payload is damaged or from a newer Redis version"
    if text.startswith("BUSYKEY"):
        return "the key exists already"
    code = text.split(" ", 1)[0]
    return f"Redis replied {code}" if code.isalpha() and code.isupper() else "Redis refused it"


def swap_in(staging: Staging, expected: int) -> int:
    """Atomically make the staged keys the target index's content; returns its key count.

    ``expected`` is the backup's key count; keys restored with a TTL that has run out since may
    be missing. ``DeployFailed`` when nothing was swapped: the spare no longer holds our claim
    and the keys staged, or Redis refused. When the call fails otherwise, ``staging.swapped``
    says what is known afterwards (True, False, or None: Redis does not answer).
    """
    import redis

    fewest = expected - staging.may_have_expired()
    try:
        status, count = staging.target.eval(
            _SWAP_SCRIPT, 1, STAGING_KEY, staging.target_db, staging.spare_db, staging.token,
            fewest, expected)
    except redis.ResponseError as exc:  # the script stopped at or before SWAPDB
        staging.target.connection_pool.disconnect()  # its connection may sit on the spare db
        staging.swapped = False
        raise DeployFailed(f"Redis refused to swap the restored keys in ({_refusal(exc)})") \
            from None
    except BaseException:
        staging.target.connection_pool.disconnect()
        staging.swapped = _swapped(staging)
        raise
    if status == -1:
        raise DeployFailed(f"the Redis staging index {staging.spare_db} was emptied or taken "
                           "by someone else during the restore")
    if status == -2:
        raise DeployFailed(f"Redis db {staging.spare_db} holds {count} staged keys, expected "
                           f"{expected} (someone wrote to it during the restore)")
    staging.swapped = True
    return int(count)


def _swapped(staging: Staging) -> bool | None:
    """After a swap whose reply was lost: our claim is gone from the spare only if it happened."""
    import redis

    try:
        return bool(staging.spare.get(STAGING_KEY) != staging.token)
    except redis.RedisError:
        return None


def discard(staging: Staging) -> None:
    """Empty the spare index: the target's previous keys after a swap, else the staged keys
    (only while it still carries our claim); then close its client."""
    try:
        if staging.swapped:
            staging.spare.flushdb(asynchronous=True)
        elif staging.swapped is False:
            _flush_if_claimed_by(staging.spare, staging.token)
    finally:
        staging.spare.close()
