"""Postgres, the one adapter: argv builders for the client tools, psycopg connections and readers.

Backup and restore use the client tools and ``connect``; the predeploy checks use
``probe_alembic_revisions``, a read-only, short-timeout look through the same ``connect`` and the
same ``alembic_revisions`` reader that a backup records.

Passwords never reach an argv (``ps`` shows argv to every user) nor a message. A URL is read the
way libpq itself reads it (``libpq_params``: PQconninfoParse, so a ``#``, ``?`` or ``/`` in a
password, a ``?password=`` parameter or a ``key=value`` conninfo all mean what the client tools
would make of them); the builders pass the client tools a conninfo string without the password,
and the password travels in ``PGPASSWORD`` in the child's environment only (``client_env``). A URL
that libpq cannot parse, or that it would parse differently from what was meant (an unencoded
``@`` in the password), is refused before anything runs, without showing it. Every URL that may
be shown goes through ``mask_url``.

Restore is in place and all-or-nothing: ``pg_restore --file=-`` turns the archive into SQL, which
``apply_restore`` feeds to one ``psql`` session inside a single transaction that first drops every
user schema. COMMIT is sent only after ``pg_restore`` has exited 0, so a dump that breaks halfway,
an error in any statement or a killed process leaves the database exactly as it was; and objects
created after the backup (a newer migration's tables) do not survive it, so re-running that
migration after a rollback works.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ops.errors import ConfigError, DatabaseUnavailable, DeployFailed
from ops.redact import (
    ENCODE_HINT,
    describe_url,
    is_parseable_url,
    mask_url,
    summarise,
    unparseable_reason,
)

if TYPE_CHECKING:
    import psycopg

Argv = list[str]

#: Schemas that belong to Postgres itself and are never dropped or dumped by us.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


# --- URLs ---------------------------------------------------------------------------------------


def libpq_params(url: str, *, key: str = "DATABASE_URL") -> dict[str, str]:
    """The connection parameters libpq reads from ``url`` (a URI or a ``key=value`` conninfo).

    SQLAlchemy spellings (``postgresql+psycopg://``) and ``postgres://`` are read as the libpq URI.
    ``ConfigError`` (naming ``key``, never showing the value: libpq's own message quotes the
    whole string) when libpq cannot parse it, or when it would read part of the password as the
    host, port or database name (an unencoded ``@`` or ``/``), which would put it in an argv.
    """
    from psycopg.conninfo import conninfo_to_dict

    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+", 1)[0] in {"postgresql", "postgres"}:
        url = f"postgresql://{rest}"
    try:
        params = {name: str(value) for name, value in conninfo_to_dict(url).items()
                  if value is not None}
    except Exception:  # any parse failure: its text would echo the password
        raise ConfigError(f"{key}: unparseable Postgres URL",
                          hint="use postgresql://user:password@host:port/dbname, with special "
                               "characters in the password percent-encoded") from None
    # libpq ends the user and password at the first '@' or '/': the rest of a password with an
    # unencoded '@' lands in the host, one with a '/' in the port and the database name
    port = params.get("port", "")
    if "@" in params.get("host", "") or "@" in params.get("hostaddr", "") \
            or (port and not all(part.strip().isdigit() for part in port.split(","))) \
            or ("@" in params.get("dbname", "") and "user" not in params):
        raise ConfigError(f"{key}: ambiguous Postgres URL (the password or host holds an "
                          "unencoded '@' or '/')",
                          hint="percent-encode '@' as %40 and '/' as %2F in the password")
    return params


def split_password(url: str) -> tuple[str, str | None]:
    """(a conninfo string for the URL without its password, the password or None).

    The conninfo is what goes into an argv (``--dbname=``); the password only into
    ``PGPASSWORD`` (``client_env``).
    """
    from psycopg.conninfo import make_conninfo

    params = libpq_params(url)
    password = params.pop("password", None)
    return make_conninfo("", **params), password


def client_env(url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for one pg_dump/pg_restore/psql child: the caller's, plus the URL's password.

    A copy: the password never enters this process's own environment (which every later child
    would inherit).
    """
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


#: The body of ``verify_restore_sql``'s DO block; @EXPECTED@ and @REVISION@ are SQL literals.
_VERIFY_BODY = r"""
DECLARE
  expected jsonb := '@EXPECTED@'::jsonb;
  problems text[] := '{}';
  t record;
  n bigint;
  key text;
  rev text;
BEGIN
  FOR t IN SELECT ns.nspname, c.relname, ns.nspname || '.' || c.relname AS name
           FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
           WHERE c.relkind = 'r'
             AND ns.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
             AND ns.nspname NOT LIKE 'pg\_temp\_%' ORDER BY 1, 2 LOOP
    IF NOT expected ? t.name THEN
      problems := problems || format('table %s not in the backup', t.name);
      CONTINUE;
    END IF;
    EXECUTE format('SELECT count(*) FROM %I.%I', t.nspname, t.relname) INTO n;
    IF n <> (expected ->> t.name)::bigint THEN
      problems := problems || format('%s has %s rows (backup: %s)', t.name, n,
                                     expected ->> t.name);
    END IF;
    expected := expected - t.name;
  END LOOP;
  FOR key IN SELECT k FROM jsonb_object_keys(expected) k ORDER BY 1 LOOP
    problems := problems || format('table %s missing', key);
  END LOOP;
  IF to_regclass('alembic_version') IS NOT NULL THEN
    EXECUTE 'SELECT string_agg(version_num::text, '','' ORDER BY version_num) FROM alembic_version'
      INTO rev;
  END IF;
  IF rev IS DISTINCT FROM @REVISION@ THEN
    problems := problems || format('alembic revision %s (backup: %s)', coalesce(rev, 'none'),
                                   coalesce(@REVISION@, 'none'));
  END IF;
  IF cardinality(problems) > 0 THEN
    RAISE EXCEPTION 'tminus: the restored data does not match backup.json: %',
      array_to_string(problems[1:5], '; ');
  END IF;
END
"""


def verify_restore_sql(row_counts: Mapping[str, int], alembic_revision: str | None) -> str:
    """SQL that raises unless the database holds exactly what backup.json recorded.

    ``apply_restore`` runs it inside the restore's transaction, just before COMMIT: every table of
    the backup with its row count, no other table, and the same alembic revision; otherwise the
    transaction rolls back and the database is left as it was. (Counted after COMMIT instead,
    the application's first writes would already make the counts differ.)
    """
    expected = json.dumps(dict(sorted(row_counts.items())), sort_keys=True).replace("'", "''")
    revision = "NULL" if alembic_revision is None else \
        "'" + alembic_revision.replace("'", "''") + "'"
    values = {"EXPECTED": expected, "REVISION": revision}
    body = re.sub("@(EXPECTED|REVISION)@", lambda m: values[m.group(1)], _VERIFY_BODY)
    tag = "$tminus$"
    while tag in body:
        tag = tag[:-1] + "_$"
    # pg_restore's script empties search_path; alembic_version is looked up as the app sees it
    return f"RESET search_path;\nDO {tag}{body}{tag};\n"


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


def apply_restore(url: str, dump: Path, schemas: Sequence[str], *, verify_sql: str = "",
                  dry_run: bool = False, echo: IO[str] | None = None) -> None:
    """Replace the database's content with the archive's, in one transaction.

    Python sits between ``pg_restore`` and ``psql`` so that it alone decides whether COMMIT is
    written: only when the script was produced completely (pg_restore exit 0). ``verify_sql``
    (see ``verify_restore_sql``) runs just before COMMIT; when it raises, psql stops
    (ON_ERROR_STOP) and the transaction rolls back.
    """
    producer = pg_restore_script_argv(dump)
    consumer = psql_argv(url)
    if dry_run:
        if echo is not None:
            echo.write(f"[dry-run] {shlex.join(producer)} | {shlex.join(consumer)}"
                       " (BEGIN; drop user schemas; …; verify against backup.json; COMMIT)\n")
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
            psql.stdin.write(b"\n" + verify_sql.encode() + b"\nCOMMIT;\n" if commit
                             else b"\nROLLBACK;\n")
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


def connect(url: str, *, timeout: float = 5.0, autocommit: bool = True,
            read_only: bool = False) -> psycopg.Connection[Any]:
    """A live connection, or ``DatabaseUnavailable`` with a one-line, password-free message.

    ``read_only`` makes the session read-only from its first statement
    (``default_transaction_read_only``) and bounds every statement by ``timeout``: what the
    predeploy checks use, since they may run against production.
    """
    import psycopg
    from psycopg.conninfo import make_conninfo

    params = libpq_params(url)  # psycopg's parse error would echo the URL
    if read_only:
        params["options"] = (f"-c default_transaction_read_only=on "
                             f"-c statement_timeout={max(int(timeout * 1000), 1)}")
    try:
        conn = psycopg.connect(make_conninfo("", **params),
                               connect_timeout=max(1, math.ceil(timeout)), autocommit=autocommit)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"Postgres at {mask_url(url)} refused or did not answer: {_reason(exc, url)}",
            hint="check that the database runs and the URL's host, user and password") from None
    except ValueError:  # psycopg rejects a malformed URL before connecting
        raise DatabaseUnavailable(f"Postgres URL {mask_url(url)} is not valid") from None
    if read_only:
        conn.read_only = True
    return conn


def probe_alembic_revisions(url: str, *, timeout_s: float = 3.0,
                            table: str = "alembic_version") -> tuple[str, ...] | None:
    """The revisions in ``table`` of a live database, read only; None when the table is absent.

    Every way it cannot answer -- an unreadable or non-Postgres URL, a refused connection, a slow
    statement -- is ``DatabaseUnavailable`` naming the database without its password, so a check
    turns it into a skip that says why.
    """
    import psycopg

    if not is_parseable_url(url):  # before any parser that might quote it
        raise DatabaseUnavailable(unparseable_reason(url), hint=ENCODE_HINT)
    if url.split("://", 1)[0].split("+", 1)[0] not in ("postgresql", "postgres"):
        raise DatabaseUnavailable(f"{describe_url(url)} is not a PostgreSQL URL",
                                  hint="DATABASE_URL must start with postgresql://")
    try:
        with connect(url, timeout=timeout_s, autocommit=False, read_only=True) as conn:
            revisions = alembic_revisions(conn, table)
            conn.rollback()
            return revisions
    except ConfigError as exc:  # libpq cannot read it (or would misread the password)
        raise DatabaseUnavailable(f"Postgres at {mask_url(url)} not asked: {exc.message}",
                                  hint=exc.hint) from None
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"Postgres at {describe_url(url)} did not answer: "
            f"{summarise(str(exc), url, default='no answer')}",
            hint="check DATABASE_URL and that the database accepts connections") from None


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


def alembic_revisions(conn: psycopg.Connection[Any],
                      table: str = "alembic_version") -> tuple[str, ...] | None:
    """The revisions recorded in ``table``; None when the table does not exist."""
    from psycopg import sql

    found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if not found or found[0] is None:
        return None
    # ordered by the server, as verify_restore_sql's string_agg orders them
    rows = conn.execute(sql.SQL("SELECT version_num FROM {} ORDER BY 1").format(
        sql.Identifier(table)))
    return tuple(str(row[0]) for row in rows.fetchall())


def alembic_revision(conn: psycopg.Connection[Any]) -> str | None:
    """``alembic_version``'s revision(s) comma-joined, as backup.json records them; None when
    the table does not exist or is empty."""
    return ",".join(alembic_revisions(conn) or ()) or None


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
