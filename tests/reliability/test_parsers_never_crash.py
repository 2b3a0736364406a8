"""A parser returns a finding or raises an ``OpsError``, never another exception.

One property per parser of input someone else writes: the release version, ``.env``,
``invoke.yaml`` (the guarded loader and the settings model), the artifact manifest, the VERSION
file, ``redis_schema.yaml``, the runbook, ``backup.json`` and the audit log's lines. Each runs over
arbitrary text or bytes, over values shaped like the real file with arbitrary contents in every
field, and over explicit hostile examples (deep nesting, huge numbers, control characters). Any
exception that is not the parser's documented failure fails the property; hypothesis shrinks it
to the smallest input that does.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ops.checks import CheckContext
from ops.checks import runbook as rb
from ops.checks.migrations import SchemaError, parse_redis_schema
from ops.config import Settings, defaults, load_settings
from ops.configfile import read_config_file
from ops.deploy import audit
from ops.deploy.backup import Backup
from ops.errors import ConfigError, OpsError
from ops.release import manifest as mf
from ops.release import version_file as vfile
from ops.release.version_file import ReleaseFileError
from ops.report import Finding
from ops.runtime.envfile import EnvFile, parse_env_file
from ops.versioning import ReleaseVersion, parse_version, version_of_tag

EXAMPLES = 200
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DEEP = "[" * 100_000 + "]" * 100_000
#: Characters that mean something to YAML, Markdown, dotenv or JSON.
SYNTAX = "-:[]{}&*!|>'\"#%@`,?=\\ \t\n\r\x00\x1b.$/()<>_~^"
texts = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(SYNTAX), max_size=400)
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=25)


def _keys(data: Any) -> set[str]:
    if isinstance(data, dict):
        return set(data) | {k for v in data.values() for k in _keys(v)}
    return set()


#: Every key the settings know, so generated mappings reach the models, not just "unknown key".
SETTING_KEYS = sorted(_keys(defaults()) | {"qa", "app", "worker"})
setting_mappings = st.recursive(
    scalars | st.lists(scalars, max_size=3),
    lambda inner: st.dictionaries(st.sampled_from(SETTING_KEYS) | st.text(max_size=8), inner,
                                  max_size=5),
    max_leaves=30)


def written(data: bytes, name: str) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / name
    path.write_bytes(data)
    return folder, path


# --- the release version -------------------------------------------------------------------------

versions = st.one_of(
    texts,
    st.builds(lambda core, pre: f"v{core}{pre}",
              st.from_regex(r"\d{1,30}\.\d{1,30}\.\d{1,30}", fullmatch=True),
              st.text(alphabet="-.+abc019", max_size=60)),
)


@PROPERTY
@given(versions)
@example("v1.0.0-" + "a" * 5000)
@example("v" + "9" * 5000 + ".0.0")
@example("v1.2.3\x00")
def test_the_version_parser_returns_a_version_or_raises_an_ops_error(text: str) -> None:
    with contextlib.suppress(OpsError):
        assert isinstance(parse_version(text), ReleaseVersion)
    assert version_of_tag(text) is None or isinstance(version_of_tag(text), ReleaseVersion)


# --- .env ----------------------------------------------------------------------------------------

env_lines = st.lists(st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=10), texts),
    st.sampled_from(["-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBg==", "export A=1",
                     "A='unclosed", 'B="multi\nline"', "#comment", "  ", "=x"]),
    texts), max_size=12)


@PROPERTY
@given(st.one_of(st.binary(max_size=600), env_lines.map(lambda ls: "\n".join(ls).encode())))
@example(b"\xff\xfeA=1\n")
@example(b"A=1\x00\n")
def test_the_env_parser_returns_a_reading_for_any_bytes(data: bytes) -> None:
    folder, path = written(data, ".env")
    with folder:
        assert isinstance(parse_env_file(path), EnvFile)


# --- invoke.yaml ---------------------------------------------------------------------------------

yaml_texts = st.one_of(
    texts,
    st.lists(st.sampled_from(["ops:", "  environments:", "    production:", "  backup:",
                              "    keep: 3", "- a", "&x", "*x", "!!python/object:os.system",
                              "<<: *x", "? [1]", ": v", "{", "}", "[", "]", "\t", "'", "null",
                              "on:", "1:", "  runbook: ~"]) | texts, max_size=10)
    .map("\n".join),
)
SHAPE = {"ops": defaults(), "run": {"echo": False}, "tasks": {"auto_dash_names": True}}


@PROPERTY
@given(st.one_of(yaml_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.binary(max_size=300)))
@example(b"ops: " + DEEP.encode())
@example(b"a: &a [*a]")
@example(b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
         b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
         b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n")
def test_the_config_file_loader_returns_settings_data_or_raises_a_config_error(
        data: bytes) -> None:
    folder, path = written(data, "invoke.yaml")
    with folder:
        try:
            loaded = read_config_file(path, SHAPE)
        except ConfigError as exc:
            assert "\n" not in exc.one_line()
            return
    assert isinstance(loaded, dict)
    assert all(isinstance(key, str) for key in loaded)


@PROPERTY
@given(json_values)
def test_the_config_file_loader_reads_json_within_the_same_bounds(value: Any) -> None:
    folder, path = written(json.dumps(value).encode(), "invoke.json")
    with folder, contextlib.suppress(ConfigError):
        assert isinstance(read_config_file(path, SHAPE), dict)


@PROPERTY
@given(setting_mappings)
@example({"environments": {"../x": {}}})
@example({"environments": {"production": {"services": {"app": {"replicas": -1}}}}})
@example({"backup": {"keep": "9" * 5000}})
def test_the_settings_model_returns_settings_or_raises_a_config_error(raw: Any) -> None:
    try:
        assert isinstance(load_settings(raw if isinstance(raw, dict) else {"x": raw}), Settings)
    except ConfigError as exc:
        assert exc.one_line()


# --- release files -------------------------------------------------------------------------------

manifests = st.fixed_dictionaries(
    {"version": json_values | st.just("v0.2.0"), "release_date": json_values,
     "git": json_values | st.fixed_dictionaries({"commit": json_values, "branch": json_values,
                                                 "tag": json_values}),
     "artifacts": json_values | st.lists(st.fixed_dictionaries(
         {"path": json_values | st.text(), "size": json_values, "sha256": json_values}),
         max_size=3),
     "docker_images": json_values | st.dictionaries(st.text(max_size=5), json_values
                                                    | st.fixed_dictionaries({"image": json_values}),
                                                    max_size=3)},
    optional={"schema": json_values, "tool": json_values})


@PROPERTY
@given(st.one_of(texts, json_values.map(json.dumps), manifests.map(json.dumps)))
@example(DEEP)
@example('{"version": "v1", "artifacts": [{"path": "a", "size": "' + "9" * 5000 + '"}]}')
@example('{"artifacts": [], "git": {"commit": 1, "branch": 2, "tag": 3}, "version": 1,'
         ' "release_date": 1, "docker_images": {"app": {"image": "' + "x" * 100_000 + '"}}}')
def test_the_manifest_parser_returns_a_manifest_or_raises_a_release_file_error(
        text: str) -> None:
    try:
        manifest = mf.parse(text, source="manifest_v0.2.0.json")
    except ReleaseFileError as exc:
        assert len(exc.one_line()) < 1000
        return
    assert isinstance(manifest, mf.Manifest)
    for artifact in manifest.artifacts:
        with contextlib.suppress(ReleaseFileError):
            mf.artifact_location(Path("/repo"), artifact)


version_file_texts = st.lists(st.one_of(
    st.sampled_from(["v0.2.0", "Commit: abc", "Date: 2026-01-01", "Checkpoint Files:", "",
                     "version: v0.2.0", "# note", f"  model.pt: {'a' * 64}",
                     f"  model.pt: {'A' * 64}"]),
    st.builds(lambda n, h: f"  {n}: {h}", st.text(max_size=20), st.text(max_size=70)),
    texts), max_size=12).map("\n".join)


@PROPERTY
@given(st.one_of(texts, version_file_texts), st.booleans())
@example("v0.2.0\nCommit: a\nDate: b\n\n  " + "n" * 1_000_000 + ": x", True)
def test_the_version_file_parser_returns_a_file_or_raises_a_release_file_error(
        text: str, strict: bool) -> None:
    try:
        assert isinstance(vfile.parse(text, strict=strict), vfile.VersionFile)
    except ReleaseFileError as exc:
        assert strict, "the lenient reading never refuses"
        assert len(exc.one_line()) < 1000


# --- redis_schema.yaml ---------------------------------------------------------------------------

schema_texts = st.one_of(texts, st.lists(
    st.sampled_from(["keys:", "  'user:*': hash", "  session:*: string", "  q: list", "  ? [a]",
                     "  : set", "- x", "keys: [1]", "keys: ~", "  a: &t zset", "  b: *t"])
    | texts, max_size=8).map("\n".join))


@PROPERTY
@given(schema_texts)
def test_the_redis_schema_parser_returns_patterns_or_raises_its_schema_error(text: str) -> None:
    """SchemaError is the parser's documented failure (``check_redis_schema`` makes it a
    finding); it is not an OpsError."""
    with contextlib.suppress(SchemaError):
        assert isinstance(parse_redis_schema(text, "redis_schema.yaml"), list)


def test_the_redis_schema_parser_survives_100000_levels_of_nesting() -> None:
    with pytest.raises(SchemaError):
        parse_redis_schema("keys: " + DEEP, "redis_schema.yaml")


# --- the runbook ---------------------------------------------------------------------------------

markdown = st.lists(st.one_of(
    st.builds(lambda level, title: "#" * level + " " + title, st.integers(1, 7), texts),
    st.builds(lambda text, target: f"[{text}]({target})", st.text(max_size=8),
              st.text(alphabet=SYNTAX + "abc.mdMD%0", max_size=30)),
    st.sampled_from(["## Health checks", "## Rollback", "## Emergency contacts", "- TBD",
                     "```", "| a | b |", "|---|---|", "[x](#health-checks)", "[y](OTHER.md#a)",
                     "[z](%00)", "[w](../../../etc/passwd)", "<!-- -->", "> quote"]),
    texts), max_size=15).map("\n\n".join)


@PROPERTY
@given(markdown)
@example("[nul](%00) [nul anchor](a%00b.md#x) [deep](" + "a/" * 3000 + "b.md#c)")
@example("#" * 100_000)
def test_the_runbook_review_returns_findings_for_any_markdown(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "RUNBOOK.md").write_text(text, encoding="utf-8", errors="surrogatepass")
        (root / "OTHER.md").write_text("# A\n\ntext\n", encoding="utf-8")
        ctx = CheckContext(root=root, settings=Settings(), version=parse_version("v0.1.0"))
        findings = list(rb.run(ctx))
    assert findings
    assert all(isinstance(f, Finding) for f in findings)


# --- backup.json and the audit log ---------------------------------------------------------------

backup_metas = st.fixed_dictionaries(
    {"format": st.just(1) | json_values},
    optional={"files": json_values | st.dictionaries(
        st.text(max_size=8), st.fixed_dictionaries({"size": json_values, "sha256": json_values})),
        "postgres": json_values | st.fixed_dictionaries(
            {"row_counts": json_values | st.dictionaries(st.text(max_size=5), json_values),
             "alembic_revision": json_values}),
        "redis": json_values | st.fixed_dictionaries({"keys": json_values}),
        "label": json_values, "created_at": json_values, "version": json_values,
        "duration_s": json_values, "env": json_values})


@PROPERTY
@given(st.one_of(backup_metas.map(json.dumps), texts))
@example('{"format": 1, "x": ' + DEEP + "}")
def test_backup_json_reads_as_a_backup_whose_fields_all_read_or_as_none(text: str) -> None:
    folder, _ = written(text.encode("utf-8", "surrogatepass"), "backup.json")
    with folder:
        backup = Backup.load(Path(folder.name))
        if backup is None:
            return
        assert backup.files is not None
        _ = (backup.size_bytes, backup.row_counts, backup.redis_keys, backup.alembic_revision,
             backup.created_at, backup.version, backup.label, backup.postgres, backup.redis)
        assert all("/" not in name and name not in {".", ".."} for name in backup.files)


@PROPERTY
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
@example(DEEP.encode())
@example(b'{"a": ' * 50_000 + b"1" + b"}" * 50_000)
@example(b"\xed\xa0\x80")  # an encoded surrogate: not UTF-8
def test_an_audit_log_line_is_an_event_or_a_reason_to_skip_it(line: bytes) -> None:
    event, problem = audit._event(line)
    assert event is None or problem is None
    assert event is None or isinstance(event, dict)
