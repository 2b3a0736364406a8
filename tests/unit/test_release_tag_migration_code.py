"""What the migrations section reads from a revision's source, and from redis_schema.yaml.

No services: revision files are written to a temp dir and parsed with ``ast``; nothing imports
or runs them. The reader's handling of real-world revision shapes is in test_revision_reader.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.checks.migrations import SchemaError, parse_redis_schema
from ops.errors import DatabaseUnavailable
from ops.redact import describe_url
from ops.runtime.alembic_scripts import (
    Operation,
    RevisionFile,
    ScriptGraph,
    pending,
    read_revision,
    unknown,
)
from ops.runtime.postgres import probe_alembic_revisions

HEADER = '''"""a revision"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

'''


def revision_file(tmp_path: Path, upgrade: str,
                  downgrade: str = "    op.drop_table('x')\n") -> Path:
    path = tmp_path / "0003_change.py"
    path.write_text(HEADER + "def upgrade() -> None:\n" + upgrade
                    + "\n\ndef downgrade() -> None:\n" + downgrade, encoding="utf-8")
    return path


def read(path: Path) -> RevisionFile:
    parsed = read_revision(path.read_text(encoding="utf-8"), path)
    assert isinstance(parsed, RevisionFile)
    return parsed


def downgrade_problem(path: Path) -> tuple[int, str] | None:
    return read(path).downgrade_problem


def destructive_operations(path: Path) -> tuple[Operation, ...]:
    return read(path).operations


def kinds(path: Path) -> list[tuple[str, bool]]:
    return [(op.kind, op.acknowledged) for op in destructive_operations(path)]


# --- downgrade -----------------------------------------------------------------------------------


def test_bare_pass_downgrade_is_reported_with_its_line(tmp_path: Path) -> None:
    path = revision_file(tmp_path, "    op.create_table('x')\n", "    pass\n")
    problem = downgrade_problem(path)
    assert problem is not None
    line, why = problem
    assert "bare pass" in why
    assert path.read_text().splitlines()[line - 1].strip() == "pass"


def test_docstring_and_pass_downgrade_still_does_nothing(tmp_path: Path) -> None:
    path = revision_file(tmp_path, "    op.create_table('x')\n",
                         '    """Nothing to undo."""\n    pass\n')
    assert downgrade_problem(path) is not None


def test_missing_downgrade_function_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "0003_x.py"
    path.write_text(HEADER + "def upgrade() -> None:\n    op.create_table('x')\n")
    problem = downgrade_problem(path)
    assert problem is not None
    assert "no downgrade()" in problem[1]


def test_downgrade_that_drops_what_upgrade_created_is_fine(tmp_path: Path) -> None:
    path = revision_file(tmp_path, "    op.create_table('x')\n", "    op.drop_table('x')\n")
    assert downgrade_problem(path) is None


def test_downgrade_that_raises_is_an_explicit_answer_not_a_bare_pass(tmp_path: Path) -> None:
    path = revision_file(tmp_path, "    op.create_table('x')\n",
                         "    raise NotImplementedError('data cannot come back')\n")
    assert downgrade_problem(path) is None


# --- destructive operations ----------------------------------------------------------------------


@pytest.mark.parametrize(("upgrade", "kind"), [
    ("    op.drop_table('users')\n", "drop_table"),
    ("    op.drop_column('users', 'email')\n", "drop_column"),
    ("    op.alter_column('users', 'email', type_=sa.String(64))\n", "alter_column_type"),
    ("    op.alter_column('users', 'email', new_column_name='mail')\n", "rename_column"),
    ("    op.rename_table('users', 'accounts')\n", "rename_table"),
    ("    op.add_column('users', sa.Column('age', sa.Integer, nullable=False))\n",
     "add_not_null_column"),
    ("    op.alter_column('users', 'email', nullable=False)\n", "set_not_null"),
    ("    op.execute('DROP TABLE legacy')\n", "raw_sql"),
    ("    with op.batch_alter_table('users') as batch_op:\n"
     "        batch_op.drop_column('email')\n", "drop_column"),
])
def test_destructive_operation_is_named(tmp_path: Path, upgrade: str, kind: str) -> None:
    assert kinds(revision_file(tmp_path, upgrade)) == [(kind, False)]


@pytest.mark.parametrize("upgrade", [
    "    op.create_table('x', sa.Column('id', sa.Integer))\n",
    "    op.add_column('users', sa.Column('age', sa.Integer, nullable=True))\n",
    "    op.add_column('users', sa.Column('age', sa.Integer, nullable=False, "
    "server_default='0'))\n",
    "    op.create_index('ix', 'users', ['email'])\n",
    "    op.alter_column('users', 'email', nullable=True)\n",
    "    op.execute('CREATE INDEX ix ON users (email)')\n",
])
def test_additive_operation_is_not_destructive(tmp_path: Path, upgrade: str) -> None:
    assert kinds(revision_file(tmp_path, upgrade)) == []


def test_allow_comment_on_the_line_acknowledges_the_operation(tmp_path: Path) -> None:
    path = revision_file(tmp_path,
                         "    op.drop_column('users', 'email')  # tminus: allow-destructive\n")
    assert kinds(path) == [("drop_column", True)]


def test_allow_comment_line_above_acknowledges_the_operation(tmp_path: Path) -> None:
    path = revision_file(tmp_path, "    # tminus: allow-destructive (column unused since v0.1)\n"
                                   "    op.drop_column('users', 'email')\n")
    assert kinds(path) == [("drop_column", True)]


def test_allow_comment_acknowledges_only_its_own_operation(tmp_path: Path) -> None:
    path = revision_file(tmp_path,
                         "    op.drop_column('users', 'email')  # tminus: allow-destructive\n"
                         "    op.drop_table('legacy')\n")
    assert kinds(path) == [("drop_column", True), ("drop_table", False)]


def test_destructive_operations_in_downgrade_are_not_counted(tmp_path: Path) -> None:
    path = revision_file(tmp_path, "    op.create_table('x')\n", "    op.drop_table('x')\n")
    assert kinds(path) == []


def test_destructive_operation_reports_its_line(tmp_path: Path) -> None:
    path = revision_file(tmp_path, "    op.create_table('y')\n    op.drop_table('users')\n")
    [op] = destructive_operations(path)
    assert path.read_text().splitlines()[op.line - 1].strip() == "op.drop_table('users')"
    assert "users" in op.detail


# --- the graph, as plain data --------------------------------------------------------------------


def graph_of(*edges: tuple[str, tuple[str, ...]]) -> ScriptGraph:
    graph = ScriptGraph(location=None)
    for revision, downs in edges:
        graph.revisions[revision] = RevisionFile(revision, downs, Path(f"{revision}.py"))
    return graph


def test_pending_lists_revisions_above_the_database() -> None:
    graph = graph_of(("a", ()), ("b", ("a",)), ("c", ("b",)))
    assert pending(graph, ["a"]) == ["b", "c"]


def test_empty_database_has_every_revision_pending() -> None:
    graph = graph_of(("a", ()), ("b", ("a",)))
    assert pending(graph, []) == ["a", "b"]


def test_database_at_a_revision_the_code_lacks_is_unknown() -> None:
    graph = graph_of(("a", ()), ("b", ("a",)))
    assert unknown(graph, ["z9"]) == ["z9"]


# --- redis_schema.yaml ---------------------------------------------------------------------------


def test_redis_schema_patterns_carry_type_and_line() -> None:
    text = 'keys:\n  "session:{id}": hash\n  "queue:jobs": list\n'
    patterns = parse_redis_schema(text, "redis_schema.yaml")
    assert [(p.pattern, p.type, p.line) for p in patterns] == [
        ("session:{id}", "hash", 2), ("queue:jobs", "list", 3)]


def test_redis_schema_unknown_type_names_the_line() -> None:
    with pytest.raises(SchemaError, match=r"redis_schema.yaml:3: pattern 'b' has type 'dict'"):
        parse_redis_schema("keys:\n  a: hash\n  b: dict\n", "redis_schema.yaml")


def test_redis_schema_invalid_yaml_names_the_line() -> None:
    with pytest.raises(SchemaError, match=r"redis_schema.yaml:\d+"):
        parse_redis_schema("keys:\n  a: [hash\n  b: list\n", "redis_schema.yaml")


def test_placeholder_matches_one_key_segment() -> None:
    [pattern] = parse_redis_schema('keys:\n  "session:{id}": hash\n', "s.yaml")
    assert pattern.regex().match("session:42")
    assert not pattern.regex().match("session:42:extra")
    assert not pattern.regex().match("sessions:42")


def test_url_is_described_without_its_password() -> None:
    shown = describe_url("postgresql://app:hunter2-secret@db:5432/app")
    assert shown == "postgresql://app@db:5432/app"


def test_driver_error_that_echoes_the_password_is_scrubbed() -> None:
    # libpq rejects this URL while parsing it, before any connection: no server is needed.
    with pytest.raises(DatabaseUnavailable) as caught:
        probe_alembic_revisions("postgresql://app:open sesame@127.0.0.1:5432/app", timeout_s=1)
    assert "open sesame" not in caught.value.message
    assert "***" in caught.value.message


def test_long_variable_key_segment_is_masked_in_messages() -> None:
    [pattern] = parse_redis_schema('keys:\n  "session:{id}:data": hash\n', "s.yaml")
    shown = pattern.shown("session:9f2c44e1b7a04d5e8c1f:data")
    assert shown == "session:9f2c…(20 chars):data"


def test_short_variable_key_segment_stays_readable() -> None:
    [pattern] = parse_redis_schema('keys:\n  "job:{id}": hash\n', "s.yaml")
    assert pattern.shown("job:42") == "job:42"
