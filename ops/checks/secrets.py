"""Secret Validation: the environment's ``.env`` against its template, and no secret in the code.

Each function below is one line of the checklist and yields its findings. Messages name the
file, the line and the key; they never contain a value (not even part of one), because this
report goes to CI logs, JSON artifacts and chat.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import stat
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from ops.bounded import listed
from ops.checks import CheckContext
from ops.errors import OpsError
from ops.kms import Providers, scheme_of
from ops.redact import SECRET_NAME  # keys whose example value is a stand-in by nature
from ops.report import Finding, failed, passed, skipped, warned
from ops.runtime.alembic_scripts import discover_configured, load_graph
from ops.runtime.envfile import EnvEntry, EnvFile, parse_env_file
from ops.secretscan import ScanOptions, scan_repository

#: Values that say "fill me in": compared case-insensitively against the whole value and, for
#: URLs, against the password.
PLACEHOLDER = re.compile(
    r"""^(?:change[-_ ]?me.*|change[-_ ]?(?:this|it)(?:[-_ .].*)?|your[-_ ].*[-_ ]here|x{3,}
        |<[^>]*>|todo|tbd|fixme|replace[-_ ]?me|placeholder|example|dummy|secret|password)$
      | \bchange[-_]?(?:me|this)\b | \byour[-_][\w-]*[-_]here\b | <[^>]+> | \bTODO\b
      | \bexample\b""",
    re.IGNORECASE | re.VERBOSE)
UNRESOLVED = re.compile(r"\$\{([^}]*)\}")
MAX_LISTED = 8
#: A finding lists this many names, then "and N more" (``ops.bounded.listed``).
_listed = partial(listed, shown=MAX_LISTED)
#: The checks that read the .env's values: skipped, with the reason, when it cannot be read.
VALUE_CHECKS = ("secrets.syntax", "secrets.duplicate", "secrets.required", "secrets.empty",
                "secrets.placeholder", "secrets.typo", "secrets.secret_key_strength",
                "secrets.url_format")


@dataclass
class EnvReview:
    """What every env check reads: the parsed .env, the template and the required keys."""

    env: EnvFile
    example: EnvFile
    required: list[str]
    required_source: str
    providers: Providers

    @property
    def values(self) -> dict[str, str]:
        return self.env.values()

    def line_of(self, key: str) -> int:
        lines = [e.line for e in self.env.entries if e.key == key]
        return lines[-1] if lines else 0


def run(ctx: CheckContext) -> Iterator[Finding]:
    review = _review(ctx)
    yield from check_env_file(review)
    if review.env.problem is None:
        yield from check_syntax(review)
        yield from check_duplicates(review)
        yield from check_required(review)
        yield from check_empty(review)
        yield from check_placeholders(review)
        yield from check_typos(review)
        yield from check_references(review)
        yield from check_key_strength(review, ctx)
        yield from check_url_format(review)
    else:
        reason = f"not checked: {review.env.path.name} {review.env.problem}"
        for check_id in VALUE_CHECKS:
            yield skipped(check_id, reason)
    yield from check_hardcoded(ctx, review)


def _review(ctx: CheckContext) -> EnvReview:
    env_path = ctx.path(ctx.settings.environment(ctx.env).env_file)
    example_path = env_path.with_name(".env.example")
    if not example_path.exists():
        example_path = ctx.path(".env.example")
    example = parse_env_file(example_path, ctx.root)
    configured = ctx.settings.secrets.required
    if configured is not None:
        required, source = list(configured), "ops.secrets.required"
    else:
        required = list(dict.fromkeys(e.key for e in example.entries))
        source = ctx.shown(example_path)
    return EnvReview(parse_env_file(env_path, ctx.root), example, required, source,
                     Providers.from_settings(ctx.settings.secrets.providers))


def _ranges(lines: Iterable[int]) -> Iterator[str]:
    """``3, 7-12, 20`` from line numbers: an unquoted private key is one range, not 27 numbers."""
    ordered = sorted(set(lines))
    start = prev = None
    for line in [*ordered, None]:
        if line is not None and prev is not None and line == prev + 1:
            prev = line
            continue
        if start is not None:
            yield str(start) if start == prev else f"{start}-{prev}"
        start = prev = line


# --- the checklist -------------------------------------------------------------------------------


def check_env_file(review: EnvReview) -> Iterator[Finding]:
    env = review.env
    name = env.path.name
    if not env.exists:
        yield failed("secrets.env_file", f"{name} does not exist at {env.path}",
                     hint=f"copy .env.example to {name} and fill in the real values")
        return
    if env.problem is not None:
        yield failed("secrets.env_file", f"{name} {env.problem}",
                     hint=f"rewrite {name} as UTF-8 KEY=value lines")
        return
    mode = stat.S_IMODE(env.path.stat().st_mode)
    if mode & stat.S_IROTH:
        yield warned("secrets.env_file", f"{name} is world-readable (mode {mode:04o})",
                     hint=f"chmod 600 {name}")
        return
    yield passed("secrets.env_file", f"{name} exists ({len(env.entries)} keys, mode {mode:04o})")


def check_syntax(review: EnvReview) -> Iterator[Finding]:
    """Lines that are not ``KEY=value``, by number only: their text may be part of a secret
    (the body of an unquoted private key), so not even a piece of it is shown."""
    bad = review.env.bad_lines
    name = review.env.path.name
    if bad:
        yield failed("secrets.syntax",
                     f"{name}: {len(bad)} line(s) do not parse: line {_listed(_ranges(bad))}",
                     hint="each line must be KEY=value, `export KEY=value` or a # comment; "
                          'quote a multi-line value (KEY="-----BEGIN …")')
    else:
        yield passed("secrets.syntax", f"{name} parses cleanly")


def check_duplicates(review: EnvReview) -> Iterator[Finding]:
    seen: dict[str, list[int]] = defaultdict(list)
    for entry in review.env.entries:
        seen[entry.key].append(entry.line)
    twice = {key: lines for key, lines in seen.items() if len(lines) > 1}
    if twice:
        described = (f"{key} (lines {', '.join(map(str, lines))})" for key, lines in twice.items())
        yield warned("secrets.duplicate", f"set more than once: {_listed(described)}",
                     hint="the last assignment wins; delete the others")
    else:
        yield passed("secrets.duplicate", "no key is set twice")


def check_required(review: EnvReview) -> Iterator[Finding]:
    example = review.example
    from_template = review.required_source != "ops.secrets.required"
    if from_template and example.exists and example.problem is not None:
        yield failed("secrets.required",
                     f"{example.path.name} {example.problem}: no template to compare against",
                     hint=f"make {example.path.name} a regular UTF-8 file in the repository, "
                          "or set ops.secrets.required")
        return
    if not review.required:
        yield skipped("secrets.required",
                      "no .env.example and no ops.secrets.required: nothing to compare against")
        return
    values = review.values
    missing = [key for key in review.required if key not in values]
    if missing:
        yield failed("secrets.required",
                     f"{review.env.path.name} lacks {len(missing)} required key(s): "
                     f"{_listed(missing)}",
                     hint=f"set them (required by {review.required_source})")
    else:
        yield passed("secrets.required",
                     f"all {len(review.required)} keys of {review.required_source} are set")


def check_empty(review: EnvReview) -> Iterator[Finding]:
    required = set(review.required)
    empty = [e for e in _last_entries(review.env) if not (e.value or "").strip()]
    bad = [e for e in empty if e.key in required]
    if bad:
        yield failed("secrets.empty", "empty: " + _listed(f"{e.key} (line {e.line})" for e in bad),
                     hint="give each required key a value")
    elif empty:
        yield warned("secrets.empty",
                     "empty (not required): " + _listed(f"{e.key} (line {e.line})" for e in empty),
                     hint="remove the key or give it a value")
    else:
        yield passed("secrets.empty", "no key is empty")


def check_placeholders(review: EnvReview) -> Iterator[Finding]:
    example = review.example.values()
    defined = set(review.values)
    problems: list[str] = []
    for entry in _last_entries(review.env):
        value = (entry.value or "").strip()
        if not value or scheme_of(value):
            continue
        reason = placeholder_reason(entry.key, value, example.get(entry.key), defined)
        if reason:
            problems.append(f"{entry.key} (line {entry.line}) {reason}")
    if problems:
        yield failed("secrets.placeholder", _listed(problems),
                     hint="replace every placeholder with the real value before deploying")
    else:
        yield passed("secrets.placeholder", "no value is a placeholder or the example's value")


def placeholder_reason(key: str, value: str, example: str | None,
                       defined: set[str]) -> str | None:
    """Why ``value`` is a placeholder, in words that do not repeat it; None when it is not."""
    for reference in UNRESOLVED.findall(value):
        name, has_default, _ = reference.partition(":-")
        if not has_default and name not in defined:
            return "refers to an unresolved ${…} variable"
    if example and value == example.strip() and (SECRET_NAME.search(key) or _has_password(value)
                                                 or PLACEHOLDER.search(value)):
        return "still holds the example value"
    password = _url_password(value)
    if PLACEHOLDER.search(value) or (password and PLACEHOLDER.search(password)):
        return "looks like a placeholder"
    return None


def check_typos(review: EnvReview) -> Iterator[Finding]:
    known = set(review.required) | set(review.example.values())
    values = review.values
    suggestions = []
    for key in values:
        if key in known:
            continue
        # a key the .env already sets is not what this one was meant to be (DATABASE_NAME is
        # not a typo of DATABASE_HOSTNAME when both are there)
        unset = sorted(known - set(values))
        close = difflib.get_close_matches(key, unset, n=1, cutoff=0.8)
        if close:
            suggestions.append(f"{key} — did you mean {close[0]}?")
    if suggestions:
        yield warned("secrets.typo", _listed(suggestions),
                     hint="rename the key; the service reads the template's spelling")
    else:
        yield passed("secrets.typo", "no key looks like a misspelt template key")


def check_references(review: EnvReview) -> Iterator[Finding]:
    """``kms://`` and friends: resolvable only through a configured provider, else a skip."""
    for entry in _last_entries(review.env):
        value = (entry.value or "").strip()
        scheme = scheme_of(value)
        if scheme is None:
            continue
        provider = review.providers.for_value(value)
        if provider is None:
            yield skipped("secrets.reference",
                          f"{entry.key} (line {entry.line}) is a {scheme}:// reference and no "
                          f"{scheme} provider is configured: not checked",
                          hint=f"configure ops.secrets.providers.{scheme} to resolve it")
            continue
        try:
            resolved = provider.resolve(value)
        except OpsError as exc:
            yield failed("secrets.reference",
                         f"{entry.key} (line {entry.line}): {scheme}:// reference does not "
                         f"resolve ({exc.message})", hint=exc.hint)
            continue
        if not resolved.strip():
            yield failed("secrets.reference",
                         f"{entry.key} (line {entry.line}): {scheme}:// reference resolves to "
                         "an empty value")
        else:
            yield passed("secrets.reference",
                         f"{entry.key} (line {entry.line}): {scheme}:// reference resolves")


def check_key_strength(review: EnvReview, ctx: CheckContext) -> Iterator[Finding]:
    conf = ctx.settings.secrets
    values = review.values
    names = [key for key in conf.key_names if key in values]
    if not names:
        yield skipped("secrets.secret_key_strength",
                      f"none of {', '.join(conf.key_names)} is set: no key to check")
        return
    for key in names:
        value = _resolved(review, values[key])
        where = f"{key} (line {review.line_of(key)})"
        if value is None:
            yield skipped("secrets.secret_key_strength",
                          f"{where} is a reference without a provider: strength not checked")
            continue
        problem = key_weakness(value, conf.min_key_length, conf.min_distinct_chars,
                               conf.insecure_prefixes)
        if problem:
            yield failed("secrets.secret_key_strength", f"{where} {problem}",
                         hint="generate one: python -c 'import secrets; "
                              "print(secrets.token_urlsafe(48))'")
        else:
            yield passed("secrets.secret_key_strength",
                         f"{where} is {len(value)} characters, {len(set(value))} distinct")


def key_weakness(value: str, min_length: int, min_distinct: int,
                 prefixes: Iterable[str]) -> str | None:
    """Why a cryptographic key is weak, reporting lengths and counts only."""
    if len(value) < min_length:
        return f"is {len(value)} characters (needs at least {min_length})"
    if len(set(value)) < min_distinct:
        return (f"has only {len(set(value))} distinct characters in {len(value)} "
                f"(needs at least {min_distinct})")
    lowered = value.lower()
    for prefix in prefixes:
        if lowered.startswith(prefix.lower()):
            return f"starts with the known insecure prefix {prefix!r}"
    if PLACEHOLDER.search(value):
        return "looks like a placeholder"
    return None


def check_url_format(review: EnvReview) -> Iterator[Finding]:
    values = review.values
    urls = [key for key in values if key.upper().endswith("_URL")]
    if not urls:
        yield skipped("secrets.url_format", "no *_URL key is set")
        return
    bad = []
    for key in urls:
        value = _resolved(review, values[key])
        if value is not None and value.strip() and not _is_url(value.strip()):
            bad.append(f"{key} (line {review.line_of(key)})")
    if bad:
        yield failed("secrets.url_format", "not a URL with scheme and host: " + _listed(bad),
                     hint="write scheme://[user:password@]host[:port]/path")
    else:
        yield passed("secrets.url_format", f"{len(urls)} URL(s) parse with scheme and host")


def check_hardcoded(ctx: CheckContext, review: EnvReview | None = None) -> Iterator[Finding]:
    """detect-secrets over the files git tracks; file:line and kind, never the value.

    One policy on top of detect-secrets: a placeholder in the env template (``change-me`` as
    the password of an example URL) is the template doing its job, not a leaked secret.
    """

    if ctx.repo is None:
        yield skipped("secrets.hardcoded", f"{ctx.root} is not a git repository: "
                                           "no tracked files to scan")
        return
    conf = ctx.settings.secrets
    options = ScanOptions(use_cache=ctx.use_cache, cache_dir=ctx.settings.artifacts.cache_dir,
                          baseline=conf.baseline, exclude=tuple(conf.exclude),
                          max_file_bytes=conf.max_file_bytes)
    try:
        result = scan_repository(ctx.root, options)
    except OpsError as exc:
        yield failed("secrets.hardcoded", exc.message, hint=exc.hint)
        return
    template_lines = _template_placeholder_lines(ctx, review)
    hits = [h for h in result.findings if (h.path, h.line) not in template_lines]
    in_template = len(result.findings) - len(hits)
    revision_ids = _revision_id_hashes(ctx)
    kept = [h for h in hits if not (h.kind in _ENTROPY_KINDS and h.hashed in revision_ids)]
    revisions_named = len(hits) - len(kept)
    hits = kept
    counts = (f"{result.files} tracked files, {result.cached} from cache"
              + (f", {revisions_named} Alembic revision id(s) named outside revision files"
                 if revisions_named else "")
              + (f", {result.baselined} accepted by the baseline" if result.baselined else "")
              + (f", {in_template} template placeholder(s) ignored" if in_template else "")
              + (f", {result.large} over {conf.max_file_bytes / 2**20:g} MiB not read"
                 if result.large else ""))
    if hits:
        names = _listed(f"{h.path}:{h.line} ({h.kind})" for h in hits)
        yield failed("secrets.hardcoded",
                     f"{len(hits)} potential secret(s) in tracked files: {names}",
                     hint="move it to .env or a secret manager and rotate it; if it is not a "
                          "secret, add `# pragma: allowlist secret` or accept it in "
                          f"{conf.baseline or '.secrets.baseline'}"
                          + ("" if conf.baseline and ctx.path(conf.baseline).is_file() else
                             " (first run: review them, then `detect-secrets scan > "
                             f"{conf.baseline or '.secrets.baseline'}` accepts the ones that "
                             "are not secrets)"),
                     detail={"findings": [{"file": h.path, "line": h.line, "type": h.kind}
                                          for h in hits]})
    else:
        yield passed("secrets.hardcoded", f"no hardcoded secret ({counts})")


# --- helpers -------------------------------------------------------------------------------------

#: The plugins that report a string for its randomness alone (not for a credential's format).
_ENTROPY_KINDS = frozenset({"Hex High Entropy String", "Base64 High Entropy String"})


def _revision_id_hashes(ctx: CheckContext) -> set[str]:
    """detect-secrets' SHA-1 of every Alembic revision id of the project.

    A test or a doc that names a revision (``command.upgrade(cfg, "ae1027a6acf")``) shows a
    public identifier, not a secret; matching the hash detect-secrets keeps means the value itself
    is never needed. The ids come from the migrations section when it ran (ctx.notes).
    """
    ids = ctx.notes.get("revision_ids")
    if not isinstance(ids, set):
        ids = _read_revision_ids(ctx)
    return {hashlib.sha1(str(i).encode("utf-8")).hexdigest() for i in ids}  # noqa: S324


def _read_revision_ids(ctx: CheckContext) -> set[str]:
    try:
        found = discover_configured(ctx.root, ctx.settings.migrations)
    except OpsError:
        return set()
    return set(load_graph(found.chosen).revisions) if found.chosen else set()



def _last_entries(env: EnvFile) -> list[EnvEntry]:
    """One entry per key, the last one (the one python-dotenv keeps)."""
    last: dict[str, EnvEntry] = {}
    for entry in env.entries:
        last[entry.key] = entry
    return sorted(last.values(), key=lambda e: e.line)


def _template_placeholder_lines(ctx: CheckContext,
                                review: EnvReview | None) -> set[tuple[str, int]]:
    """(file, line) of template entries whose value is a placeholder or a reference."""
    if review is None or not review.example.entries:
        return set()
    name = ctx.shown(review.example.path)
    lines: set[tuple[str, int]] = set()
    for entry in review.example.entries:
        value = (entry.value or "").strip()
        password = _url_password(value)
        if scheme_of(value) or PLACEHOLDER.search(value) or (
                password is not None and PLACEHOLDER.search(password)):
            lines.add((name, entry.line))
    return lines


def _resolved(review: EnvReview, value: str) -> str | None:
    """The value to check: a reference resolved through its provider; None when it cannot be."""
    if scheme_of(value) is None:
        return value
    provider = review.providers.for_value(value)
    if provider is None:
        return None
    try:
        return provider.resolve(value.strip())
    except OpsError:
        return None


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.hostname)


def _url_password(value: str) -> str | None:
    try:
        return urlsplit(value).password if "://" in value else None
    except ValueError:
        return None


def _has_password(value: str) -> bool:
    return bool(_url_password(value))

