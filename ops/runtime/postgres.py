"""Postgres for backup and restore: pure argv builders for the client tools, small psycopg helpers.

Passwords never reach an argv (``ps`` shows argv to every user) nor a message: the builders take a
URL stripped of its password and the password travels in ``PGPASSWORD`` (see ``split_password``);
every URL that may be shown goes through ``mask_url``.

Restore is in place and all-or-nothing: ``pg_restore --file=-`` turns the archive into SQL, which
``apply_restore`` feeds to one ``psql`` session inside a single transaction that first drops every
user schema. COMMIT is sent only after ``pg_restore`` has exited 0, so a dump that breaks halfway,
an error in any statement or a killed process leaves the database exactly as it was; and objects
created after the backup (a newer migration's tables) do not survive it, so re-running that
migration after a rollback works.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ops.errors import DatabaseUnavailable, DeployFailed
from ops.redact import mask_url, summarise, with_password

if TYPE_CHECKING:
    import psycopg

Argv = list[str]

#: Schemas that belong to Postgres itself and are never dropped or dumped by us.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


# --- URLs ----------------------------------------------------------------------------------------


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password or None), for argv and ``PGPASSWORD``."""
    password = urlsplit(url).password
    if password is None:
        return url, None
    return with_password(url, None), unquote(password)


def client_env(url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for pg_dump/pg_restore/psql: the caller's, plus the URL's password."""
    env = dict(os.environ if base is None else base)
    _, password = split_password(url)
    if password is not None:
        env["PGPASSWORD"] = password
    return env


# --- argv builders (pure) ------------------------------------------------------------------------


def pg_dump_argv(url: str, out: Path, *, snapshot: str | None = None,
                 compress: int | None = None) -> Argv:
    """``pg_dump --format=custom`` to a seekable file, so the TOC records data offsets."""
    bare, _ = split_password(url)
    argv = ["pg_dump", "--format=custom", "--no-password", f"--file={out}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    if compress is not None:
        argv.append(f"--compress={compress}")
    argv.append(f"--dbname={bare}")
    return argv


def pg_restore_list_argv(dump: Path) -> Argv:
    """Reads the archive's table of contents: fails on a truncated or foreign file."""
    return ["pg_restore", "--list", str(dump)]


def pg_restore_script_argv(dump: Path) -> Argv:
    """The archive as a plain SQL script on stdout (no database is touched)."""
    return ["pg_restore", "--file=-", str(dump)]


def pg_restore_clean_argv(url: str, dump: Path) -> Argv:
    """The classic in-place restore, for operators who want pg_restore alone.

    tminus itself uses ``apply_restore`` instead: ``--clean`` drops only what the archive
    contains, so tables added after the backup would survive the restore.
    """
    bare, _ = split_password(url)
    return ["pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
            "--no-password", f"--dbname={bare}", str(dump)]


def psql_argv(url: str) -> Argv:
    """A psql that reads SQL from stdin and stops at the first error."""
    bare, _ = split_password(url)
    return ["psql", "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
            f"--dbname={bare}", "--file=-"]


def pg_dump_version_argv() -> Argv:
    return ["pg_dump", "--version"]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reset_schemas_sql(schemas: Sequence[str]) -> str:
    """Drop every user schema, then give back an empty ``public`` as Postgres 15 creates it.

    pg_dump never emits ``CREATE SCHEMA public`` (it assumes it exists), so it is recreated here
    with its default owner and grant.
    """
    statements = [f"DROP SCHEMA IF EXISTS {quote_ident(s)} CASCADE;" for s in schemas]
    statements += ["CREATE SCHEMA IF NOT EXISTS public;",
                   "ALTER SCHEMA public OWNER TO pg_database_owner;",
                   "GRANT USAGE ON SCHEMA public TO PUBLIC;"]
    return "\n".join(statements) + "\n"


# --- running the tools ---------------------------------------------------------------------------


def toc_entries(listing: str) -> int:
    """Number of entries ``pg_restore --list`` printed (its non-comment lines)."""
    return sum(1 for line in listing.splitlines() if line.strip() and not line.startswith(";"))


def tool_version(argv: Argv) -> str:
    """``pg_dump (PostgreSQL) 15.4`` → ``15.4``; ``unknown`` when the tool is missing."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"\d+(\.\d+)+", done.stdout)
    return match.group(0) if match else "unknown"


def apply_restore(url: str, dump: Path, schemas: Sequence[str], *, dry_run: bool = False,
                  echo: IO[str] | None = None) -> None:
    """Replace the database's content with the archive's, in one transaction.

    Python sits between ``pg_restore`` and ``psql`` so that it alone decides whether COMMIT is
    written: only when the script was produced completely (pg_restore exit 0).
    """
    producer = pg_restore_script_argv(dump)
    consumer = psql_argv(url)
    if dry_run:
        if echo is not None:
            echo.write(f"[dry-run] {shlex.join(producer)} | {shlex.join(consumer)}"
                       " (BEGIN; drop user schemas; …; COMMIT)\n")
        return
    env = client_env(url)
    errors: dict[str, bytes] = {}
    with subprocess.Popen(consumer, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env) as psql, \
            subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env) as restore:
        assert psql.stdin is not None and restore.stdout is not None  # noqa: S101 - PIPE given
        drain = threading.Thread(target=_drain, args=(restore.stderr, errors, "pg_restore"),
                                 daemon=True)
        drain.start()
        commit = False
        psql_stopped = False  # psql hit an error and closed its stdin before the script ended
        try:
            psql.stdin.write(b"BEGIN;\n" + reset_schemas_sql(schemas).encode())
            while chunk := restore.stdout.read(1 << 20):
                psql.stdin.write(chunk)
            commit = restore.wait() == 0
            psql.stdin.write(b"\nCOMMIT;\n" if commit else b"\nROLLBACK;\n")
            psql.stdin.close()
        except BrokenPipeError:
            psql_stopped = True
            commit = False
        finally:
            if not commit:
                restore.kill()
            with contextlib.suppress(BrokenPipeError):
                psql.stdin.close()
            psql_err = psql.stderr.read() if psql.stderr else b""
            psql_rc = psql.wait()
            restore.wait()
            drain.join(timeout=5)
    if restore.returncode != 0 and not psql_stopped:
        raise DeployFailed(f"pg_restore could not read {dump.name} (exit {restore.returncode}): "
                           f"{_last_line(errors.get('pg_restore', b''), url)}; "
                           "database left unchanged")
    if psql_rc != 0 or not commit:
        raise DeployFailed(f"restoring {dump.name} failed (psql exit {psql_rc}): "
                           f"{_last_line(psql_err, url)}; the transaction was rolled back")


def _drain(stream: IO[bytes] | None, into: dict[str, bytes], key: str) -> None:
    if stream is not None:
        into[key] = stream.read()


def _last_line(raw: bytes, url: str) -> str:
    lines = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "error" in line]
    return summarise((errors or lines or ["no output"])[0], url)  # bounded, scrubbed, escaped


# --- psycopg helpers -----------------------------------------------------------------------------


def connect(url: str, *, timeout: float = 5.0, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A live connection, or ``DatabaseUnavailable`` with a one-line, password-free message."""
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=max(1, round(timeout)), autocommit=autocommit)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"Postgres at {mask_url(url)} refused or did not answer: {_reason(exc, url)}",
            hint="check that the database runs and the URL's host, user and password") from None
    except ValueError:  # psycopg rejects a malformed URL before connecting
        raise DatabaseUnavailable(f"Postgres URL {mask_url(url)} is not valid") from None


def _reason(exc: BaseException, url: str) -> str:
    """libpq's first clause without its 'connection to server at … failed:' preamble."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        text = re.sub(r"^(connection failed:\s*)?(connection to server (at|on) .*? failed:\s*)?",
                      "", line)
        if text:
            return summarise(text, url)  # one bounded line, password scrubbed, controls escaped
    return type(exc).__name__


def user_schemas(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
        "'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%' ORDER BY nspname").fetchall()
    return [str(row[0]) for row in rows]


def tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(schema, table) of every ordinary table outside the system schemas."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema',"
        " 'pg_toast') AND n.nspname NOT LIKE 'pg\\_temp\\_%' ORDER BY 1, 2").fetchall()
    return [(str(s), str(t)) for s, t in rows]


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Exact ``count(*)`` per table, keyed ``schema.table``, in the connection's snapshot."""
    from psycopg import sql

    counts: dict[str, int] = {}
    for schema, table in tables(conn):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                             sql.Identifier(table))
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def alembic_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The ``alembic_version`` row(s), comma-joined; None when the table does not exist."""
    found = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
    if not found or found[0] is None:
        return None
    rows = conn.execute("SELECT version_num FROM alembic_version ORDER BY 1").fetchall()
    return ",".join(str(row[0]) for row in rows) or None


def server_version(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "unknown"


@contextlib.contextmanager
def exported_snapshot(url: str, *, timeout: float = 5.0
                      ) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """A REPEATABLE READ transaction and its exported snapshot id.

    pg_dump ``--snapshot`` then dumps exactly what this connection sees, so the row counts taken
    here describe the dump even while the application keeps writing.
    """
    conn = connect(url, timeout=timeout, autocommit=False)
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        yield conn, str(row[0]) if row else ""
    finally:
        with contextlib.suppress(Exception):
            conn.cancel()
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()
