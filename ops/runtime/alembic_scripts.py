"""Alembic migrations as data: the graph through Alembic's own API, the code through ``ast``.

The migrations check asks two questions here. "What is the graph?" — answered by
``alembic.config.Config`` and ``alembic.script.ScriptDirectory``, so the check sees exactly the
revisions ``alembic upgrade`` would see (version_locations, file templates, sourceless files).
"What does a migration do?" — answered by parsing its source with ``ast``, never by importing and
running ``upgrade()``, so a check can read a destructive migration without any database at hand.

Alembic is imported inside the functions: ``invoke --list`` and the other sections never pay for
it. Loading executes each revision file's module body (that is how Alembic reads ``revision`` and
``down_revision``); bytecode is not written, so a check leaves no ``__pycache__`` behind.
"""

from __future__ import annotations

import ast
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import ConfigError

#: The comment that acknowledges one destructive operation, on its line or the line above.
ALLOW_MARKER = "tminus: allow-destructive"


class MigrationsUnreadable(ConfigError):
    """alembic.ini or a revision file cannot be read the way Alembic would read it."""


@dataclass(frozen=True)
class RevisionFile:
    """One revision as Alembic loaded it."""

    revision: str
    down_revisions: tuple[str, ...]
    path: Path
    doc: str = ""


@dataclass
class ScriptGraph:
    """The revision graph, with what is wrong with it instead of an exception."""

    ini: Path
    script_location: Path
    version_dirs: list[Path]
    revisions: dict[str, RevisionFile] = field(default_factory=dict)
    heads: tuple[str, ...] = ()
    #: (revision, the down_revision it names that does not exist)
    missing: list[tuple[str, str]] = field(default_factory=list)
    #: revisions Alembic found on a cycle (empty when the graph is acyclic)
    cycle: tuple[str, ...] = ()
    duplicates: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        """Every down_revision resolves and nothing loops: heads and pending counts mean it."""
        return not self.missing and not self.cycle and not self.duplicates


# --- loading the graph ---------------------------------------------------------------------------


@contextmanager
def _loading(extra_paths: list[str]) -> Iterator[None]:
    """While revision files load: no bytecode written, the ini's sys.path entries, then undone."""
    previous_flag, previous_path = sys.dont_write_bytecode, list(sys.path)
    sys.dont_write_bytecode = True
    sys.path[:0] = extra_paths
    try:
        yield
    finally:
        sys.dont_write_bytecode = previous_flag
        sys.path[:] = previous_path


def _config(ini: Path) -> tuple[Any, Path]:
    """An Alembic Config whose relative ``script_location`` is anchored at the ini's folder.

    Alembic itself resolves relative locations against the current directory; a check run from
    elsewhere (``invoke -r``, CI) must still find the project's migrations.
    """
    import configparser

    from alembic.config import Config
    from alembic.util import CommandError

    if not ini.is_file():
        raise MigrationsUnreadable(f"{ini} does not exist",
                                   hint="set ops.migrations.alembic_ini to your alembic.ini")
    try:
        config = Config(str(ini))
        location = config.get_main_option("script_location")
    except CommandError:
        raise MigrationsUnreadable(f"{ini} has no [alembic] section",
                                   hint="start it with `[alembic]` and "
                                        "`script_location = migrations`") from None
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MigrationsUnreadable(f"{ini} is not a valid alembic.ini: {first}",
                                   hint="compare it with `alembic init`'s template") from None
    if not location:
        raise MigrationsUnreadable(f"{ini}: [alembic] has no script_location key",
                                   hint="add `script_location = migrations` under [alembic]")
    if ":" in location and not Path(location).is_absolute():
        raise MigrationsUnreadable(
            f"{ini}: script_location {location!r} is a package resource; tminus reads "
            "migrations from a folder of the repository",
            hint="use a path relative to alembic.ini")
    resolved = Path(location.replace("%(here)s", str(ini.parent)))
    if not resolved.is_absolute():
        resolved = ini.parent / resolved
    if not resolved.is_dir():
        raise MigrationsUnreadable(
            f"{ini}: script_location {location!r} is not a folder ({resolved} is missing)",
            hint="point script_location at the folder holding env.py and versions/")
    config.set_main_option("script_location", str(resolved).replace("%", "%%"))
    return config, resolved


def _sys_paths(config: Any, ini: Path) -> list[str]:
    """``prepend_sys_path`` anchored at the ini's folder, and taken away from Alembic.

    Alembic would resolve it against the current directory and leave it in sys.path for good;
    revision files that import the application still need it while they load.
    """
    raw = config.get_main_option("prepend_sys_path") or ""
    config.set_main_option("prepend_sys_path", "")
    return [str((ini.parent / entry).resolve())
            for entry in re.split(r"[\s,:;]+", raw) if entry]


def load_graph(ini: Path) -> ScriptGraph:
    """Load every revision and describe the graph; ``MigrationsUnreadable`` when unreadable."""
    from alembic.script import ScriptDirectory
    from alembic.script.revision import CycleDetected, RevisionError
    from alembic.util import CommandError

    config, location = _config(ini)
    extra_paths = _sys_paths(config, ini)
    try:
        script_dir = ScriptDirectory.from_config(config)
        version_dirs = [Path(p) for p in script_dir._version_locations]
    except (CommandError, OSError) as exc:
        raise MigrationsUnreadable(f"{ini}: {exc}") from None
    graph = ScriptGraph(ini=ini, script_location=location, version_dirs=version_dirs)
    with _loading(extra_paths), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for script in _each_script(script_dir):
            if script.revision in graph.revisions:
                graph.duplicates.append(script.revision)
            graph.revisions[script.revision] = RevisionFile(
                revision=script.revision,
                down_revisions=tuple(script._versioned_down_revisions),
                path=Path(script.path),
                doc=(script.doc or "").strip(),
            )
    graph.missing = [(rev.revision, down) for rev in graph.revisions.values()
                     for down in rev.down_revisions if down not in graph.revisions]
    if graph.missing or graph.duplicates:
        return graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            graph.heads = tuple(sorted(script_dir.get_heads()))
        except CommandError as exc:
            cause = exc.__cause__
            if isinstance(cause, CycleDetected):
                graph.cycle = tuple(cause.revisions)
            else:
                raise MigrationsUnreadable(f"revision graph: {exc}") from None
        except CycleDetected as exc:
            graph.cycle = tuple(exc.revisions)
        except RevisionError as exc:
            raise MigrationsUnreadable(f"revision graph: {exc}") from None
    return graph


def _each_script(script_dir: Any) -> Iterator[Any]:
    """Alembic's own loader, one file at a time, so a broken file is named in the error."""
    from alembic.util import CommandError

    loader: Iterator[Any] = script_dir._load_revisions()
    while True:
        try:
            script = next(loader)
        except StopIteration:
            return
        except CommandError as exc:
            raise MigrationsUnreadable(f"revision file: {exc}") from None
        except Exception as exc:  # a revision file may raise anything on import
            where = _where(exc)
            raise MigrationsUnreadable(
                f"{where}cannot be loaded: {type(exc).__name__}: {exc}".strip(),
                hint="fix the file so `alembic history` can read it") from None
        yield script


def _where(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}: "
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return f"{last.tb_frame.f_code.co_filename}:{last.tb_lineno}: " if last else ""


# --- walking the graph ---------------------------------------------------------------------------


def ancestors(graph: ScriptGraph, revisions: Iterable[str]) -> set[str]:
    """``revisions`` and everything below them (what a database at them has applied)."""
    seen: set[str] = set()
    stack = [r for r in revisions if r in graph.revisions]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(d for d in graph.revisions[current].down_revisions if d in graph.revisions)
    return seen


def pending(graph: ScriptGraph, current: Iterable[str]) -> list[str]:
    """Revisions ``alembic upgrade heads`` would apply to a database at ``current``."""
    applied = ancestors(graph, current)
    return sorted(set(graph.revisions) - applied)


def unknown(graph: ScriptGraph, current: Iterable[str]) -> list[str]:
    """Revisions the database records that no file here defines (the database is ahead)."""
    return sorted(r for r in current if r not in graph.revisions)


def chain_length(graph: ScriptGraph, head: str) -> int:
    return len(ancestors(graph, [head]))


# --- reading a migration's code ------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """A destructive operation found in ``upgrade()``."""

    line: int
    kind: str
    detail: str
    acknowledged: bool


def parse(path: Path) -> ast.Module:
    """The revision file's syntax tree; a file Alembic loaded always parses."""
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError) as exc:
        raise MigrationsUnreadable(f"{path}: cannot be parsed: {exc}") from None


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def downgrade_problem(path: Path) -> tuple[int, str] | None:
    """``(line, why)`` when the downgrade cannot undo anything, else None.

    A body of only ``pass``, ``...`` and a docstring is a downgrade that silently succeeds while
    leaving the schema as it was: the rollback path would lie.
    """
    tree = parse(path)
    func = _function(tree, "downgrade")
    if func is None:
        return 1, "has no downgrade() function"
    statements = [s for s in func.body if not _is_docstring_or_ellipsis(s)]
    if not statements or all(isinstance(s, ast.Pass) for s in statements):
        line = statements[0].lineno if statements else func.lineno
        return line, "downgrade() does nothing (bare pass)"
    return None


def _is_docstring_or_ellipsis(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and (isinstance(node.value.value, str) or node.value.value is Ellipsis))


_SQL_DESTRUCTIVE = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN|SCHEMA|INDEX|TYPE)|TRUNCATE|RENAME\s+(TO|COLUMN)|"
    r"ALTER\s+COLUMN\s+\S+\s+(TYPE|SET\s+NOT\s+NULL))\b",
    re.IGNORECASE,
)


def destructive_operations(path: Path) -> list[Operation]:
    """The operations of ``upgrade()`` that can lose data or break the running release."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = parse(path)
    func = _function(tree, "upgrade")
    if func is None:
        return []
    found: list[Operation] = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        verdict = _classify(node.func.attr, node)
        if verdict is None:
            continue
        kind, detail = verdict
        found.append(Operation(node.lineno, kind, detail, _acknowledged(lines, node)))
    return sorted(found, key=lambda op: op.line)


_Verdict = tuple[str, str] | None


def _classify(name: str, call: ast.Call) -> _Verdict:
    rule = _RULES.get(name)
    return rule(call, [_literal(a) for a in call.args]) if rule else None


def _drop_table(call: ast.Call, args: list[str]) -> _Verdict:
    return "drop_table", f"drops table {args[0] if args else '?'}"


def _drop_column(call: ast.Call, args: list[str]) -> _Verdict:
    if len(args) > 1:
        return "drop_column", f"drops column {args[0]}.{args[1]}"
    return "drop_column", f"drops column {args[0] if args else '?'} (batch)"


def _rename_table(call: ast.Call, args: list[str]) -> _Verdict:
    return "rename_table", f"renames table {' → '.join(args[:2])}"


def _alter_column(call: ast.Call, args: list[str]) -> _Verdict:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    target = ".".join(args[:2]) or "?"
    if "new_column_name" in keywords:
        return "rename_column", (f"renames column {target} → "
                                 f"{_literal(keywords['new_column_name'])}")
    if "type_" in keywords:
        return "alter_column_type", f"changes the type of {target} to {_source(keywords['type_'])}"
    if _is_false(keywords.get("nullable")) and "server_default" not in keywords:
        return "set_not_null", f"makes {target} NOT NULL without a server_default"
    return None


def _add_column(call: ast.Call, args: list[str]) -> _Verdict:
    column = next((a for a in call.args if isinstance(a, ast.Call)), None)
    if column is None or not _not_null_without_default(column):
        return None
    table = args[0] if len(call.args) > 1 else "(batch)"
    name = _literal(column.args[0]) if column.args else "?"
    return "add_not_null_column", f"adds NOT NULL column {table}.{name} without a server_default"


def _execute(call: ast.Call, args: list[str]) -> _Verdict:
    if not call.args:
        return None
    sql = call.args[0]
    if isinstance(sql, ast.Call) and sql.args:  # op.execute(sa.text("..."))
        sql = sql.args[0]
    if not (isinstance(sql, ast.Constant) and isinstance(sql.value, str)):
        return None
    match = _SQL_DESTRUCTIVE.search(sql.value)
    if match is None:
        return None
    return "raw_sql", f"runs SQL with {' '.join(match.group(0).upper().split())}"


_RULES = {
    "drop_table": _drop_table,
    "drop_column": _drop_column,
    "rename_table": _rename_table,
    "alter_column": _alter_column,
    "add_column": _add_column,
    "execute": _execute,
}


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _not_null_without_default(column: ast.Call) -> bool:
    keywords = {k.arg: k.value for k in column.keywords if k.arg}
    not_null = _is_false(keywords.get("nullable"))
    primary = keywords.get("primary_key")
    if isinstance(primary, ast.Constant) and primary.value is True:
        not_null = True
    return not_null and "server_default" not in keywords


def _literal(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    return _source(node)


def _source(node: ast.expr) -> str:
    return ast.unparse(node)


def _acknowledged(lines: list[str], node: ast.Call) -> bool:
    """The marker on any line of the call, or in a comment line just above it."""
    last = node.end_lineno or node.lineno
    if any(ALLOW_MARKER in line for line in lines[node.lineno - 1:last]):
        return True
    above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
    return above.startswith("#") and ALLOW_MARKER in above
