"""Alembic migrations as data: found without configuration, read with ``ast``, never imported.

A revision file is somebody else's code. Importing it (as ``alembic history`` does) imports the
application, needs the application's packages, runs whatever its module body does and copies its
exceptions — with their secrets — into our report. So nothing here imports or executes a revision
file, ``env.py`` or the application, on any path:

- *where* the migrations live is read from ``alembic.ini`` (or ``pyproject.toml``'s
  ``[tool.alembic]``) with configparser, resolved the way Alembic resolves it, or found as a folder
  holding ``env.py`` and ``versions/`` (Flask-Migrate, or a project with no ini at all);
- *what* each revision declares — ``revision``, ``down_revision``, ``branch_labels``,
  ``depends_on`` and the bodies of ``upgrade()``/``downgrade()`` — is read with ``ast``;
- the *graph* (heads, merges, cycles) is Alembic's own ``RevisionMap``, built from those values.

The same reader serves predeploy, release-notes and the checklist, so they cannot disagree.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import tomllib
import warnings
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ops.config import MigrationsSettings
from ops.errors import ConfigError
from ops.runtime.files import shown_path

DEFAULT_INI = MigrationsSettings().alembic_ini
#: The comment that acknowledges one destructive operation, on its line or the line above.
ALLOW_MARKER = "tminus: allow-destructive"
#: Folders never searched for migrations: tooling, dependencies, build output.
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".tminus", ".tox", ".nox", ".venv", "venv", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", "__pycache__", "node_modules", "site-packages", "dist",
    "build", "vendor", "third_party", ".eggs",
})
#: How deep below the root an alembic.ini or a migrations folder is looked for.
MAX_DEPTH = 6
#: Folders whose migrations are fixtures or examples, used only when nothing else is found.
_SECONDARY = frozenset({"tests", "test", "testing", "docs", "examples", "example", "samples"})
#: Alembic's own rule for which files in a versions folder are revisions.
_REVISION_FILE = re.compile(r"(?!\.#|__init__)(.*\.py)$")
_LEGACY_ID = re.compile(r"([a-f0-9]+)\.py$")
#: Docstring first lines that are templates' defaults, not a description.
_NO_MESSAGE = frozenset({"", "empty message", "${message}", "message"})


class MigrationsUnreadable(ConfigError):
    """alembic.ini, or the layout it names, cannot be read the way Alembic would read it."""


# --- where the migrations live -------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """One Alembic script directory and how it was found (said in ``migrations.present``)."""

    script_location: Path
    version_dirs: tuple[Path, ...]
    #: the file that configured it (alembic.ini or pyproject.toml), None for a bare folder
    config_file: Path | None
    section: str | None
    how: str
    recursive: bool = False

    @property
    def key(self) -> Path:
        return self.script_location.resolve()


@dataclass
class Discovery:
    """The chosen location, the others that were also candidates, and what was searched."""

    chosen: Location | None
    others: list[Location] = field(default_factory=list)
    searched: str = ""


def discover(root: Path, *, alembic_ini: Path | None = None, section: str = "alembic",
             script_location: Path | None = None,
             version_locations: Iterable[Path] | None = None) -> Discovery:
    """Find the project's migrations, then apply ``version_locations`` when the operator names
    the revision folders (an env.py that picks them per dialect cannot be read)."""
    found = _discover(root, alembic_ini=alembic_ini, section=section,
                      script_location=script_location)
    folders = tuple(p if p.is_absolute() else root / p for p in version_locations or ())
    if folders and found.chosen is not None:
        chosen = found.chosen
        found.chosen = Location(chosen.script_location, folders, chosen.config_file,
                                chosen.section,
                                f"{chosen.how}; versions from ops.migrations.version_locations",
                                chosen.recursive)
    return found


def discover_configured(root: Path, settings: MigrationsSettings) -> Discovery:
    """:func:`discover` as ``ops.migrations`` configures it: the default ``alembic.ini`` means
    "find it", any other value is the operator's explicit choice."""
    return discover(root, alembic_ini=None if settings.alembic_ini == DEFAULT_INI
                    else settings.alembic_ini, section=settings.alembic_section,
                    script_location=settings.script_location,
                    version_locations=settings.version_locations)


def _discover(root: Path, *, alembic_ini: Path | None, section: str,
              script_location: Path | None) -> Discovery:
    """Find the project's migrations; ``MigrationsUnreadable`` for a configured one that is bad.

    ``alembic_ini`` and ``script_location`` are the operator's explicit choice (either wins
    outright); otherwise the root's ``alembic.ini``, then ``pyproject.toml``'s
    ``[tool.alembic]``, then every ``alembic.ini`` and bare script folder below the root.
    """
    if script_location is not None:
        folder = script_location if script_location.is_absolute() else root / script_location
        if not (folder / "env.py").is_file() and not (folder / "versions").is_dir():
            raise MigrationsUnreadable(
                f"{shown_path(root, folder)} (ops.migrations.script_location) holds neither env.py "
                "nor versions/", hint="point it at the folder Alembic's env.py lives in")
        return Discovery(_bare(root, folder, "ops.migrations.script_location"))
    if alembic_ini is not None:
        ini = alembic_ini if alembic_ini.is_absolute() else root / alembic_ini
        if not ini.exists():
            raise MigrationsUnreadable(f"{shown_path(root, ini)} (ops.migrations.alembic_ini) does "
                                       "not exist",
                                       hint="fix ops.migrations.alembic_ini or restore the file")
        return Discovery(read_ini(root, ini, section))
    if (root / "alembic.ini").exists():  # a FIFO or device there is refused, not skipped
        return Discovery(read_ini(root, root / "alembic.ini", section))
    from_toml = _read_pyproject(root, root / "pyproject.toml")
    if from_toml is not None:
        return Discovery(from_toml)
    return _search(root, section)


def _search(root: Path, section: str) -> Discovery:
    searched = ("alembic.ini or pyproject.toml [tool.alembic] at the root, alembic.ini files "
                f"below it (depth {MAX_DEPTH}), or a folder holding env.py and versions/")
    inis, bare = _walk(root)
    found: dict[Path, Location] = {}
    first_error: MigrationsUnreadable | None = None
    claimed: set[Path] = set()  # every folder some section of some ini names
    for ini in inis:
        sections = _other_sections(root, ini)
        claimed |= {location.key for location in sections}
        locations = [s for s in sections if s.section == section]
        if not locations:  # Flask-Migrate's ini names no script_location; or none is usable
            try:
                locations = [read_ini(root, ini, section)]
            except MigrationsUnreadable as exc:
                locations = sections  # [core] and [tenant], no [alembic]
                if not locations:
                    first_error = first_error or exc
                    continue
        for location in locations:
            found.setdefault(location.key, location)
    for folder in bare:
        if folder.resolve() not in claimed:  # another section's tree is not another setup
            found.setdefault(folder.resolve(), _bare(root, folder, "no alembic.ini: the "
                                                      "folder holding env.py and versions/"))
    if not found:
        if first_error is not None:
            raise first_error
        return Discovery(None, searched=searched)
    ranked = sorted(found.values(), key=lambda loc: _rank(root, loc))
    return Discovery(ranked[0], ranked[1:], searched)


def _rank(root: Path, location: Location) -> tuple[int, int, int, int, str]:
    """Configured over bare folders, real code over fixtures, the larger history over the
    smaller (a multi-tenant ini's main tree), shallow over deep."""
    where = location.config_file or location.script_location
    parts = shown_path(root, where).split("/")
    secondary = any(p.lower() in _SECONDARY for p in parts[:-1])
    size = sum(1 for _ in revision_paths(location))
    return (int(secondary), int(location.config_file is None), -size, len(parts),
            "/".join(parts))


def _other_sections(root: Path, ini: Path) -> list[Location]:
    """Each section of a multi-section ini that has a script_location (``alembic -n NAME``)."""
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read_string(_small_text(ini), source=str(ini))
    except (configparser.Error, UnicodeDecodeError, OSError, ValueError):
        return []
    found = []
    for name in parser.sections():
        if parser.has_option(name, "script_location"):
            with suppress(MigrationsUnreadable):
                found.append(read_ini(root, ini, name))
    return found


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    inis: list[Path] = []
    bare: list[Path] = []
    base_depth = len(root.parts)
    for current, dirs, files in os.walk(root):
        here = Path(current)
        depth = len(here.parts) - base_depth
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")
                         and depth < MAX_DEPTH)
        if "alembic.ini" in files and here != root:
            inis.append(here / "alembic.ini")
        if "env.py" in files and "versions" in dirs:
            bare.append(here)
    return inis, bare


def _bare(root: Path, folder: Path, how: str) -> Location:
    return Location(script_location=folder, version_dirs=(folder / "versions",),
                    config_file=None, section=None, how=f"{shown_path(root, folder)} ({how})")


def read_ini(root: Path, ini: Path, section: str = "alembic") -> Location:
    """The script directory an alembic.ini names, resolved as ``alembic -c INI`` would."""
    name = shown_path(root, ini)
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read_string(_small_text(ini), source=name)
    except (configparser.Error, UnicodeDecodeError, OSError, ValueError) as exc:
        raise MigrationsUnreadable(f"{name} is not a valid alembic.ini: {_first_line(exc)}",
                                   hint="compare it with `alembic init`'s template") from None
    if not parser.has_section(section):
        others = [s for s in parser.sections() if parser.has_option(s, "script_location")]
        hint = (f"it has {', '.join(f'[{s}]' for s in others)}: set "
                "ops.migrations.alembic_section to one of them") if others else \
            "start it with `[alembic]` and `script_location = migrations`"
        raise MigrationsUnreadable(f"{name} has no [{section}] section", hint=hint)
    options = _options(parser, section, name)
    raw = options.get("script_location")
    if not raw:
        if (ini.parent / "env.py").is_file():
            folder = ini.parent
            how = f"{name} [{section}] has no script_location: its own folder (Flask-Migrate)"
        else:
            others = [s for s in parser.sections()
                      if s != section and parser.has_option(s, "script_location")]
            hint = (f"it is in {', '.join(f'[{s}]' for s in others)}: set "
                    "ops.migrations.alembic_section (like `alembic -n NAME`)") if others else \
                f"add `script_location = migrations` under [{section}]"
            raise MigrationsUnreadable(f"{name}: [{section}] has no script_location key",
                                       hint=hint)
    else:
        folder = _resolve(root, ini, raw, name, "script_location")
        how = f"{name} [{section}] script_location = {raw}"
    versions = _version_dirs(root, ini, folder, options, name)
    recursive = options.get("recursive_version_locations", "").strip().lower() in {
        "true", "1", "yes", "on"}
    return Location(folder, versions, ini, section, how, recursive)


def _options(parser: configparser.ConfigParser, section: str, name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for key in ("script_location", "version_locations", "path_separator",
                "version_path_separator", "recursive_version_locations"):
        try:
            value = parser.get(section, key, fallback=None)
        except configparser.Error as exc:
            raise MigrationsUnreadable(f"{name}: [{section}] {key}: {_first_line(exc)}") from None
        if value is not None:
            values[key] = value.strip()
    return values


def _read_pyproject(root: Path, path: Path) -> Location | None:
    """Alembic ≥ 1.16 reads ``[tool.alembic]`` from pyproject.toml when there is no ini."""
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(_small_text(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, ValueError):
        return None  # a broken pyproject.toml is not ours to judge here
    table = data.get("tool", {}).get("alembic") if isinstance(data.get("tool"), dict) else None
    if not isinstance(table, dict) or not isinstance(table.get("script_location"), str):
        return None
    here = str(path.parent)
    raw = table["script_location"].replace("%(here)s", here)
    name = shown_path(root, path)
    folder = _resolve(root, path, raw, name, "script_location")
    raw_versions = table.get("version_locations")
    versions: tuple[Path, ...] = (folder / "versions",)
    if isinstance(raw_versions, list) and raw_versions:
        versions = tuple(_resolve(root, path, str(v).replace("%(here)s", here), name,
                                  "version_locations", must_exist=False) for v in raw_versions)
    recursive = table.get("recursive_version_locations") is True
    return Location(folder, versions, path, "tool.alembic",
                    f"{name} [tool.alembic] script_location = {table['script_location']}",
                    recursive)


def _resolve(root: Path, config: Path, raw: str, name: str, key: str, *,
             must_exist: bool = True) -> Path:
    """Relative to the project root, as Alembic resolves it from where it runs, else the ini's
    folder; ``package:path`` resources as the package's folder in the repository (found on
    disk, never imported)."""
    if ":" in raw and not Path(raw).is_absolute():
        package, *parts = raw.split(":")  # Alembic: the first token is the package, then paths
        candidates = [base / package.replace(".", "/") / Path(*parts) if parts else
                      base / package.replace(".", "/") for base in _package_roots(root, config)]
    elif Path(raw).is_absolute():
        candidates = [Path(raw)]
    else:
        candidates = [root / raw, config.parent / raw]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    if not must_exist:
        return candidates[-1]
    raise MigrationsUnreadable(
        f"{name}: {key} {raw!r} is not a folder (looked in "
        f"{', '.join(shown_path(root, c) for c in candidates[:4])})",
        hint="point script_location at the folder holding env.py and versions/")


def _package_roots(root: Path, config: Path) -> list[Path]:
    """Where a package named in ``pkg:path`` may live: the root, ``src/``, and each folder from
    the config file up to the root (``src/pkg/alembic.ini`` naming ``pkg:migrations``)."""
    bases = [root, root / "src"]
    folder = config.parent
    while folder != root and root in folder.parents:
        bases.append(folder)
        folder = folder.parent
    return bases


def _version_dirs(root: Path, ini: Path, folder: Path, options: dict[str, str],
                  name: str) -> tuple[Path, ...]:
    raw = options.get("version_locations", "")
    if not raw:
        return (folder / "versions",)
    separators = {"space": " ", "newline": "\n", "os": os.pathsep, ":": ":", ";": ";"}
    chosen = options.get("path_separator") or options.get("version_path_separator")
    if chosen is not None and chosen not in separators:
        raise MigrationsUnreadable(f"{name}: path_separator {chosen!r} is not one of "
                                   f"{', '.join(separators)}")
    parts = raw.split(separators[chosen]) if chosen else re.split(r", *| +", raw)
    return tuple(_resolve(root, ini, p.strip(), name, "version_locations", must_exist=False)
                 for p in parts if p.strip())


def _small_text(path: Path, limit: int = 1 << 20) -> str:
    """A config file's text; a device, FIFO or huge file is refused instead of read."""
    if not path.is_file():
        raise ValueError("not a regular file")
    if path.stat().st_size > limit:
        raise ValueError(f"larger than {limit // 1024} KiB")
    return path.read_text(encoding="utf-8")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# --- one revision file, read with ast ------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """A destructive operation found in ``upgrade()``."""

    line: int
    kind: str
    detail: str
    acknowledged: bool


@dataclass(frozen=True)
class RevisionFile:
    """What one revision file declares, as ``ast`` read it."""

    revision: str
    down_revisions: tuple[str, ...]
    path: Path
    doc: str = ""
    branch_labels: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    #: merge | schema | data | empty: what ``upgrade()`` does
    kind: str = "schema"
    #: (line, why) when the downgrade cannot undo a schema change
    downgrade_problem: tuple[int, str] | None = None
    operations: tuple[Operation, ...] = ()

    @property
    def message(self) -> str:
        """The ``-m`` text Alembic put first in the docstring; empty when it is a default."""
        first = next((line.strip() for line in self.doc.splitlines() if line.strip()), "")
        return "" if first.lower() in _NO_MESSAGE or first.startswith("Revision ID") else first


@dataclass(frozen=True)
class Unreadable:
    """A revision file that cannot be read statically: where, and why (never its source)."""

    path: Path
    line: int
    reason: str


def read_revision(text: str, path: Path) -> RevisionFile | Unreadable:
    """Parse one revision file's source; never raises for what the file contains."""
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        return Unreadable(path, exc.lineno or 1, f"is not valid Python ({exc.msg})")
    except (ValueError, RecursionError, MemoryError):
        return Unreadable(path, 1, "cannot be parsed")
    declared = _declarations(tree, path)
    if isinstance(declared, Unreadable):
        return declared
    revision, ids = declared
    downs = ids.get("down_revision", ())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    upgrade = _body(functions, "upgrade")
    kind = _kind(upgrade, downs)
    problem = _downgrade_problem(functions, _body(functions, "downgrade")) \
        if kind == "schema" else None
    operations = tuple(sorted(_destructive(upgrade, text.splitlines()), key=lambda o: o.line))
    return RevisionFile(revision=revision, down_revisions=downs, path=path,
                        doc=(ast.get_docstring(tree) or "").strip(),
                        branch_labels=ids.get("branch_labels", ()),
                        depends_on=ids.get("depends_on", ()), kind=kind,
                        downgrade_problem=problem, operations=operations)


def _declarations(tree: ast.Module,
                  path: Path) -> tuple[str, dict[str, tuple[str, ...]]] | Unreadable:
    """``revision`` and the id lists, from module-level (annotated) assignments of literals."""
    values: dict[str, tuple[int, ast.expr]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            values.update({t.id: (node.lineno, node.value) for t in node.targets
                           if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and node.value is not None \
                and isinstance(node.target, ast.Name):
            values[node.target.id] = (node.lineno, node.value)
    if "revision" in values:
        line, value = values["revision"]
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            return Unreadable(path, line, "`revision` is not a string literal")
        revision = value.value
    else:
        legacy = _LEGACY_ID.match(path.name)
        if legacy is None:
            return Unreadable(path, 1, "declares no `revision = \"…\"` (Alembic cannot load "
                                       "it either)")
        revision = legacy.group(1)
    ids: dict[str, tuple[str, ...]] = {}
    for key in ("down_revision", "branch_labels", "depends_on"):
        if key in values:
            line, value = values[key]
            parsed = _ids(value)
            if parsed is None:
                return Unreadable(path, line,
                                  f"`{key}` is not a literal (str, tuple, list or None)")
            ids[key] = parsed
    return revision, ids


def _ids(node: ast.expr) -> tuple[str, ...] | None:
    """A str, tuple/list/set of str, or None, as written; anything computed is None."""
    if isinstance(node, ast.Constant):
        if node.value is None:
            return ()
        return (node.value,) if isinstance(node.value, str) else None
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        if len(items) != len(node.elts) or not all(isinstance(i, str) for i in items):
            return None
        return tuple(str(i) for i in items)
    return None


def _body(functions: dict[str, ast.FunctionDef], name: str) -> list[ast.stmt]:
    """The statements ``name()`` runs: its own, those of ``name_*`` (Alembic's multi-db
    template dispatches through ``globals()``) and of module functions it calls, once each."""
    seen: set[str] = set()
    pending = [n for n in functions if n == name or n.startswith(f"{name}_")]
    statements: list[ast.stmt] = []
    while pending:
        current = pending.pop(0)
        if current in seen or current not in functions:
            continue
        seen.add(current)
        statements += _meaningful(functions[current].body)
        for node in ast.walk(functions[current]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in functions:
                pending.append(node.func.id)
    return statements


def _meaningful(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that do something: not ``pass``, ``...`` or a docstring."""
    return [s for s in body if not isinstance(s, ast.Pass) and not (
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
        and (isinstance(s.value.value, str) or s.value.value is Ellipsis))]


#: ``op.*`` calls that change the schema (so a downgrade must undo them).
_SCHEMA_OPS = frozenset({
    "create_table", "drop_table", "rename_table", "add_column", "drop_column", "alter_column",
    "create_index", "drop_index", "create_unique_constraint", "create_foreign_key",
    "create_check_constraint", "create_primary_key", "create_exclude_constraint",
    "drop_constraint", "create_table_comment", "drop_table_comment", "batch_alter_table",
})
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|COMMENT\s+ON)\b", re.IGNORECASE | re.MULTILINE)


def _kind(upgrade: list[ast.stmt], downs: tuple[str, ...]) -> str:
    if not upgrade:
        return "merge" if len(downs) > 1 else "empty"
    for statement in upgrade:
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and _changes_schema(node):
                return "schema"
    return "data"


def _changes_schema(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr in _SCHEMA_OPS:
        return True
    if func.attr == "execute":
        sql = _sql_text(call)
        return sql is not None and _DDL.search(sql) is not None
    # sa.Enum(...).create(op.get_bind()) and friends: a type or sequence made on the bind
    return func.attr in {"create", "drop"} and (
        any(_mentions_bind(a) for a in call.args) or any(k.arg == "bind" for k in call.keywords))


def _mentions_bind(node: ast.expr) -> bool:
    return any((isinstance(n, ast.Attribute) and n.attr == "get_bind")
               or (isinstance(n, ast.Name) and n.id in {"bind", "connection", "conn"})
               for n in ast.walk(node))


def _sql_text(call: ast.Call) -> str | None:
    if not call.args:
        return None
    sql = call.args[0]
    if isinstance(sql, ast.Call) and sql.args:  # op.execute(sa.text("..."))
        sql = sql.args[0]
    if isinstance(sql, ast.Constant) and isinstance(sql.value, str):
        return sql.value
    if isinstance(sql, ast.JoinedStr):
        return "".join(v.value for v in sql.values
                       if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def _downgrade_problem(functions: dict[str, ast.FunctionDef],
                       downgrade: list[ast.stmt]) -> tuple[int, str] | None:
    """``(line, why)`` when a schema change has no way back; a downgrade that raises is an
    explicit answer ("cannot be undone"), not a silent one."""
    func = functions.get("downgrade")
    if func is None:
        return 1, "changes the schema but has no downgrade() function"
    if not downgrade:
        line = func.body[-1].lineno if func.body else func.lineno
        return line, "changes the schema but downgrade() does nothing (bare pass)"
    return None


# --- destructive operations ----------------------------------------------------------------------


_SQL_DESTRUCTIVE = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN|SCHEMA|TYPE)|TRUNCATE|RENAME\s+(TO|COLUMN)|"
    r"ALTER\s+COLUMN\s+\S+\s+(TYPE|SET\s+NOT\s+NULL))\b",
    re.IGNORECASE,
)


def _destructive(upgrade: list[ast.stmt], lines: list[str]) -> Iterator[Operation]:
    """Operations of ``upgrade()`` that can lose data or break the running release, with the
    table named also inside ``with op.batch_alter_table("t") as batch_op:``."""
    for statement in upgrade:
        yield from _visit(statement, {}, lines)


def _visit(node: ast.AST, batches: dict[str, str], lines: list[str]) -> Iterator[Operation]:
    """Walk ``node``, remembering which name is a batch operation on which table."""
    if isinstance(node, ast.With):
        inner = dict(batches)
        for item in node.items:
            table = _batch_table(item.context_expr)
            if table is not None and isinstance(item.optional_vars, ast.Name):
                inner[item.optional_vars.id] = table
        for child in node.body:
            yield from _visit(child, inner, lines)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        table = batches.get(owner.id) if isinstance(owner, ast.Name) else None
        verdict = _classify(node.func.attr, node, table)
        if verdict is not None:
            kind, detail = verdict
            yield Operation(node.lineno, kind, detail, _acknowledged(lines, node))
    for inner_node in ast.iter_child_nodes(node):
        yield from _visit(inner_node, batches, lines)


def _batch_table(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) \
            and expr.func.attr == "batch_alter_table" and expr.args:
        return _literal(expr.args[0])
    return None


_Verdict = tuple[str, str] | None


def _classify(name: str, call: ast.Call, batch_table: str | None) -> _Verdict:
    """The verdict of the rule for ``op.<name>`` (or ``batch_op.<name>`` on ``batch_table``)."""
    rule = _RULES.get(name)
    if rule is None:
        return None
    args = [_literal(a) for a in call.args]
    return rule(call, [batch_table, *args] if batch_table is not None else args, batch_table)


def _drop_table(call: ast.Call, args: list[str], batch: str | None) -> _Verdict:
    return "drop_table", f"drops table {args[0] if args else '?'}"


def _drop_column(call: ast.Call, args: list[str], batch: str | None) -> _Verdict:
    return "drop_column", f"drops column {'.'.join(args[:2]) if len(args) > 1 else '?'}"


def _rename_table(call: ast.Call, args: list[str], batch: str | None) -> _Verdict:
    return "rename_table", f"renames table {' → '.join(args[:2])}"


def _execute(call: ast.Call, args: list[str], batch: str | None) -> _Verdict:
    sql = _sql_text(call)
    match = _SQL_DESTRUCTIVE.search(sql) if sql else None
    if match is None:
        return None
    return "raw_sql", f"runs SQL with {' '.join(match.group(0).upper().split())}"


def _alter_column(call: ast.Call, args: list[str], batch: str | None) -> _Verdict:
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


def _add_column(call: ast.Call, args: list[str], batch: str | None) -> _Verdict:
    column = next((a for a in call.args if isinstance(a, ast.Call)), None)
    if column is None or not _not_null_without_default(column):
        return None
    table = batch or (args[0] if len(call.args) > 1 else "?")
    name = _literal(column.args[0]) if column.args else "?"
    return "add_not_null_column", f"adds NOT NULL column {table}.{name} without a server_default"


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
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _acknowledged(lines: list[str], node: ast.Call) -> bool:
    """The marker on any line of the call, or in a comment line just above it."""
    last = node.end_lineno or node.lineno
    if any(ALLOW_MARKER in line for line in lines[node.lineno - 1:last]):
        return True
    above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
    return above.startswith("#") and ALLOW_MARKER in above


# --- revision ids by line (for the secret scan) -----------------------------------------------


_REVISION_NAMES = frozenset({"revision", "down_revision", "branch_labels", "depends_on"})
_DOCSTRING_IDS = re.compile(r"^\s*(?:Revision ID|Revises)\s*:(?P<ids>.*)$")


def revision_id_lines(source: bytes | str) -> dict[int, frozenset[str]]:
    """Line number → the revision ids written on it, for an Alembic revision file; {} for any
    other module.

    A revision file is one whose module level assigns both ``revision`` and ``down_revision``
    (what ``alembic revision`` writes, plain or annotated: ``revision: str = "..."``). Its id
    lines are those assignments and ``branch_labels`` / ``depends_on`` (every line of a
    multi-line tuple), and the docstring's ``Revision ID:`` and ``Revises:`` lines. The source is
    parsed, never imported or run.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    ids: dict[int, set[str]] = {}
    assigned: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr]
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        names = {leaf.id for target in targets for leaf in ast.walk(target)
                 if isinstance(leaf, ast.Name)} & _REVISION_NAMES
        if not names:
            continue
        assigned |= names
        strings = {leaf.value for leaf in ast.walk(value)
                   if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str)}
        for number in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            ids.setdefault(number, set()).update(strings)
    if not {"revision", "down_revision"} <= assigned:
        return {}
    docstring = tree.body[0] if tree.body else None
    if isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant) and \
            isinstance(docstring.value.value, str):
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        lines = text.splitlines()
        for number in range(docstring.lineno, (docstring.end_lineno or docstring.lineno) + 1):
            found = _DOCSTRING_IDS.match(lines[number - 1]) if number <= len(lines) else None
            if found:
                words = re.split(r"[\s,]+", found.group("ids").strip(" \t\"'"))
                ids.setdefault(number, set()).update(w for w in words if w)
    return {number: frozenset(found) for number, found in ids.items() if found}


# --- the graph -----------------------------------------------------------------------------------


@dataclass
class ScriptGraph:
    """The revision graph, with what is wrong with it instead of an exception."""

    location: Location | None
    revisions: dict[str, RevisionFile] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)
    heads: tuple[str, ...] = ()
    #: (revision, the down_revision or depends_on it names that does not exist)
    missing: list[tuple[str, str]] = field(default_factory=list)
    #: revisions Alembic found on a cycle (empty when the graph is acyclic)
    cycle: tuple[str, ...] = ()
    duplicates: list[str] = field(default_factory=list)
    #: what Alembic's RevisionMap refused otherwise (an illegal id, a branch label used twice)
    errors: list[str] = field(default_factory=list)

    @property
    def version_dirs(self) -> tuple[Path, ...]:
        return self.location.version_dirs if self.location else ()

    @property
    def sound(self) -> bool:
        """Every down_revision resolves and nothing loops: heads and pending counts mean it."""
        return not (self.missing or self.cycle or self.duplicates or self.errors)


def revision_paths(location: Location) -> Iterator[Path]:
    """The files Alembic would load as revisions, in a stable order."""
    for folder in location.version_dirs:
        if not folder.is_dir():
            continue
        walker = folder.rglob("*.py") if location.recursive else folder.glob("*.py")
        for path in sorted(walker):
            if "__pycache__" not in path.parts and _REVISION_FILE.match(path.name) \
                    and path.is_file():
                yield path


def load_graph(location: Location) -> ScriptGraph:
    """Read every revision of ``location`` and let Alembic's RevisionMap judge the graph."""
    graph = ScriptGraph(location)
    for path in revision_paths(location):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            graph.unreadable.append(Unreadable(path, 1, f"cannot be read ({type(exc).__name__})"))
            continue
        parsed = read_revision(text, path)
        if isinstance(parsed, Unreadable):
            graph.unreadable.append(parsed)
            continue
        if parsed.revision in graph.revisions:
            graph.duplicates.append(parsed.revision)
        graph.revisions[parsed.revision] = parsed
    judge(graph)
    return graph


def judge(graph: ScriptGraph) -> None:
    """Fill in missing parents, heads and cycles, the last two as Alembic's RevisionMap says."""
    from alembic.script.revision import CycleDetected, Revision, RevisionError, RevisionMap

    labels = {label for rev in graph.revisions.values() for label in rev.branch_labels}
    known = set(graph.revisions)
    graph.missing = [(rev.revision, down) for rev in graph.revisions.values()
                     for down in rev.down_revisions if down not in known]
    graph.missing += [(rev.revision, dep) for rev in graph.revisions.values()
                      for dep in rev.depends_on if dep not in known and dep not in labels]
    absent = {name for _, name in graph.missing}
    try:
        revisions = [Revision(rev.revision,
                              tuple(d for d in rev.down_revisions if d not in absent) or None,
                              dependencies=tuple(d for d in rev.depends_on
                                                 if d not in absent) or None,
                              branch_labels=rev.branch_labels or None)
                     for rev in graph.revisions.values()]
        revision_map = RevisionMap(lambda: revisions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph.heads = tuple(sorted(revision_map.heads))
    except CycleDetected as exc:
        graph.cycle = tuple(exc.revisions)
    except RevisionError as exc:
        graph.errors.append(_first_line(exc))


def ancestors(graph: ScriptGraph, revisions: Iterable[str]) -> set[str]:
    """``revisions`` and everything below them (what a database at them has applied)."""
    seen: set[str] = set()
    stack = [r for r in revisions if r in graph.revisions]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        rev = graph.revisions[current]
        stack.extend(d for d in (*rev.down_revisions, *rev.depends_on) if d in graph.revisions)
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


# --- revisions in another tree (a release tag) ---------------------------------------------------


def revisions_in_texts(texts: dict[str, str]) -> dict[str, RevisionFile]:
    """The revisions among files given as {posix path: source}, e.g. blobs of a release tag.

    Whatever folder an older ini pointed at, a file that declares ``revision`` and
    ``down_revision`` at module level is a revision; "new since the release" then compares ids,
    which survive moved folders and reconfigured inis.
    """
    found: dict[str, RevisionFile] = {}
    for name, text in texts.items():
        if not (_DECLARES_REVISION.search(text) and _DECLARES_DOWN.search(text)):
            continue
        parsed = read_revision(text, Path(PurePosixPath(name)))
        if isinstance(parsed, RevisionFile):
            found[parsed.revision] = parsed
    return found


_DECLARES_REVISION = re.compile(r"^revision\s*[:=]", re.MULTILINE)
_DECLARES_DOWN = re.compile(r"^down_revision\s*[:=]", re.MULTILINE)
