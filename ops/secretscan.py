"""The hardcoded-secret scan: detect-secrets' own plugins and engine, fast enough for predeploy.

Why not just call ``detect-secrets scan``: it runs ~27 plugins and a dozen filters through Python
for every line of every file, and tries to parse every file as an INI file first; on a tree of a
few thousand files that takes minutes. The findings must still be exactly detect-secrets', so this
module never decides that something *is* a secret. It only proves cheaply that a file *cannot*
yield one, and hands every other file to ``detect_secrets.core.scan.scan_file`` unchanged:

1. A file whose contents (sha256) and path were scanned before under the same engine settings
   reuses the cached result (``<cache_dir>/secrets.json``).
2. A file that may be rewritten by one of detect-secrets' transformers (YAML, INI-shaped files)
   always gets the full scan, since the transformed lines are not the file's lines.
3. Otherwise every plugin's own pattern is searched once over the whole file (MULTILINE, lines
   right-stripped as detect-secrets strips them). A plugin can only report a line its pattern
   matches, so when nothing matches the file is clean. High-entropy plugins also apply their own
   entropy limit here, or every quoted word would send a file to the full scan.

Files are scanned in parallel processes. Only git-tracked files are read; vendored and excluded
files are skipped, and so is any file larger than ``max_file_bytes`` (its size comes from
``stat``; model weights are never opened) or binary by git's own rule (a NUL byte in its first
8 KiB, the only part read to tell). A finding carries file, line and the kind of secret; the
value is never kept (only detect-secrets' SHA-1 of it, to honour a baseline, which is what a
``.secrets.baseline`` stores).

What is *not* a secret is taught to detect-secrets the way it is meant to be taught: as filters
in its settings (``filters_used``), which its own ``scan_file`` and this module's line scan both
apply. They drop a finding only when it sits in a field whose value is known to be an id or a
digest, never a whole file, and never a finding of a plugin that looks for a credential's own
format (AWS keys, private keys, tokens: detect-secrets' ``RegexBasedDetector``s, which its
``is_likely_id_string`` filter spares the same way):

* Alembic revision ids: ``revision``, ``down_revision``, ``branch_labels``, ``depends_on`` and
  the docstring's ``Revision ID:`` / ``Revises:`` lines of a revision file (a module that
  assigns both ``revision`` and ``down_revision``, read with ``ast``, never imported);
* lockfile integrity fields (package-lock.json, pnpm-lock.yaml, yarn.lock, poetry.lock,
  uv.lock, Pipfile.lock, go.sum); detect-secrets would skip those files whole, so they are
  scanned here and only their known hash fields are left out;
* sha256 digests labelled as such anywhere (``name@sha256:<hex>``, ``sha256:<hex>``,
  ``"sha256": "<hex>"``), and the digests and commit ids of tminus's own release files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import json
import locale
import math
import os
import re
import signal
import stat
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from contextlib import chdir, suppress
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property, lru_cache
from importlib import metadata
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.atomic import atomic_write_text, make_ignored_dir
from ops.errors import UsageError
from ops.runtime.alembic_scripts import revision_id_lines
from ops.runtime.git import tracked_files

if TYPE_CHECKING:
    from detect_secrets.util.code_snippet import CodeSnippet

#: Bumped whenever the gate's logic changes, so stale cache entries are never trusted.
ENGINE_VERSION = "4"
CACHE_FILE = "secrets.json"
#: Below this many files to scan, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 64
#: What git reads to call a file binary (a NUL byte in it): the only part of a binary file read.
BINARY_SNIFF = 8192
#: Larger tracked files are not read at all (model weights, dumps); ops.secrets.max_file_bytes.
MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class SecretHit:
    """One potential secret: where and what kind. ``hashed`` is detect-secrets' SHA-1 of it."""

    path: str
    line: int
    kind: str
    hashed: str = field(repr=False)


@dataclass(frozen=True)
class ScanOptions:
    use_cache: bool = True
    cache_dir: Path = Path(".tminus/cache")
    baseline: Path | None = Path(".secrets.baseline")
    exclude: tuple[str, ...] = ("vendor/*", "node_modules/*", "*.min.js")
    workers: int | None = None
    max_file_bytes: int = MAX_FILE_BYTES


@dataclass
class ScanResult:
    findings: list[SecretHit] = field(default_factory=list)
    files: int = 0
    scanned: int = 0
    cached: int = 0
    binary: int = 0
    large: int = 0  # over max_file_bytes: never opened
    excluded: int = 0
    baselined: int = 0
    baseline_used: bool = False


# --- the engine ----------------------------------------------------------------------------------


def scan_repository(root: Path, options: ScanOptions | None = None) -> ScanResult:
    """Scan every git-tracked text file under ``root``; raise UsageError for a broken baseline."""
    options = options or ScanOptions()
    root = root.resolve()
    baseline_path = _resolve(root, options.baseline)
    baseline = load_baseline(baseline_path) if baseline_path and baseline_path.is_file() else None
    cache_path = root / options.cache_dir / CACHE_FILE if not options.cache_dir.is_absolute() \
        else options.cache_dir / CACHE_FILE

    result = ScanResult(baseline_used=baseline is not None)
    wanted = _candidates(root, options, baseline_path, result)
    result.files = len(wanted)

    fingerprint = _fingerprint(baseline)
    cache = _read_cache(cache_path, fingerprint) if options.use_cache else {}
    hits: dict[str, list[SecretHit]] = {}
    misses: list[str] = []
    for rel, digest in wanted:
        cached = _cached_hits(cache.get(rel), rel, digest)
        if cached is not None:
            hits[rel] = cached
            result.cached += 1
        else:
            misses.append(rel)
    if misses:
        hits.update(_scan_files(root, misses, baseline, options.workers))
    result.scanned = len(misses)

    if misses or len(cache) != len(wanted):
        digests = dict(wanted)
        _write_cache(cache_path, fingerprint, {
            rel: {"sha256": digests[rel], "hits": [[h.line, h.kind, h.hashed] for h in found]}
            for rel, found in hits.items()})

    accepted = _baseline_entries(baseline)
    for rel in sorted(hits):
        for hit in sorted(hits[rel], key=lambda h: (h.line, h.kind)):
            if (hit.path, hit.kind, hit.hashed) in accepted:
                result.baselined += 1
            else:
                result.findings.append(hit)
    return result


def _candidates(root: Path, options: ScanOptions, baseline_path: Path | None,
                result: ScanResult) -> list[tuple[str, str]]:
    """(relative path, content sha256) of each tracked text file that is not excluded."""

    skip_dir = _inside(root, _resolve(root, options.cache_dir))
    wanted: list[tuple[str, str]] = []
    for rel in tracked_files(root):
        if _excluded(rel, options.exclude) or (skip_dir and rel.startswith(skip_dir)) or (
                baseline_path is not None and root / rel == baseline_path):
            result.excluded += 1
            continue
        digest = _text_digest(root / rel, options.max_file_bytes)
        if digest is _Skip.BINARY:
            result.binary += 1
        elif digest is _Skip.LARGE:
            result.large += 1
        elif isinstance(digest, str):
            wanted.append((rel, digest))
    return wanted


class _Skip(Enum):
    BINARY = "binary"
    LARGE = "large"


def _text_digest(path: Path, limit: int) -> str | _Skip | None:
    """The SHA-256 of a regular text file of at most ``limit`` bytes; None when it is not a
    regular file or cannot be read.

    The size comes from ``stat``, so a multi-GiB checkpoint costs one system call; only the
    first 8 KiB of a file are read to tell binary from text, as git does; and never more than
    ``limit`` + 1 bytes are held, even of a file that grows while it is read.
    """
    try:
        info = path.lstat()  # a symlink is skipped; its target, if tracked, is scanned itself
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > limit:
            return _Skip.LARGE
        with path.open("rb") as handle:
            head = handle.read(BINARY_SNIFF)
            if b"\0" in head:
                return _Skip.BINARY
            rest = handle.read(limit - len(head) + 1)
    except OSError:
        return None
    if len(head) + len(rest) > limit:
        return _Skip.LARGE
    return hashlib.sha256(head + rest).hexdigest()


def load_baseline(path: Path) -> dict[str, Any]:
    """A detect-secrets baseline as data; a broken one is a usage error naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path.name} is not a readable detect-secrets baseline ({exc})",
                         hint="regenerate it with `detect-secrets scan > .secrets.baseline`") \
            from None
    if not isinstance(data, dict) or not isinstance(data.get("results", {}), dict):
        raise UsageError(f"{path.name} is not a detect-secrets baseline (no results mapping)",
                         hint="regenerate it with `detect-secrets scan > .secrets.baseline`")
    return data


def _baseline_entries(baseline: dict[str, Any] | None) -> set[tuple[str, str, str]]:
    if not baseline:
        return set()
    return {(name, str(item.get("type")), str(item.get("hashed_secret")))
            for name, items in baseline.get("results", {}).items()
            for item in items if isinstance(item, dict)}


def _scan_files(root: Path, files: Sequence[str], baseline: dict[str, Any] | None,
                workers: int | None) -> dict[str, list[SecretHit]]:
    settings = configure_detect_secrets(baseline)
    count = workers or os.cpu_count() or 1
    if count <= 1 or len(files) < PARALLEL_THRESHOLD:
        _init_worker(settings, str(root), change_dir=False)
        with chdir(root):
            return dict(zip(files, map(_scan_one, files), strict=True))
    import multiprocessing

    _init_worker(settings, str(root), change_dir=False)  # built once, inherited by the forks
    chunk = max(8, len(files) // (count * 8))
    # multiprocessing's Pool, not ProcessPoolExecutor: only it can terminate its workers, and
    # Ctrl-C or SIGTERM must not wait for every queued chunk (a large scan took 10 s to stop).
    pool = multiprocessing.get_context("fork").Pool(count, _start_worker, (settings, str(root)))
    try:
        found = dict(zip(files, pool.map(_scan_one, files, chunksize=chunk), strict=True))
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()
    return found


def configure_detect_secrets(baseline: dict[str, Any] | None) -> dict[str, Any]:
    """Configure detect-secrets exactly as ``detect-secrets scan --no-verify [--baseline]`` would.

    No verification: tminus never sends a candidate secret to a third-party API.
    """
    from detect_secrets.core import baseline as ds_baseline
    from detect_secrets.core.usage import ParserBuilder
    from detect_secrets.settings import get_settings

    ParserBuilder().add_console_use_arguments().parse_args(["scan", "--no-verify"])
    if baseline is not None:
        try:
            ds_baseline.load(dict(baseline))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"the detect-secrets baseline has settings detect-secrets cannot "
                             f"load ({type(exc).__name__}: {exc})",
                             hint="regenerate it with `detect-secrets scan > .secrets.baseline`"
                             ) from None
        get_settings().disable_filters(
            "detect_secrets.filters.common.is_ignored_due_to_verification_policies")
    install_not_secret_filters()
    settings: dict[str, Any] = get_settings().json()
    return settings


def install_not_secret_filters() -> None:
    """Add tminus's filters of known non-secrets to detect-secrets' current settings.

    detect-secrets skips lockfiles whole (by name, and ``.lock``/``.sum`` by extension); those
    two filters are swapped for ones that spare the lockfiles tminus reads field by field, so a
    key pasted into one is still found. Where a baseline switched a filter off, it stays off.
    Idempotent: it runs again after every ``configure_settings_from_baseline``, which puts
    detect-secrets' default filters back.
    """
    from detect_secrets.settings import get_filters, get_settings

    filters = get_settings().filters
    for theirs, ours in _REPLACED_FILTERS.items():
        if filters.pop(theirs, None) is not None:
            filters[ours] = {}
    for path in _NOT_SECRET_FILTERS:
        filters[path] = {}
    get_filters.cache_clear()


# --- per file (runs in worker processes) --------------------------------------------------------

_gate: _Gate | None = None
_gate_settings: dict[str, Any] | None = None


def _start_worker(settings: dict[str, Any], root: str) -> None:
    """A forked worker leaves Ctrl-C to its parent and dies quietly when the parent ends the
    pool: the handlers it inherited would print a KeyboardInterrupt traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _init_worker(settings, root)


def _init_worker(settings: dict[str, Any], root: str, *, change_dir: bool = True) -> None:
    from detect_secrets.settings import cache_bust, configure_settings_from_baseline

    global _gate, _gate_settings  # one gate per process, built once per settings
    if _gate is None or _gate_settings != settings:  # a forked worker inherits the parent's
        cache_bust()
        configure_settings_from_baseline(settings)
        install_not_secret_filters()
        _gate, _gate_settings = _Gate(), settings
    if change_dir:
        os.chdir(root)


def _scan_one(rel: str) -> list[SecretHit]:
    """detect-secrets' findings for one file (relative to the worker's cwd, as the CLI names it)."""
    from detect_secrets.core.scan import scan_file

    assert _gate is not None  # noqa: S101 - set by _init_worker
    verdict = _gate.candidates(rel)
    found: Iterable[Any]
    if verdict is None:
        found = scan_file(rel)
    else:
        content, lines = verdict
        found = _scan_lines(rel, content, lines) if lines else iter(())
    # detect-secrets keeps a set keyed on (file, type, secret): a secret repeated further down
    # the file is reported once, on the first line it was seen
    first: dict[tuple[str, str], SecretHit] = {}
    for secret in found:
        hit = SecretHit(rel, int(secret.line_number), str(secret.type), str(secret.secret_hash))
        first.setdefault((hit.kind, hit.hashed), hit)
    return sorted(first.values(), key=lambda h: (h.line, h.kind))


def _scan_lines(rel: str, content: str, numbers: set[int]) -> Iterator[Any]:
    """``detect_secrets.core.scan.scan_file`` for a file no transformer rewrites, visiting only
    the lines some plugin pattern matched: every other line yields nothing from any plugin, so
    the result is the same. Filters still see the whole file as context, as they would."""
    from detect_secrets.core import scan
    from detect_secrets.settings import get_plugins
    from detect_secrets.util.code_snippet import get_code_snippet

    if scan._is_filtered_out(required_filter_parameters=["filename"], filename=rel):
        return
    raw = [part + "\n" for part in content.split("\n")]
    raw[-1] = raw[-1][:-1]
    if not raw[-1]:
        raw.pop()  # what readlines() gives: no empty piece after a final newline
    for number in sorted(n for n in numbers if n <= len(raw)):
        line = raw[number - 1].rstrip()
        context = get_code_snippet(lines=raw, line_number=number)
        if scan._is_filtered_out(required_filter_parameters=["line"], filename=rel, line=line,
                                 context=context):
            continue
        for plugin in get_plugins():
            for secret in scan._scan_line(plugin=plugin, filename=rel, line=line,
                                          line_number=number, context=context):
                if not scan._is_filtered_out(required_filter_parameters=["context"],
                                             filename=secret.filename,
                                             secret=secret.secret_value, plugin=plugin,
                                             line=line, context=context):
                    yield secret


class _Gate:
    """Proves a file clean with each plugin's own patterns, or sends it to the full scan."""

    def __init__(self) -> None:
        from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
        from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
        from detect_secrets.plugins.keyword import (
            QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
            REGEX_BY_FILETYPE,
            KeywordDetector,
        )
        from detect_secrets.settings import get_plugins

        self.patterns: list[_Probe] = []
        self.entropy: list[Any] = []
        self.keyword = False
        self.opaque = False  # a plugin whose logic we cannot see through: always full scan
        for plugin in get_plugins():
            kind = type(plugin)
            if isinstance(plugin, HighEntropyStringsPlugin) and \
                    kind.analyze_line is HighEntropyStringsPlugin.analyze_line and \
                    kind.analyze_string is HighEntropyStringsPlugin.analyze_string:
                self.entropy.append(plugin)
            elif kind is KeywordDetector:
                self.keyword = True
            elif isinstance(plugin, RegexBasedDetector) and \
                    kind.analyze_line is BasePlugin.analyze_line:
                self.patterns.extend(_Probe(p) for p in plugin.denylist)
            else:
                self.opaque = True
        self.keyword_default = [_Probe(p) for p in QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP]
        self.keyword_by_type = {kind: [_Probe(p) for p in table]
                                for kind, table in REGEX_BY_FILETYPE.items()}
        self.encoding = locale.getpreferredencoding(False)

    def candidates(self, rel: str) -> tuple[str, set[int]] | None:
        """None when only detect-secrets' full scan can tell; else the file's text and the
        (1-based) lines where some plugin's pattern matches, often none."""
        from detect_secrets.util.filetype import FileType, determine_file_type

        if self.opaque:
            return None
        try:
            with open(rel, encoding=self.encoding) as handle:  # noqa: PTH123 - as detect-secrets
                content = handle.read()
        except UnicodeDecodeError:
            return "", set()  # detect-secrets ignores undecodable files too
        except OSError:
            return None  # let detect-secrets report it the way it does
        lines = [line.rstrip() for line in content.split("\n")]
        filetype = determine_file_type(rel)
        if filetype is FileType.YAML or _may_parse_as_ini(lines) or (
                filetype is FileType.OTHER and not _headerless_ini_fails(lines)):
            return None
        text = _Text(lines)
        keyword = self.keyword_by_type.get(filetype, self.keyword_default) if self.keyword else []
        hits: set[int] = set()
        for probe in [*self.patterns, *keyword]:
            hits |= probe.lines(text)
        for plugin in self.entropy:
            hits.update(bisect_right(text.ends, match.start())
                        for match in plugin.regex.finditer(text.joined)
                        if _entropic(plugin, match.group(2)))
        return content, {index + 1 for index in hits}

    def may_hold_secret(self, rel: str) -> bool:
        verdict = self.candidates(rel)
        return verdict is None or bool(verdict[1])


class _Text:
    """A file's lines as detect-secrets sees them (right-stripped), joined and case-folded once."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.joined = "\n".join(lines)
        self._folded: str | None = None

    @property
    def folded(self) -> str:
        if self._folded is None:
            self._folded = _fold(self.joined)
        return self._folded

    @cached_property
    def ends(self) -> list[int]:
        """Offset just past each line in ``joined``, for mapping a match to its line."""
        return list(accumulate(len(line) + 1 for line in self.lines))

    @cached_property
    def folded_ends(self) -> list[int]:
        # casefold never makes or removes a newline, so folded lines stay aligned with ``lines``
        return list(accumulate(len(line) + 1 for line in self.folded.split("\n")))


class _Probe:
    """One plugin pattern, asked of a whole file at once.

    When every match must contain one of a few literals, a substring test over the whole file
    rules most files out in microseconds, and only the lines holding a literal are searched, with
    the original pattern, exactly as detect-secrets searches a line. Otherwise the pattern is
    re-compiled with MULTILINE (``^``/``$`` at line edges, as for one line) and searched once.
    """

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.regex = pattern
        self.multiline = re.compile(pattern.pattern, pattern.flags | re.MULTILINE)
        self.ignore_case = bool(pattern.flags & re.IGNORECASE)
        needed = _required_literals(pattern)
        if needed and self.ignore_case:
            needed = tuple(_fold(t) for t in needed)
        self.needed = None if needed is None else re.compile(
            "|".join(re.escape(t) for t in sorted(set(needed), key=len, reverse=True)))

    def lines(self, text: _Text) -> set[int]:
        """Indexes of the lines this pattern matches, each searched exactly as one line is."""
        if self.needed is None:
            if self.multiline.search(text.joined) is None:
                return set()
            return {n for n, line in enumerate(text.lines) if self.regex.search(line)}
        whole, ends = (text.folded, text.folded_ends) if self.ignore_case else \
            (text.joined, text.ends)
        near = {bisect_right(ends, m.start()) for m in self.needed.finditer(whole)}
        return {n for n in near if self.regex.search(text.lines[n]) is not None}

def _fold(text: str) -> str:
    """Case-fold as ``re.IGNORECASE`` compares: it also lets ``i`` match dotless and dotted I."""
    return text.translate(_DOTTED_I).casefold()


_DOTTED_I = {0x130: "i", 0x131: "i"}


_SRE_PARSER: Any = importlib.import_module("re._parser")  # the stdlib's own regex parser
_SRE: Any = importlib.import_module("re._constants")


def _required_literals(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Strings of which every match of ``pattern`` contains at least one, or None.

    Read from the parsed pattern: a run of literals at the top level, or a group at the top
    level whose alternatives each contain a literal run. The most selective candidate wins.
    """
    try:
        items = list(_SRE_PARSER.parse(pattern.pattern, pattern.flags))
    except (re.error, TypeError, ValueError):
        return None
    candidates: list[tuple[str, ...]] = [(run,) for run in _literal_runs(items)]
    for op, av in items:
        alternatives = _alternatives(op, av)
        if alternatives:
            candidates.append(alternatives)
    candidates = [c for c in candidates if c and all(c)]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (min(len(t) for t in c), -len(c)))


def _literal_runs(items: Sequence[tuple[Any, Any]]) -> list[str]:
    runs: list[str] = []
    current = ""
    for op, av in items:
        if op is _SRE.LITERAL:
            current += chr(av)
            continue
        if current:
            runs.append(current)
        current = ""
    if current:
        runs.append(current)
    return runs


def _alternatives(op: Any, av: Any) -> tuple[str, ...] | None:
    """For a plain group (no flag changes) around alternatives: one required run per branch."""
    if op is _SRE.SUBPATTERN:
        _group, add_flags, del_flags, inner = av
        if add_flags or del_flags or len(inner) != 1:
            runs = _literal_runs(list(inner)) if not (add_flags or del_flags) else []
            return (max(runs, key=len),) if runs else None
        op, av = inner[0]
    if op is not _SRE.BRANCH:
        return None
    found: list[str] = []
    for branch in av[1]:
        runs = _literal_runs(list(branch))
        if not runs:
            return None
        found.append(max(runs, key=len))
    return tuple(found)


def _entropic(plugin: Any, value: str) -> bool:
    """The plugin's own entropy test, skipped when too few distinct characters make it
    impossible (Shannon entropy is at most log2 of the distinct count)."""
    distinct = len(set(value))
    if distinct and math.log2(distinct) < plugin.entropy_limit - 1e-6:
        return False
    return bool(plugin.calculate_shannon_entropy(value) > plugin.entropy_limit)


def _may_parse_as_ini(lines: Iterable[str]) -> bool:
    """detect-secrets' ConfigFileTransformer rewrites a file only when configparser accepts it,
    which needs a ``[section]`` header before any option."""
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        return stripped.startswith("[")
    return False


def _headerless_ini_fails(lines: Iterable[str]) -> bool:
    """True when configparser would certainly reject the file even with a header added (what
    detect-secrets' eager transformer tries on unknown file types): an unindented line that is
    neither comment, section nor ``key = value`` / ``key: value``."""
    for line in lines:
        stripped = line.strip()
        if not stripped or line[0].isspace() or stripped[0] in "#;[":
            continue
        if "=" not in stripped and ":" not in stripped:
            return True
    return False


# --- what is not a secret: detect-secrets filters ----------------------------------------------
#
# detect-secrets calls a filter with the arguments its parameter names ask for (``filename``,
# ``line``, ``secret``, ``plugin``, ``context``) and drops the finding when it returns True. The
# ``line`` is the one a plugin saw: the file's own line, or the one a YAML/INI transformer made
# of it (``integrity: "sha512-..."``, ``key = "value"``), so every field pattern accepts both.

_LOCK_FILE_FILTER = "detect_secrets.filters.heuristic.is_lock_file"
_NON_TEXT_FILTER = "detect_secrets.filters.heuristic.is_non_text_file"
_REPLACED_FILTERS = {_LOCK_FILE_FILTER: f"{__name__}.is_lock_file_not_read_by_field",
                     _NON_TEXT_FILTER: f"{__name__}.is_non_text_file_not_read_by_field"}
_NOT_SECRET_FILTERS = (f"{__name__}.is_alembic_revision_id", f"{__name__}.is_known_digest")

#: ``key: value`` in JSON, YAML and TOML, and as detect-secrets' transformers rewrite a line.
_SEP = r"""["']?\s*[:=]\s*["']?"""
_SRI = r"sha(?:1|256|384|512)-[A-Za-z0-9+/]+={0,2}"  # Subresource Integrity: npm, pnpm, yarn
_GIT_SHA = r"[0-9a-fA-F]{40}"


def _field(key: str, value: str) -> re.Pattern[str]:
    """``key`` (a whole word) then its value, the part that is never a secret, as ``value``."""
    return re.compile(rf"(?<![\w-]){key}{_SEP}(?P<value>{value})(?![\w+/=-])")


#: The fields of each lockfile whose values are digests of published packages or commit ids.
_LOCKFILE_FIELDS: dict[str, tuple[re.Pattern[str], ...]] = {
    # pre-commit pins each hook repository to a public commit: `rev: 3e8a8703...`
    ".pre-commit-config.yaml": (_field("rev", _GIT_SHA),),
    "package-lock.json": (
        _field("integrity", rf"{_SRI}(?:\s+{_SRI})*"),
        re.compile(rf"""(?<![\w-])resolved{_SEP}[^"'#\s]*#(?P<value>{_GIT_SHA}|{_SRI})"""),
    ),
    "pnpm-lock.yaml": (
        _field("integrity", _SRI),  # resolution: {integrity: sha512-...}
        _field("commit", _GIT_SHA),  # resolution: {commit: ..., repo: ..., type: git}
    ),
    "yarn.lock": (
        re.compile(rf"(?<![\w-])integrity(?:\s+|{_SEP})(?P<value>{_SRI})"),  # v1: integrity sha512-
        re.compile(rf'(?<![\w-])resolved\s+"[^"#]*#(?P<value>{_GIT_SHA})"'),  # v1: ...tgz#sha1
        _field("checksum", r"(?:[0-9a-z]+/)?[0-9a-f]{64,128}"),  # berry: checksum: 10c0/<sha512>
        re.compile(rf"#commit=(?P<value>{_GIT_SHA})"),  # berry git dependency
    ),
    "poetry.lock": (
        _field("hash", r"sha256:[0-9a-f]{64}"),  # files = [{file = ..., hash = "sha256:..."}]
        _field("content-hash", r"[0-9a-f]{64}"),
        _field("resolved_reference", _GIT_SHA),  # [package.source] of a git dependency
    ),
    "uv.lock": (
        _field("hash", r"sha256:[0-9a-f]{64}"),
        re.compile(rf"""(?<![\w-])git{_SEP}[^"'#\s]*#(?P<value>{_GIT_SHA})"""),
    ),
    "Pipfile.lock": (
        re.compile(r"""["'](?P<value>sha256:[0-9a-f]{64})["']"""),  # "hashes": ["sha256:..."]
        _field("sha256", r"[0-9a-f]{64}"),  # _meta.hash
        _field("ref", _GIT_SHA),  # a VCS entry's commit
    ),
    "go.sum": (_field("h1", r"[A-Za-z0-9+/]{43}="),),  # module version[/go.mod] h1:<base64>
}
_LOCKFILE_FIELDS["npm-shrinkwrap.json"] = _LOCKFILE_FIELDS["package-lock.json"]
_LOCKFILE_FIELDS["go.work.sum"] = _LOCKFILE_FIELDS["go.sum"]

#: A sha256 digest named as one, in any file: ``name@sha256:<hex>``, an image id
#: ``sha256:<hex>``, ``"sha256": "<hex>"``. Not ``token_sha256 = ...``: that names a secret's hash.
_DIGEST_ANYWHERE = (_field("sha256", r"[0-9a-fA-F]{64}"),)
#: ``<script integrity="sha384-...">`` in page templates: the CDN file's Subresource Integrity.
_TEMPLATE_SUFFIXES = frozenset({".html", ".htm", ".jinja", ".jinja2", ".j2", ".njk", ".hbs",
                                ".vue", ".jsx", ".tsx", ".erb", ".twig", ".php", ".svelte"})
_TEMPLATE_FIELDS = (_field("integrity", _SRI),)

#: tminus's own release files (checkpoints/VERSION_v*.txt, releases/manifest_v*.json and .sha256):
#: every 64-hex value is a checkpoint's or the manifest's sha256, a commit field holds the commit.
_RELEASE_FILES = ("VERSION_v[0-9]*.txt", "manifest_v[0-9]*.json", "manifest_v[0-9]*.sha256")
_RELEASE_FIELDS = (
    re.compile(r"(?<![0-9a-fA-F])(?P<value>[0-9a-fA-F]{64})(?![0-9a-fA-F])"),
    re.compile(rf"(?i)(?<![\w-])commit{_SEP}(?P<value>[0-9a-f]{{7,40}})(?![0-9a-f])"),
)


def is_lock_file_not_read_by_field(filename: str) -> bool:
    """detect-secrets' ``is_lock_file``, except for the lockfiles whose fields tminus knows."""
    from detect_secrets.filters.heuristic import is_lock_file

    return Path(filename).name not in _LOCKFILE_FIELDS and is_lock_file(filename)


def is_non_text_file_not_read_by_field(filename: str) -> bool:
    """detect-secrets' ``is_non_text_file`` (by extension), except for those lockfiles
    (``yarn.lock``, ``poetry.lock``, ``uv.lock``, ``go.sum`` are text whatever their suffix)."""
    from detect_secrets.filters.heuristic import is_non_text_file

    return Path(filename).name not in _LOCKFILE_FIELDS and is_non_text_file(filename)


def is_known_digest(filename: str, line: str, secret: str, plugin: Any) -> bool:
    """True when ``secret`` is the value of a field known to hold a digest or a commit id:
    a lockfile's integrity hashes, a labelled sha256 digest, a release file's digests."""
    from detect_secrets.plugins.base import RegexBasedDetector

    if isinstance(plugin, RegexBasedDetector):
        return False  # a credential's own format (AKIA..., a private key) is never a digest
    name = Path(filename).name
    fields = _LOCKFILE_FIELDS.get(name, ()) + _DIGEST_ANYWHERE
    if Path(name).suffix.lower() in _TEMPLATE_SUFFIXES:
        fields += _TEMPLATE_FIELDS
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in _RELEASE_FILES):
        fields += _RELEASE_FIELDS
    return any(secret in match.group("value")
               for pattern in fields for match in pattern.finditer(line))


def is_alembic_revision_id(filename: str, secret: str, plugin: Any,
                           context: CodeSnippet) -> bool:
    """True when ``secret`` is a revision id on one of the lines of an Alembic revision file
    that name revisions (see :func:`ops.runtime.alembic_scripts.revision_id_lines`)."""
    from detect_secrets.plugins.base import RegexBasedDetector

    if isinstance(plugin, RegexBasedDetector) or not filename.endswith(".py"):
        return False
    path = Path(filename).absolute()  # relative to the scan's root, the worker's cwd
    try:
        info = path.stat()
    except OSError:
        return False
    ids = _revision_ids(path, info.st_mtime_ns, info.st_size, info.st_ino)
    line = context.start_line + context.target_index + 1
    return secret in ids.get(line, ())


@lru_cache(maxsize=256)
def _revision_ids(path: Path, _mtime_ns: int, _size: int,
                  _ino: int) -> dict[int, frozenset[str]]:
    """``revision_id_lines`` of a file, once per version of it (the key is its stat)."""
    try:
        return revision_id_lines(path.read_bytes())
    except OSError:
        return {}


# --- cache ---------------------------------------------------------------------------------------


def _fingerprint(baseline: dict[str, Any] | None) -> str:
    """What a cached result depends on besides the file: engine, detect-secrets, its settings."""
    try:
        version = metadata.version("detect-secrets")
    except metadata.PackageNotFoundError:
        version = "?"
    config = {k: baseline.get(k) for k in ("plugins_used", "filters_used")} if baseline else {}
    blob = json.dumps([ENGINE_VERSION, version, locale.getpreferredencoding(False), config],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cached_hits(entry: Any, rel: str, digest: str) -> list[SecretHit] | None:
    """The cached findings of ``rel`` when its entry is for these contents and well-formed."""
    if not isinstance(entry, dict) or entry.get("sha256") != digest:
        return None
    try:
        return [SecretHit(rel, int(n), str(k), str(h)) for n, k, h in entry["hits"]]
    except (KeyError, TypeError, ValueError):
        return None


def _read_cache(path: Path, fingerprint: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("engine") != fingerprint:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _write_cache(path: Path, fingerprint: str, files: dict[str, Any]) -> None:
    with suppress(OSError):  # a cache that cannot be written only costs time next run
        make_ignored_dir(path.parent)  # the cache directory keeps itself out of git status
        atomic_write_text(path, json.dumps({"engine": fingerprint, "files": files},
                                           separators=(",", ":")), mode=0o600)


# --- helpers -------------------------------------------------------------------------------------


def _resolve(root: Path, path: Path | None) -> Path | None:
    if path is None:
        return None
    return path if path.is_absolute() else root / path


def _inside(root: Path, path: Path | None) -> str:
    """``path`` as a relative prefix ("dir/") when it lies inside ``root``, else ""."""
    if path is None:
        return ""
    try:
        return path.resolve().relative_to(root).as_posix().rstrip("/") + "/"
    except ValueError:
        return ""


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in patterns)
