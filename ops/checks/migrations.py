"""Section 2, Database Migrations: will ``alembic upgrade`` do what the release expects, and undo?

Revision files are read with ``ast`` and the graph is judged by Alembic's own ``RevisionMap``
(``ops.runtime.alembic_scripts``): nothing of the service's code is imported or run. "New" means
a revision id the previous release tag's tree did not define: only those can still be fixed, so
only those are judged for downgrades, destructive operations and documentation.
The live database and Redis are only read, with short timeouts; when they do not answer, the
check is skipped with the reason — never a pass.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ops.bounded import clipped, listed
from ops.checks import CheckContext
from ops.errors import DatabaseUnavailable, OpsError
from ops.redact import describe_url, mask
from ops.report import Finding, failed, passed, skipped, warned
from ops.runtime.alembic_scripts import (
    ALLOW_MARKER,
    Discovery,
    MigrationsUnreadable,
    RevisionFile,
    ScriptGraph,
    chain_length,
    discover_configured,
    load_graph,
    pending,
    revisions_in_texts,
    unknown,
)
from ops.runtime.envfile import service_url
from ops.runtime.files import read_text_safely
from ops.runtime.git import (
    file_at,
    is_shallow,
    nearest_tag,
    previous_release,
    python_sources_mentioning,
    tree_paths,
    worktree_changes,
)
from ops.runtime.postgres import probe_alembic_revisions
from ops.runtime.redis import sample_key_types

if TYPE_CHECKING:
    import git

#: How many items a message lists before it says "+N more".
SHOWN = 5
_listed = partial(listed, shown=SHOWN)

GRAPH_IDS = ("committed", "single_head", "chain", "downgrade", "destructive", "documented",
             "db_current")
REDIS_TYPES = {"string", "list", "set", "zset", "hash", "stream"}


def run(ctx: CheckContext) -> Iterator[Finding]:
    try:
        found = discover_configured(ctx.root, ctx.settings.migrations)
    except MigrationsUnreadable as exc:
        yield failed("migrations.present", _relative_text(ctx, exc.message), hint=exc.hint)
        yield from _without_graph(ctx, "the migrations cannot be found (migrations.present)")
        return
    if found.chosen is None:
        reason = f"no alembic.ini or migrations folder: looked for {found.searched}"
        yield skipped("migrations.present", f"{reason}; this project has no migrations",
                      hint="set ops.migrations.alembic_ini (or script_location) if they live "
                           "elsewhere")
        yield from _without_graph(ctx, "this project has no migrations")
        return
    graph = load_graph(found.chosen)
    ctx.notes["revision_ids"] = set(graph.revisions)  # the secret scan knows them as ids
    if graph.unreadable:
        for problem in graph.unreadable:
            yield failed("migrations.present",
                         f"{ctx.shown(problem.path)}:{problem.line}: {problem.reason}",
                         hint="tminus reads revision files without running them: keep "
                              "revision/down_revision literal, and the file valid Python")
        yield from _without_graph(ctx, "a revision file cannot be read (migrations.present)")
        return
    yield from check_present(ctx, graph, found)
    if not graph.revisions:
        yield from _without_graph(ctx, "no revisions to check (migrations.present)")
        return
    yield from check_committed(ctx, graph)
    chain = list(check_chain(ctx, graph))
    yield check_single_head(graph)
    yield from chain
    new = new_revisions(ctx, graph)
    if new.unknown:
        yield warned("migrations.history", new.unknown,
                     hint="fetch the tags and enough history: `git fetch --unshallow --tags` "
                          "(CI: fetch-depth 0)")
    yield from check_downgrade(ctx, new)
    yield from check_destructive(ctx, new)
    yield from check_documented(ctx, new)
    yield check_db_current(ctx, graph)
    yield from check_redis_schema(ctx)


def _without_graph(ctx: CheckContext, reason: str) -> Iterator[Finding]:
    """Every graph check skips with the reason; the Redis schema does not need the graph."""
    for rest in GRAPH_IDS:
        yield skipped(f"migrations.{rest}", reason)
    yield from check_redis_schema(ctx)


# --- the files -----------------------------------------------------------------------------------


def _relative_text(ctx: CheckContext, text: str) -> str:
    return text.replace(str(ctx.root.resolve()) + "/", "").replace(str(ctx.root) + "/", "")


def check_present(ctx: CheckContext, graph: ScriptGraph, found: Discovery) -> Iterator[Finding]:
    location = graph.location
    if location is None:
        return
    folders = ", ".join(ctx.shown(d) for d in graph.version_dirs)
    nested = _nested_revision_folders(graph)
    if not graph.revisions and nested:
        yield warned("migrations.present",
                     f"{location.how}: {folders} holds no revisions itself, but its subfolders "
                     f"{_listed(nested)} do (env.py picks them at run time)",
                     hint="name the ones to check in ops.migrations.version_locations")
    elif not graph.revisions:
        yield warned("migrations.present",
                     f"{location.how}: {folders} holds no revisions",
                     hint="create one with `alembic revision -m \"...\"`, or remove the "
                          "empty migrations setup")
    else:
        yield passed("migrations.present",
                     f"{len(graph.revisions)} revision(s) in {folders} (from {location.how})",
                     detail={"script_location": ctx.shown(location.script_location),
                             "config": ctx.shown(location.config_file)
                             if location.config_file else None,
                             "section": location.section})
    if found.others:
        others = [o.how for o in found.others]
        yield warned("migrations.present",
                     f"{len(found.others) + 1} migration setups found; using {location.how}, "
                     f"not {_listed(others)}",
                     hint="pick one with ops.migrations.alembic_ini (plus alembic_section for "
                          "a section of a multi-section ini), or ops.migrations.script_location "
                          "for a folder without an ini")


def _nested_revision_folders(graph: ScriptGraph) -> list[str]:
    """``postgresql/ (116)``-style names of version-folder subfolders that hold revisions."""
    found = []
    for folder in graph.version_dirs:
        if folder.is_dir():
            for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
                count = sum(1 for f in sub.glob("*.py") if f.name != "__init__.py")
                if count:
                    found.append(f"{sub.name}/ ({count})")
    return found


def _repo_path(repo: git.Repo, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(Path(repo.working_tree_dir or "").resolve()).as_posix()
    except ValueError:
        return None


def check_committed(ctx: CheckContext, graph: ScriptGraph) -> Iterator[Finding]:
    repo = ctx.repo
    if repo is None:
        yield skipped("migrations.committed", "no git repository")
        return
    folders = [p for p in (_repo_path(repo, d) for d in graph.version_dirs) if p is not None]
    if not folders:
        yield skipped("migrations.committed", "the versions folder lies outside the repository")
        return
    at_head: set[str] = set()
    for folder in folders:
        at_head |= tree_paths(repo, "HEAD", folder) or set()
    changed = {path: code for code, path in worktree_changes(repo, folders)
               if path.endswith(".py")}
    problems: list[str] = []
    for rev in sorted(graph.revisions.values(), key=lambda r: str(r.path)):
        path = _repo_path(repo, rev.path)
        if path is None:
            continue
        if path in changed:
            state = "untracked" if changed.pop(path) == "??" else "modified"
            problems.append(f"{path} ({state})")
        elif path not in at_head:
            problems.append(f"{path} (not committed)")
    problems += [f"{path} ({'untracked' if code == '??' else 'changed'})"
                 for path, code in sorted(changed.items())]
    if problems:
        yield failed("migrations.committed",
                     f"{len(problems)} migration file(s) differ from the commit: "
                     f"{_listed(problems)}",
                     hint="commit them (the release must contain the migrations it runs)",
                     detail={"files": problems})
    else:
        yield passed("migrations.committed",
                     f"all {len(graph.revisions)} revision file(s) are committed and unmodified")


def check_single_head(graph: ScriptGraph) -> Finding:
    if not graph.sound:
        return skipped("migrations.single_head", "the revision chain is broken (migrations.chain)")
    if len(graph.heads) > 1:
        return failed("migrations.single_head",
                      f"{len(graph.heads)} heads: {', '.join(graph.heads)} — "
                      "`alembic upgrade head` would refuse to run",
                      hint="join them with `alembic merge -m \"merge heads\" heads` and commit")
    if not graph.heads:
        return passed("migrations.single_head", "no revisions, no heads")
    return passed("migrations.single_head", f"single head {graph.heads[0]}")


def check_chain(ctx: CheckContext, graph: ScriptGraph) -> Iterator[Finding]:
    for revision in sorted(set(graph.duplicates)):
        yield failed("migrations.chain",
                     f"revision id {revision} is defined by more than one file",
                     hint="give each revision file its own `revision = \"...\"` id")
    for revision, down in graph.missing:
        path = ctx.shown(graph.revisions[revision].path)
        yield failed("migrations.chain",
                     f"{path}: down_revision {down!r} of revision {revision} does not exist",
                     hint=f"point down_revision at an existing revision (`alembic history`) "
                          f"or restore the file defining {down}")
    if graph.cycle:
        files = [ctx.shown(graph.revisions[r].path) for r in graph.cycle if r in graph.revisions]
        yield failed("migrations.chain",
                     f"revision cycle among {_listed(list(graph.cycle))} ({_listed(files)})",
                     hint="follow down_revision from each file: one must lead back to the base")
    for error in graph.errors:
        yield failed("migrations.chain", f"Alembic refuses the revision graph: {error}",
                     hint="`alembic history` shows the same error; fix the named revision")
    if graph.sound:
        length = max((chain_length(graph, h) for h in graph.heads), default=0)
        merges = sum(1 for r in graph.revisions.values() if len(r.down_revisions) > 1)
        extra = f", {merges} merge(s)" if merges else ""
        yield passed("migrations.chain",
                     f"every down_revision resolves: base → {_listed(list(graph.heads)) or '-'} "
                     f"({length} revision(s){extra}, no cycles)")


@dataclass(frozen=True)
class NewRevisions:
    """The revisions a release adds, or why that cannot be known."""

    revisions: list[RevisionFile]
    since: str | None
    #: set when the history needed to compare is missing (a shallow clone): the reason
    unknown: str | None = None

    @property
    def scope(self) -> str:
        if self.since:
            return f"{len(self.revisions)} new revision(s) since {self.since}"
        return f"{len(self.revisions)} revision(s) (first release: all are new)"


def new_revisions(ctx: CheckContext, graph: ScriptGraph) -> NewRevisions:
    """The revisions whose ids the previous release tag's tree did not define.

    Ids, not paths: a folder moved or an ini reconfigured since the tag must not make years of
    shipped migrations "new". A shallow clone without the previous tag cannot answer at all, and
    says so instead of calling everything new.
    """
    revisions = sorted(graph.revisions.values(), key=lambda r: str(r.path))
    repo = ctx.repo
    if repo is None:
        return NewRevisions(revisions, None)
    found = previous_release(repo, ctx.version, ctx.settings.release.ignore_tags)
    previous = found.name if found is not None else None
    if previous is None and is_shallow(repo):
        return NewRevisions([], None, unknown=(
            f"history is shallow: fetch tags to compare (no release tag below "
            f"{ctx.version} is in this clone, so new revisions cannot be told from "
            "released ones)"))
    if previous is None:  # tags that are not versions still mark what shipped
        previous = nearest_tag(repo, "HEAD", exclude=ctx.version.tag)
    if previous is None:
        return NewRevisions(revisions, None)
    sources = python_sources_mentioning(repo, previous, "down_revision")
    if sources is None:
        return NewRevisions([], previous, unknown=(
            f"history is shallow: fetch tags to compare ({previous}'s tree cannot be "
            "read in this clone)"))
    released = revisions_in_texts(sources)
    return NewRevisions([r for r in revisions if r.revision not in released], previous)


def _unknown_skip(finding_id: str, new: NewRevisions) -> Finding | None:
    if new.unknown is None:
        return None
    return skipped(finding_id, "new revisions unknown: the history is shallow "
                               "(migrations.history)")


def check_downgrade(ctx: CheckContext, new: NewRevisions) -> Iterator[Finding]:
    skip = _unknown_skip("migrations.downgrade", new)
    if skip is not None:
        yield skip
        return
    bad = 0
    for rev in new.revisions:
        if rev.downgrade_problem:
            bad += 1
            line, why = rev.downgrade_problem
            yield failed("migrations.downgrade",
                         f"{ctx.shown(rev.path)}:{line}: revision {rev.revision} {why}",
                         hint="write a downgrade() that reverses upgrade(), or raise an error "
                              "saying why it cannot be undone")
    if bad:
        return
    if not new.revisions:
        yield passed("migrations.downgrade", f"no new revisions since {new.since}")
        return
    kinds = Counter(rev.kind for rev in new.revisions)
    described = ", ".join(f"{count} {_KINDS[kind]}" for kind, count in sorted(kinds.items()))
    yield passed("migrations.downgrade",
                 f"{new.scope}: every schema change has a downgrade ({described})",
                 detail={"kinds": {rev.revision: rev.kind for rev in new.revisions}})


_KINDS = {"schema": "schema change(s) with a downgrade",
          "data": "data-only (no downgrade needed)",
          "merge": "merge(s) (nothing to undo)",
          "empty": "empty (nothing to undo)"}


def check_destructive(ctx: CheckContext, new: NewRevisions) -> Iterator[Finding]:
    skip = _unknown_skip("migrations.destructive", new)
    if skip is not None:
        yield skip
        return
    acknowledged = 0
    warnings = 0
    for rev in new.revisions:
        for op in rev.operations:
            if op.acknowledged:
                acknowledged += 1
                continue
            warnings += 1
            yield warned("migrations.destructive",
                         f"{ctx.shown(rev.path)}:{op.line}: revision {rev.revision} "
                         f"{op.detail} ({op.kind})",
                         hint="make it backward compatible (expand, deploy, then contract), or "
                              f"acknowledge it with `# {ALLOW_MARKER}` on that line",
                         detail={"file": ctx.shown(rev.path), "line": op.line,
                                 "operation": op.kind, "revision": rev.revision})
    if not warnings:
        extra = f", {acknowledged} acknowledged" if acknowledged else ""
        yield passed("migrations.destructive",
                     f"no unacknowledged destructive operation in {new.scope}{extra}")


def check_documented(ctx: CheckContext, new: NewRevisions) -> Iterator[Finding]:
    """A team that keeps a schema changelog must mention each new revision in it; without one,
    the revision's own message (``alembic revision -m``) is its documentation."""
    skip = _unknown_skip("migrations.documented", new)
    if skip is not None:
        yield skip
        return
    if not new.revisions:
        yield passed("migrations.documented", f"no new revisions since {new.since} to document")
        return
    configured = ctx.settings.migrations.changelog
    existing = [p for p in configured if ctx.path(p).is_file()]
    if not existing:
        silent = [r for r in new.revisions if not r.message]
        for rev in silent:
            yield warned("migrations.documented",
                         f"revision {rev.revision} ({ctx.shown(rev.path)}) has no message and "
                         f"there is no schema changelog ({', '.join(map(str, configured))})",
                         hint="say what it changes in the revision's docstring (`alembic "
                              f"revision -m`), or keep {configured[0] if configured else 'a'} "
                              "changelog")
        if not silent:
            yield passed("migrations.documented",
                         f"{new.scope} describe themselves (revision messages; no schema "
                         "changelog kept)")
        return
    try:
        text = "\n".join(read_text_safely(ctx.root, ctx.path(p)) for p in existing)
    except OpsError as exc:
        yield warned("migrations.documented", f"schema changelog not read: {exc.message}",
                     hint=exc.hint)
        return
    names = ", ".join(str(p) for p in existing)
    missing = [r for r in new.revisions
               if not re.search(rf"(?<![0-9A-Za-z_]){re.escape(r.revision)}(?![0-9A-Za-z_])",
                                text)]
    for rev in missing:
        yield warned("migrations.documented",
                     f"revision {rev.revision} ({ctx.shown(rev.path)}) is not mentioned in "
                     f"{names}",
                     hint=f"add an entry such as `## {rev.revision} — {rev.message or '...'}` "
                          f"to {existing[0]}")
    if not missing:
        yield passed("migrations.documented", f"{new.scope} are described in {names}")


# --- the live database ---------------------------------------------------------------------------


def _service_url(ctx: CheckContext, key: str) -> tuple[str | None, str]:
    """The URL and where it came from (for messages): configured, or the environment's .env."""

    env = ctx.settings.environment(ctx.env)
    configured = env.database_url if key == "DATABASE_URL" else env.redis_url
    url = service_url(ctx.root, env.env_file, configured, key)
    source = (f"ops.environments.{ctx.env}.{key.lower()}" if configured
              else f"{key} in {env.env_file}")
    return url, source


def key_name(source: str) -> str:
    """``DATABASE_URL in .env`` → ``DATABASE_URL``: the key, for messages that name no value."""
    return source.split(" ", 1)[0]


def _not_probed(ctx: CheckContext, url: str | None, source: str) -> Finding | None:
    """The skip when there is no Postgres database to ask, with the reason."""
    if not url:
        env = ctx.settings.environment(ctx.env)
        return skipped("migrations.db_current",
                       f"no database configured (DATABASE_URL in {env.env_file}, or "
                       f"ops.environments.{ctx.env}.database_url)")
    scheme = url.partition("://")[0].partition("+")[0].lower() if "://" in url else ""
    if scheme and scheme not in {"postgresql", "postgres"}:
        return skipped("migrations.db_current",
                       f"{key_name(source)} is a {scheme} URL: tminus reads alembic_version "
                       "from PostgreSQL only, so the database's revision is not compared")
    return None


def _database_target(ctx: CheckContext) -> tuple[str, str] | Finding:
    """(URL, where it came from), or the skip that says why no database is asked."""
    try:
        url, source = _service_url(ctx, "DATABASE_URL")
    except OpsError as exc:  # a .env that is a FIFO, a link out of the repository, …
        return skipped("migrations.db_current", f"database not probed: {exc.message}",
                       hint=exc.hint)
    skip = _not_probed(ctx, url, source)
    if skip is not None or url is None:
        return skip or skipped("migrations.db_current", "no database configured")
    return url, source


def check_db_current(ctx: CheckContext, graph: ScriptGraph) -> Finding:
    target = _database_target(ctx)
    if isinstance(target, Finding):
        return target
    url, source = target
    shown = describe_url(url)
    try:
        current = probe_alembic_revisions(url, timeout_s=ctx.settings.migrations.db_timeout_s)
    except DatabaseUnavailable as exc:
        return skipped("migrations.db_current", f"{exc.message} ({source})", hint=exc.hint)
    if not graph.sound:
        return skipped("migrations.db_current",
                       f"{shown} is at {', '.join(current or ()) or 'no revision'}, but the "
                       "revision chain is broken (migrations.chain): pending unknown")
    ahead = unknown(graph, current or ())
    if ahead:
        return failed("migrations.db_current",
                      f"{shown} is at revision {', '.join(ahead)}, which this release does not "
                      "know: the database is ahead of the code",
                      hint="deploy the release that added it, or downgrade the database first",
                      detail={"current": list(current or ())})
    todo = pending(graph, current or ())
    where = f"at {', '.join(current)}" if current else "not yet migrated (no alembic_version)"
    if not todo:
        return passed("migrations.db_current", f"{shown} is {where}: up to date with the head",
                      detail={"current": list(current or ()), "pending": []})
    return passed("migrations.db_current",
                  f"{shown} is {where}: {len(todo)} pending migration(s) ({_listed(todo)}) "
                  "to apply on deploy",
                  detail={"current": list(current or ()), "pending": todo})


# --- Redis ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPattern:
    pattern: str
    type: str
    line: int

    def regex(self) -> re.Pattern[str]:
        parts = re.split(r"(\{[^{}]*\}|\*)", self.pattern)
        body = "".join("([^:]+)" if p.startswith("{") else "(.*)" if p == "*" else re.escape(p)
                       for p in parts)
        return re.compile(f"^{body}$")

    def shown(self, key: str) -> str:
        """The key with its variable segments masked: they may be session ids or tokens."""
        match = self.regex().match(key)
        if match is None:
            return key
        pieces, last = [], 0
        for index in range(1, (match.lastindex or 0) + 1):
            start, end = match.span(index)
            pieces += [key[last:start], mask(key[start:end], short_visible=True)]
            last = end
        return "".join([*pieces, key[last:]])


class SchemaError(Exception):
    """redis_schema.yaml does not say what it should; the message names the line."""


def parse_redis_schema(text: str, name: str) -> list[KeyPattern]:
    """``keys:`` patterns with their types and line numbers, read with PyYAML's composer."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SchemaError(f"{name}{line}: {problem}") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise SchemaError(f"{name}: nested too deeply to be a key schema") from None
    if root is None:
        raise SchemaError(f"{name}: empty file (expected a `keys:` mapping)")
    if not isinstance(root, yaml.MappingNode):
        raise SchemaError(f"{name}:{root.start_mark.line + 1}: expected a mapping with `keys:`")
    keys_node = next((v for k, v in root.value if k.value == "keys"), None)
    if keys_node is None:
        raise SchemaError(f"{name}: no `keys:` mapping")
    if not isinstance(keys_node, yaml.MappingNode):
        raise SchemaError(f"{name}:{keys_node.start_mark.line + 1}: `keys:` must be a mapping "
                          "of pattern → type")
    patterns: list[KeyPattern] = []
    for key, value in keys_node.value:
        line = key.start_mark.line + 1
        kind = str(value.value).strip().lower() if isinstance(value, yaml.ScalarNode) else ""
        if kind not in REDIS_TYPES:
            raise SchemaError(f"{name}:{line}: pattern {_scalar(key)!r} has type "
                              f"{_scalar(value)!r}; expected one of "
                              f"{', '.join(sorted(REDIS_TYPES))}")
        if not isinstance(key, yaml.ScalarNode):
            raise SchemaError(f"{name}:{line}: a pattern must be a string")
        patterns.append(KeyPattern(str(key.value), kind, line))
    return patterns


def _scalar(node: object) -> str:
    """A node's text for a message: a scalar's value, a bounded marker for anything else."""
    value = getattr(node, "value", None)
    return clipped(value) if isinstance(value, str) else "(not a string)"


def check_redis_schema(ctx: CheckContext) -> Iterator[Finding]:
    relative = ctx.settings.migrations.redis_schema
    path = ctx.path(relative)
    if not path.exists() and not path.is_symlink():
        yield skipped("migrations.redis_schema",
                      f"no {relative}: the service declares no Redis key schema",
                      hint="describe the keys the service owns as `keys: {\"session:{id}\": "
                           "hash}` to have them checked")
        return
    try:
        patterns = parse_redis_schema(read_text_safely(ctx.root, path), str(relative))
    except (SchemaError, OpsError) as exc:
        yield failed("migrations.redis_schema",
                     exc.message if isinstance(exc, OpsError) else str(exc),
                     hint="fix the file: `keys:` then one `\"pattern\": type` per line")
        return
    repo = ctx.repo
    previous = previous_release(repo, ctx.version, ctx.settings.release.ignore_tags) \
        if repo is not None else None
    if repo is None or previous is None:
        yield passed("migrations.redis_schema",
                     f"{relative}: {len(patterns)} key pattern(s); no previous release to "
                     "compare with")
    else:
        repo_path = _repo_path(repo, path) or str(relative)
        old_text = file_at(repo, previous.name, repo_path)
        yield from _compare(relative, patterns, old_text, previous.name)
    yield from _sample_live(ctx, relative, patterns)


def _compare(relative: Path, patterns: list[KeyPattern], old_text: str | None,
             since: str) -> Iterator[Finding]:
    if old_text is None:
        yield passed("migrations.redis_schema",
                     f"{relative}: {len(patterns)} key pattern(s), new since {since}")
        return
    try:
        old = {p.pattern: p for p in parse_redis_schema(old_text, f"{relative}@{since}")}
    except SchemaError as exc:
        yield warned("migrations.redis_schema", f"cannot compare with {since}: {exc}")
        return
    new = {p.pattern: p for p in patterns}
    breaking = 0
    for name, before in old.items():
        after = new.get(name)
        if after is None:
            breaking += 1
            yield failed("migrations.redis_schema",
                         f"{relative}: pattern {name!r} ({before.type}, line {before.line} at "
                         f"{since}) was removed — the running release still writes it",
                         hint="keep the pattern until no release uses it, or migrate the keys "
                              "and say so in the release notes")
        elif after.type != before.type:
            breaking += 1
            yield failed("migrations.redis_schema",
                         f"{relative}:{after.line}: pattern {name!r} changed type "
                         f"{before.type} → {after.type} since {since}: existing keys would "
                         "fail with WRONGTYPE",
                         hint="use a new key pattern for the new type, or migrate the keys")
    added = [n for n in new if n not in old]
    if not breaking:
        extra = f", added {_listed(added)}" if added else ""
        yield passed("migrations.redis_schema",
                     f"{relative}: no pattern removed or retyped since {since}{extra}")


def _sample_live(ctx: CheckContext, relative: Path,
                 patterns: list[KeyPattern]) -> Iterator[Finding]:
    try:
        url, source = _service_url(ctx, "REDIS_URL")
    except OpsError as exc:
        yield skipped("migrations.redis_schema", f"live keys not sampled: {exc.message}",
                      hint=exc.hint)
        return
    if not url:
        yield skipped("migrations.redis_schema",
                      f"no REDIS_URL configured: live keys not sampled against {relative}")
        return
    limit = ctx.settings.migrations.redis_sample
    try:
        sample = sample_key_types(url, limit=limit,
                                    timeout_s=ctx.settings.migrations.db_timeout_s)
    except DatabaseUnavailable as exc:
        yield skipped("migrations.redis_schema",
                      f"live keys not sampled: {exc.message} ({source})", hint=exc.hint)
        return
    compiled = [(p, p.regex()) for p in patterns]
    matched = 0
    wrong: list[str] = []
    for key, kind in sorted(sample.types.items()):
        pattern = next((p for p, rx in compiled if rx.match(key)), None)
        if pattern is None:
            continue
        matched += 1
        if kind != pattern.type:
            wrong.append(f"{pattern.shown(key)} is a {kind}, {relative}:{pattern.line} says "
                         f"{pattern.pattern!r} is a {pattern.type}")
    where = describe_url(url)
    scope = f"{len(sample.types)} key(s) sampled" + (f" (first {limit})" if sample.truncated
                                                     else "")
    if wrong:
        yield failed("migrations.redis_schema",
                     f"{where}: {len(wrong)} key(s) disagree with {relative}: {_listed(wrong)}",
                     hint="fix the schema file, or migrate/delete the stray keys",
                     detail={"mismatches": len(wrong), "sampled": len(sample.types)})
    elif not sample.types:
        yield passed("migrations.redis_schema", f"{where}: no keys yet, nothing to compare")
    else:
        yield passed("migrations.redis_schema",
                     f"{where}: {scope}, {matched} match a pattern, all with the declared type")
