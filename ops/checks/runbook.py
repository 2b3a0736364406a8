"""Runbook Review: the operations runbook exists, covers what an on-call engineer needs at 3 a.m.,
is kept current, links to things that exist, and names real people to call.

The Markdown is read with markdown-it-py's tokens, so a heading is a heading (not a ``#`` inside
a code block) and a link is a link; GitHub's slug rules give the anchors.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ops.bounded import SENTENCE_CHARS, listed
from ops.checks import CheckContext
from ops.redact import HIDDEN, is_secret_name, mask_urls_in
from ops.report import Finding, failed, passed, skipped, warned
from ops.runtime.files import MAX_DOC_BYTES, UnsafeFile, read_text_safely
from ops.runtime.git import last_commit_date
from ops.runtime.http import check_links as check_urls
from ops.runtime.images import compose_services
from ops.runtime.prometheus import ToolResult, promtool, promtool_check

if TYPE_CHECKING:
    from markdown_it.token import Token

REQUIRED_SECTIONS = ("health", "rollback", "scaling", "monitoring")
CONTENT_TOKENS = {"paragraph_open", "bullet_list_open", "ordered_list_open", "fence",
                  "code_block", "table_open", "blockquote_open", "html_block"}
CONTACT_PLACEHOLDER = re.compile(
    r"\[[^\]]+\]|<[^>]+>|\b(?:TBD|TBA|TODO|XXX+|FIXME|N/A)\b|\?\?\?|\bname here\b",
    re.IGNORECASE)
MAX_LISTED = 8


@dataclass
class Heading:
    level: int
    text: str
    line: int
    start: int  # token index of heading_open
    end: int = 0  # token index where the section ends (next heading of same or higher level)
    slug: str = ""


@dataclass
class Link:
    target: str
    line: int


@dataclass
class Document:
    """One parsed Markdown file: its tokens, headings (with GitHub slugs) and links."""

    tokens: list[Token]
    headings: list[Heading] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    @cached_property
    def slugs(self) -> frozenset[str]:
        """Every heading's anchor, computed once: each anchor link looks one up."""
        return frozenset(h.slug for h in self.headings)

    def has_content(self, heading: Heading) -> bool:
        """Whether anything but headings and empty paragraphs is under ``heading``; stops at the
        first such token (a range, not a slice: no copy of a long section)."""
        tokens = self.tokens
        return any(tokens[i].type in CONTENT_TOKENS and (tokens[i].type != "paragraph_open" or
                                                         _inline_text(tokens, i).strip())
                   for i in range(heading.start, heading.end))

    def section_text(self, heading: Heading) -> list[tuple[int, str]]:
        """(line, text) of every inline run under ``heading``, table cells included."""
        out = []
        for token in self.tokens[heading.start + 3:heading.end]:
            if token.type == "inline" and token.children is not None:
                line = token.map[0] + 1 if token.map else heading.line
                text = "".join(c.content for c in token.children
                               if c.type in ("text", "code_inline", "html_inline"))
                out.append((line, text))
        return out


def parse_markdown(text: str) -> Document:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark", {"html": False}).enable("table").parse(text)
    doc = Document(tokens)
    used: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            title = _plain_text(tokens[index + 1])
            line = token.map[0] + 1 if token.map else 0
            doc.headings.append(Heading(int(token.tag[1:]), title, line, index,
                                        slug=_unique(github_slug(title), used)))
        elif token.type == "inline" and token.children:
            line = token.map[0] + 1 if token.map else 0
            for child in token.children:
                target = child.attrGet("href") if child.type == "link_open" else \
                    child.attrGet("src") if child.type == "image" else None
                if isinstance(target, str) and target:
                    doc.links.append(Link(target, line))
    _close_sections(doc.headings, len(tokens))
    return doc


def _close_sections(headings: list[Heading], end: int) -> None:
    """Set where each heading's section ends: at the next heading of the same or a higher level.

    One pass with a stack of the headings still open, so a runbook of 300 000 headings costs
    300 000 steps (searching the later headings for each one cost 300 000² / 2).
    """
    open_sections: list[Heading] = []
    for heading in headings:
        while open_sections and open_sections[-1].level >= heading.level:
            open_sections.pop().end = heading.start
        open_sections.append(heading)
    for heading in open_sections:
        heading.end = end


def github_slug(text: str) -> str:
    """GitHub's anchor for a heading: lower-case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in text.lower()
                   if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def _unique(slug: str, used: dict[str, int]) -> str:
    """GitHub suffixes repeated slugs: ``setup``, ``setup-1``, ``setup-2``."""
    count = used.get(slug)
    used[slug] = 0 if count is None else count + 1
    return slug if count is None else f"{slug}-{count + 1}"


def _plain_text(inline: Token) -> str:
    return "".join(c.content for c in (inline.children or [])
                   if c.type in ("text", "code_inline"))


def _inline_text(tokens: Sequence[Token], index: int) -> str:
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    return following.content if following is not None and following.type == "inline" else ""


# --- the checklist -------------------------------------------------------------------------------


def run(ctx: CheckContext) -> Iterator[Finding]:
    conf = ctx.settings.runbook
    path = ctx.path(conf.path)
    name = ctx.shown(path)
    doc, problem = _load(ctx.root, path)
    if doc is None:
        yield failed("runbook.exists", f"{name} {problem}",
                     hint="write a runbook with health checks, rollback, scaling, monitoring and "
                          "emergency contacts")
        for section in REQUIRED_SECTIONS:
            yield skipped(f"runbook.section.{section}", f"no readable runbook ({name})")
        yield from check_fresh(ctx, path)
        for check_id in ("runbook.links", "runbook.contacts"):
            yield skipped(check_id, f"no readable runbook ({name})")
        yield from check_prometheus(ctx)
        return
    yield passed("runbook.exists", f"{name} ({len(doc.headings)} headings)")
    for section in REQUIRED_SECTIONS:
        yield check_section(doc, section, conf.sections.get(section, [section]), name)
    yield from check_fresh(ctx, path)
    yield from check_links(ctx, doc, path)
    yield check_contacts(doc, conf.sections.get("contacts", ["contacts"]), name)
    yield from check_prometheus(ctx)


#: Where a project keeps its Prometheus config when none is configured.
PROMETHEUS_CONFIGS = (Path("prometheus/prometheus.yml"), Path("prometheus.yml"))


def check_prometheus(ctx: CheckContext) -> Iterator[Finding]:
    """``promtool check config`` and ``promtool check rules``: a broken alert rule fails T-1.
    promtool is the system's (Debian's ``prometheus`` package), never a binary of the project."""
    configured = ctx.settings.runbook.prometheus_config
    candidates = [configured] if configured else list(PROMETHEUS_CONFIGS)
    config = next((ctx.path(c) for c in candidates if ctx.path(c).is_file()), None)
    if config is None:
        why = (f"{configured} does not exist" if configured
               else "no prometheus/prometheus.yml or prometheus.yml in the project")
        hint = None if configured else ("a Prometheus config elsewhere (monitoring/prometheus."
                                        "yaml): name it in ops.runbook.prometheus_config")
        yield skipped("runbook.prometheus_config", why, hint=hint)
        yield skipped("runbook.alert_rules", why)
        return
    tool = promtool()
    if tool is None:
        why = "promtool is not installed (Debian: apt-get install prometheus)"
        yield skipped("runbook.prometheus_config", why)
        yield skipped("runbook.alert_rules", why)
        return
    shown = ctx.shown(config)
    rules, problem, unmapped = rule_files(ctx, config)
    yield check_config(ctx, tool, config, unmapped)
    if problem:
        yield failed("runbook.alert_rules", problem)
        return
    not_here = (f"{listed(unmapped)}: path(s) inside the Prometheus container that no bind "
                f"mount of the compose file maps into the project") if unmapped else ""
    if not rules:
        if unmapped:
            yield skipped("runbook.alert_rules", f"not checked: {not_here}",
                          hint="mount the rules from the project in the compose file "
                               "(`./prometheus:/etc/prometheus`), or list them relative to "
                               f"{shown}")
        else:
            yield skipped("runbook.alert_rules", f"{shown} lists no rule_files")
        return
    names = listed(ctx.shown(r) for r in rules)
    outputs = [ToolResult(o.ok, mask_urls_in(o.output))  # a runbook_url may carry a token
               for o in (promtool_check(tool, "rules", r) for r in rules)]
    bad = [o for o in outputs if not o.ok]
    if bad:
        yield failed("runbook.alert_rules", "promtool check rules failed: "
                     + _first_problem(bad[0].output), detail={"output": bad[0].output[-2000:]})
    else:
        count = sum(int(m) for o in outputs for m in re.findall(r"SUCCESS: (\d+) rules", o.output))
        note = f" (not checked: {not_here})" if unmapped else ""
        yield passed("runbook.alert_rules",
                     f"promtool check rules: {count} rule(s) in {names}{note}")


def check_config(ctx: CheckContext, tool: str, config: Path, unmapped: list[str]) -> Finding:
    """``promtool check config``. A config written for the Prometheus container names its files
    by their paths inside it (``/etc/prometheus/rules/*.yml``), which are not on this host, so
    promtool's file checks would fail a valid config: then only its syntax is checked here (the
    rule files are checked through the compose file's bind mounts by ``runbook.alert_rules``)."""
    shown = ctx.shown(config)
    done = promtool_check(tool, "config", config)
    if done.ok:
        return passed("runbook.prometheus_config", f"promtool check config {shown}: valid")
    try:
        written = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        written = ""
    done = ToolResult(done.ok, fit_to_show(done.output, written))
    # only absolute paths the config itself writes: promtool also quotes the absolute path of a
    # missing relative rule file, which is a real fault
    absent = [p for p in re.findall(r'"(/[^"\n]+)"', done.output)
              if p in written and not Path(p).exists()]
    inside = list(dict.fromkeys(absent + unmapped))
    if inside:
        syntax = promtool_check(tool, "config", config, syntax_only=True)
        if syntax.ok:
            return passed("runbook.prometheus_config",
                          f"promtool check config --syntax-only {shown}: valid (it names "
                          f"{listed(inside)}, not on this host: a path inside the container)")
        done = ToolResult(syntax.ok, fit_to_show(syntax.output, written))
    return failed("runbook.prometheus_config", f"promtool check config {shown} failed: "
                  + _first_problem(done.output), detail={"output": done.output[-2000:]})


def fit_to_show(output: str, config_text: str) -> str:
    """promtool's words with the config's secrets hidden: it quotes the value it could not
    parse, and that can be a ``remote_write`` URL with its password or a mistyped password
    field's value. URLs' credentials are masked, and every value the config holds under a
    secret-looking key (``password``, ``bearer_token``, ``credentials``…) is replaced."""
    import yaml

    text = mask_urls_in(output)
    try:
        data = yaml.safe_load(config_text)
    except yaml.YAMLError:
        data = None
    values: set[str] = set()

    def walk(node: object, secret: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, secret or is_secret_name(str(key)))
        elif isinstance(node, list):
            for item in node:
                walk(item, secret)
        elif secret and node is not None and len(str(node)) >= 4:
            values.add(str(node))

    walk(data, False)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


#: (path inside a container, the project file or folder a bind mount puts there)
Mount = tuple[PurePosixPath, Path]


def bind_mounts(ctx: CheckContext) -> list[Mount]:
    """The compose file's bind mounts of project paths, longest container path first: how a
    Prometheus container sees the project's rule files. Named volumes and paths outside the
    project map nothing; a compose file that cannot be read maps nothing."""
    env = ctx.settings.environments.get(ctx.env)
    found = compose_services(ctx.root, env.compose_file if env else None)
    if found is None:
        return []
    compose, services = found
    root = ctx.root.resolve()
    mounts: list[Mount] = []
    for spec in services.values():
        volumes = spec.get("volumes") if isinstance(spec, dict) else None
        for volume in volumes if isinstance(volumes, list) else []:
            if isinstance(volume, str) and volume.count(":") >= 1:
                source, target = volume.split(":")[:2]
            elif isinstance(volume, dict) and volume.get("type") == "bind":
                source, target = str(volume.get("source", "")), str(volume.get("target", ""))
            else:
                continue
            if not source.startswith((".", "/")) or "$" in source or not target.startswith("/"):
                continue  # a named volume, or a path only the shell would know
            host = (compose.parent / source).resolve()
            if host.is_relative_to(root):
                mounts.append((PurePosixPath(target), host))
    return sorted(mounts, key=lambda m: len(m[0].parts), reverse=True)


def _on_host(pattern: str, mounts: list[Mount]) -> list[Path] | None:
    """The project files an absolute rule_files pattern names through ``mounts``; None when no
    mount covers it."""
    wanted = PurePosixPath(pattern)
    for target, host in mounts:
        if wanted.parts[:len(target.parts)] != target.parts:
            continue
        rest = PurePosixPath(*wanted.parts[len(target.parts):])
        if not rest.parts:
            return [host] if host.is_file() else []
        return sorted(host.glob(str(rest))) if host.is_dir() else []
    return None


def rule_files(ctx: CheckContext, config: Path) -> tuple[list[Path], str | None, list[str]]:
    """The rule files the config lists (globs relative to it), all inside the project; an
    absolute pattern is a path inside the Prometheus container, found through the compose
    file's bind mounts (the third item lists those no mount maps)."""
    import yaml

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [], f"{ctx.shown(config)} is not readable YAML: {type(exc).__name__}", []
    patterns = data.get("rule_files") or [] if isinstance(data, dict) else []
    if not isinstance(patterns, list):
        return [], f"rule_files in {ctx.shown(config)} is not a list", []
    found: list[Path] = []
    unmapped: list[str] = []
    root = ctx.root.resolve()
    mounts: list[Mount] | None = None
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            entry = json.dumps(pattern, default=str)
            return [], (f"rule_files in {ctx.shown(config)} lists {entry}, which is no file "
                        "pattern"), []
        if pattern.startswith("/"):
            mounts = bind_mounts(ctx) if mounts is None else mounts
            matches = _on_host(pattern, mounts)
            if matches is None:
                unmapped.append(pattern)
                continue
        else:
            matches = sorted(config.parent.glob(pattern))
        if not matches:
            return [], f"rule file {pattern} (listed in {ctx.shown(config)}) does not exist", []
        for path in matches:
            if not path.resolve().is_relative_to(root):
                return [], f"rule file {pattern} is outside the project", []
            found.append(Path(os.path.normpath(path)))  # prometheus/../alerts/a.yml: alerts/a.yml
    return found, None, unmapped


def _first_problem(output: str) -> str:
    """promtool's first complaint: its ``FAILED:`` line often says nothing, the reason (with the
    file, line and column) comes on the next line, or on stderr; a complaint ending in ``:``
    (``yaml: unmarshal errors:``) is continued by the line after it."""
    lines = [line.strip() for line in output.splitlines()]
    said = [line.removeprefix("FAILED:").strip() for line in lines
            if line and not line.startswith(("Checking ", "SUCCESS"))]
    said = [line for line in said if line]
    if not said:
        return "no output"
    first = said[0]
    if first.endswith(":") and len(said) > 1:
        first = f"{first} {said[1]}"
    return first[:240]


def _load(root: Path, path: Path) -> tuple[Document | None, str]:
    """The parsed runbook, or None and why it is not read: missing, not UTF-8, or refused by
    ``read_text_safely`` (a FIFO, a device, a symlink out of the repository, over 8 MiB)."""
    try:
        text = read_text_safely(root, path, MAX_DOC_BYTES)
    except UnsafeFile as exc:
        return None, exc.problem
    return parse_markdown(text), ""


def find_section(doc: Document, synonyms: Sequence[str]) -> Heading | None:
    """The first heading naming one of ``synonyms`` (one with content under it preferred)."""
    names = _namer(synonyms)  # the synonyms' patterns built once, not once per heading
    matching = [h for h in doc.headings if names(h.text)]
    with_content = [h for h in matching if doc.has_content(h)]
    candidates = with_content or matching
    return candidates[0] if candidates else None


def check_section(doc: Document, section: str, synonyms: Sequence[str], name: str) -> Finding:
    check_id = f"runbook.section.{section}"
    heading = find_section(doc, synonyms)
    if heading is None:
        return failed(check_id, f"{name} has no {section} section",
                      hint=f"add a heading such as '## {synonyms[0].title()}' with the steps")
    if not doc.has_content(heading):
        return failed(check_id, f"{name}:{heading.line} heading '{heading.text}' has nothing "
                                "under it", hint="write the procedure under the heading")
    return passed(check_id, f"'{heading.text}' ({name}:{heading.line})")


def check_fresh(ctx: CheckContext, path: Path) -> Iterator[Finding]:
    name = ctx.shown(path)
    if ctx.repo is None:
        yield skipped("runbook.fresh", f"{ctx.root} is not a git repository: age unknown")
        return
    if not path.is_file():
        yield skipped("runbook.fresh", f"{name} does not exist")
        return
    changed = last_commit_date(ctx.repo, name)
    if changed is None:
        yield warned("runbook.fresh", f"{name} has never been committed",
                     hint=f"git add {name} && git commit")
        return
    days = (datetime.now(UTC) - changed.astimezone(UTC)).days
    dirty = _is_dirty(ctx.repo, name)
    note = " (and has uncommitted changes)" if dirty else ""
    max_age = ctx.settings.runbook.max_age_days
    when = f"last changed {days} day(s) ago ({changed.astimezone(UTC):%Y-%m-%d}){note}"
    if days > max_age:
        yield warned("runbook.fresh", f"{name} {when}, more than {max_age}",
                     hint="review the runbook against the current release and commit it")
    else:
        yield passed("runbook.fresh", f"{name} {when}")


def check_links(ctx: CheckContext, doc: Document, path: Path) -> Iterator[Finding]:
    name = ctx.shown(path)
    broken: list[str] = []
    external: list[Link] = []
    local = 0
    targets = _Targets(ctx.root)  # each linked file is parsed once, however many links it has
    for link in doc.links:
        scheme = urlsplit(link.target).scheme.lower()
        if scheme in ("http", "https"):
            external.append(link)
            continue
        if scheme:  # mailto:, tel:, ...: nothing to resolve
            continue
        local += 1
        problem = _local_problem(ctx.root, path, doc, link.target, targets)
        if problem:
            broken.append(f"line {link.line}: {link.target} ({problem})")
    online_note = ""
    if external and ctx.online:
        statuses = check_urls([link.target for link in external],
                              timeout=ctx.settings.runbook.link_timeout_s)
        for link in external:
            status = statuses[link.target]
            if not status.ok:
                broken.append(f"line {link.line}: {link.target} ({status.reason})")
        online_note = f", {len(external)} external checked"
    elif external:
        online_note = f"; {len(external)} external not checked (use --online)"
    if broken:
        yield failed("runbook.links", f"{name}: {len(broken)} broken link(s): "
                                      + listed(broken, MAX_LISTED, sep="; ", chars=SENTENCE_CHARS),
                     hint="fix the path or heading the link points to")
    else:
        yield passed("runbook.links", f"{local} local link(s) resolve{online_note}")


def check_contacts(doc: Document, synonyms: Sequence[str], name: str) -> Finding:
    heading = find_section(doc, synonyms)
    if heading is None:
        return warned("runbook.contacts", f"{name} has no emergency contacts section",
                      hint="add '## Emergency contacts' with on-call names and how to reach them")
    text = doc.section_text(heading)
    if not any(t.strip() for _, t in text):
        return warned("runbook.contacts", f"{name}:{heading.line} '{heading.text}' lists nobody",
                      hint="name the on-call engineer, the database owner and the escalation")
    found = [f"line {line}: {match.group(0)}" for line, t in text
             for match in CONTACT_PLACEHOLDER.finditer(t)]
    if found:
        return warned("runbook.contacts",
                      f"{name}: contacts still hold placeholders: {'; '.join(found[:MAX_LISTED])}",
                      hint="replace each placeholder with a real person and how to reach them")
    return passed("runbook.contacts", f"'{heading.text}' ({name}:{heading.line}) names real "
                                      "contacts")


# --- helpers -------------------------------------------------------------------------------------


def _namer(synonyms: Sequence[str]) -> Callable[[str], bool]:
    """Whether a heading names one of ``synonyms``: an ASCII synonym as a whole word (``scale``
    is not in ``escalation``), any other as a substring (Korean attaches particles)."""
    wanted = [" ".join(synonym.lower().split()) for synonym in synonyms]
    words = [re.compile(rf"(?<![\w-]){re.escape(w)}(?![\w-])") for w in wanted if w and w.isascii()]
    others = [w for w in wanted if w and not w.isascii()]

    def names(heading: str) -> bool:
        text = " ".join(_PUNCTUATION.sub(" ", heading.lower()).split())
        return any(w in text for w in others) or any(p.search(text) for p in words)

    return names


_PUNCTUATION = re.compile(r"[^\w\s-]")


class _Targets:
    """What the local links of one runbook point at, each looked up once: the file a path
    resolves to (and whether it exists) and, for a Markdown file, its parsed headings.

    Without it every anchor link into ``OTHER.md`` re-read and re-parsed ``OTHER.md``: 20 000
    such links ran for minutes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self._paths: dict[tuple[Path, str], tuple[Path | None, bool]] = {}
        self._docs: dict[Path, Document | None] = {}

    def resolve(self, base: Path, raw_path: str) -> tuple[Path | None, bool]:
        """(the resolved path, whether it exists); None for a target no file can have (a NUL
        byte from ``%00``, a name longer than the system allows)."""
        key = (base, raw_path)
        if key not in self._paths:
            try:
                resolved = (base / raw_path.lstrip("/")).resolve()
                self._paths[key] = (resolved, resolved.exists())
            except (OSError, ValueError):
                self._paths[key] = (None, False)
        return self._paths[key]

    def document(self, path: Path) -> Document | None:
        if path not in self._docs:
            self._docs[path] = _load(self.root, path)[0] if path.is_file() else None
        return self._docs[path]


def _local_problem(root: Path, runbook: Path, doc: Document, target: str,
                   targets: _Targets | None = None) -> str | None:
    """Why a relative link does not resolve, or None when it does."""
    targets = targets or _Targets(root)
    raw_path, _, anchor = target.partition("#")
    raw_path = unquote(raw_path.split("?", 1)[0])
    if not raw_path:
        return None if (anchor and unquote(anchor).lower() in doc.slugs) or not anchor \
            else "no such heading"
    base = root if raw_path.startswith("/") else runbook.parent
    resolved, exists = targets.resolve(base, raw_path)
    if resolved is None:
        return "not a valid file name"
    try:
        resolved.relative_to(targets.real_root)
    except ValueError:
        return "points outside the repository"
    if not exists:
        return "no such file"
    if anchor and resolved.suffix.lower() in (".md", ".markdown"):
        target_doc = targets.document(resolved)
        if target_doc is not None and unquote(anchor).lower() not in target_doc.slugs:
            return f"no heading #{anchor} in {resolved.name}"
    return None


def _is_dirty(repo: Any, name: str) -> bool:
    try:
        return bool(repo.is_dirty(path=name))
    except Exception:
        return False
