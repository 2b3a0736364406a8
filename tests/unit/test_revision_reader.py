"""The revision reader: every shape of revision file real projects have, read with ``ast``.

No services and no imports of the files: each test hands source text to ``read_revision`` (or
revisions to ``judge``, which asks Alembic's own RevisionMap), and checks what was read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.runtime.alembic_scripts import (
    RevisionFile,
    ScriptGraph,
    Unreadable,
    judge,
    read_revision,
    revisions_in_texts,
)

PATH = Path("versions/abc_x.py")


def read(source: str) -> RevisionFile:
    parsed = read_revision(source, PATH)
    assert isinstance(parsed, RevisionFile), parsed
    return parsed


def body(upgrade: str = "    pass\n", downgrade: str = "    pass\n", *,
         ids: str = 'revision = "abc"\ndown_revision = "def"\n') -> str:
    return (f'"""a change\n\nRevision ID: abc\nRevises: def\n"""\nfrom alembic import op\n'
            f"import sqlalchemy as sa\n\n{ids}\n\ndef upgrade():\n{upgrade}\n\n"
            f"def downgrade():\n{downgrade}")


# --- identifiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("ids", "expected"), [
    ('revision = "abc"\ndown_revision = "def"\n', ("def",)),
    ('revision = "abc"\ndown_revision = None\n', ()),
    ('revision = "abc"\ndown_revision = ("d1", "d2")\n', ("d1", "d2")),
    ('revision = "abc"\ndown_revision = ["d1", "d2"]\n', ("d1", "d2")),
    ('revision: str = "abc"\ndown_revision: Union[str, None] = "def"\n', ("def",)),
    ('revision: str = "abc"\ndown_revision: str | Sequence[str] | None = ("d1", "d2")\n',
     ("d1", "d2")),
])
def test_down_revision_is_read_in_every_literal_form(ids: str, expected: tuple[str, ...]) -> None:
    assert read(body(ids=ids)).down_revisions == expected


def test_branch_labels_and_depends_on_are_read() -> None:
    parsed = read(body(ids='revision = "abc"\ndown_revision = None\n'
                           'branch_labels = ("billing",)\ndepends_on = "f00"\n'))
    assert (parsed.branch_labels, parsed.depends_on) == (("billing",), ("f00",))


def test_computed_down_revision_is_unreadable_naming_the_line() -> None:
    parsed = read_revision(body(ids='revision = "abc"\ndown_revision = PARENT\n'), PATH)
    assert isinstance(parsed, Unreadable)
    assert "`down_revision` is not a literal" in parsed.reason
    assert parsed.line == 10


def test_syntax_error_is_unreadable_with_its_line_and_no_source_text() -> None:
    source = body() + '\nPASSWORD = "hunter2-very-secret" +\n'
    parsed = read_revision(source, PATH)
    assert isinstance(parsed, Unreadable)
    assert parsed.line == source.count("\n")
    assert "hunter2" not in parsed.reason


def test_file_without_revision_is_unreadable_as_alembic_would_refuse_it() -> None:
    parsed = read_revision("def helper():\n    return 1\n", Path("versions/helpers.py"))
    assert isinstance(parsed, Unreadable)
    assert "declares no `revision" in parsed.reason


def test_message_is_the_docstrings_first_line() -> None:
    assert read(body()).message == "a change"


def test_flask_migrates_empty_message_counts_as_no_message() -> None:
    source = body().replace('"""a change', '"""empty message')
    assert read(source).message == ""


# --- what a revision does ------------------------------------------------------------------------


def test_merge_revision_with_empty_bodies_is_a_merge_and_needs_no_downgrade() -> None:
    parsed = read(body(ids='revision = "abc"\ndown_revision = ("d1", "d2")\n'))
    assert (parsed.kind, parsed.downgrade_problem) == ("merge", None)


def test_data_only_revision_with_pass_downgrade_is_fine() -> None:
    parsed = read(body("    op.execute(\"UPDATE users SET active = true\")\n"))
    assert (parsed.kind, parsed.downgrade_problem) == ("data", None)


def test_bulk_insert_is_data_not_schema() -> None:
    assert read(body("    op.bulk_insert(table, [{'id': 1}])\n")).kind == "data"


@pytest.mark.parametrize("upgrade", [
    "    op.create_table('x', sa.Column('id', sa.Integer))\n",
    "    op.add_column('users', sa.Column('age', sa.Integer))\n",
    "    op.alter_column('users', 'name', nullable=True)\n",
    "    op.create_index('ix', 'users', ['name'])\n",
    "    op.execute('ALTER TABLE users ADD COLUMN age int')\n",
    "    op.execute(sa.text('CREATE INDEX ix ON users (name)'))\n",
    "    sa.Enum('a', 'b', name='kind').create(op.get_bind())\n",
    "    with op.batch_alter_table('users') as batch_op:\n"
    "        batch_op.add_column(sa.Column('age', sa.Integer))\n",
])
def test_schema_change_with_pass_downgrade_fails(upgrade: str) -> None:
    parsed = read(body(upgrade))
    assert parsed.kind == "schema"
    assert parsed.downgrade_problem is not None
    assert "bare pass" in parsed.downgrade_problem[1]


def test_schema_change_in_a_helper_called_by_upgrade_counts() -> None:
    source = body("    _tables()\n") + "\n\ndef _tables():\n    op.create_table('x')\n"
    assert read(source).kind == "schema"


def test_multi_database_template_reads_upgrade_functions_per_engine() -> None:
    source = body('    globals()["upgrade_%s" % engine_name]()\n',
                  '    globals()["downgrade_%s" % engine_name]()\n') + (
        "\n\ndef upgrade_engine1():\n    op.create_table('x')\n"
        "\n\ndef downgrade_engine1():\n    op.drop_table('x')\n")
    parsed = read(source)
    assert (parsed.kind, parsed.downgrade_problem) == ("schema", None)


def test_batch_drop_column_names_table_and_column() -> None:
    parsed = read(body("    with op.batch_alter_table('users', schema=None) as batch_op:\n"
                       "        batch_op.drop_column('nickname')\n",
                       "    op.add_column('users', sa.Column('nickname', sa.String))\n"))
    assert [op.detail for op in parsed.operations] == ["drops column users.nickname"]


def test_batch_alter_column_type_names_table_and_column() -> None:
    parsed = read(body("    with op.batch_alter_table('users') as b:\n"
                       "        b.alter_column('age', type_=sa.BigInteger())\n",
                       "    op.alter_column('users', 'age', type_=sa.Integer())\n"))
    assert [op.detail for op in parsed.operations] == [
        "changes the type of users.age to sa.BigInteger()"]


# --- the graph, as Alembic judges it -------------------------------------------------------------


Ids = dict[str, tuple[str, ...]]


def graph(*revisions: tuple[str, tuple[str, ...]], depends: Ids | None = None,
          labels: Ids | None = None) -> ScriptGraph:
    built = ScriptGraph(location=None)
    for revision, downs in revisions:
        built.revisions[revision] = RevisionFile(
            revision, downs, Path(f"{revision}.py"),
            depends_on=(depends or {}).get(revision, ()),
            branch_labels=(labels or {}).get(revision, ()))
    judge(built)
    return built


def test_merged_branches_have_one_head() -> None:
    merged = graph(("a", ()), ("b", ("a",)), ("c", ("a",)), ("m", ("b", "c")))
    assert (merged.sound, merged.heads) == (True, ("m",))


def test_unmerged_branches_have_two_heads() -> None:
    assert graph(("a", ()), ("b", ("a",)), ("c", ("a",))).heads == ("b", "c")


def test_missing_parent_is_named_and_the_rest_still_judged() -> None:
    broken = graph(("a", ()), ("b", ("zzz",)))
    assert broken.missing == [("b", "zzz")]
    assert not broken.sound


def test_cycle_is_reported_by_alembic() -> None:
    looped = graph(("a", ("c",)), ("b", ("a",)), ("c", ("b",)))
    assert sorted(looped.cycle) == ["a", "b", "c"]


def test_depends_on_a_branch_label_resolves() -> None:
    labelled = graph(("a", ()), ("x", ()), ("b", ("a",)), labels={"x": ("billing",)},
                     depends={"b": ("billing",)})
    assert (labelled.missing, labelled.sound) == ([], True)


def test_illegal_revision_id_is_alembics_error_not_a_crash() -> None:
    refused = graph(("a-1", ()))
    assert refused.errors
    assert not refused.sound


# --- revisions in another tree -------------------------------------------------------------------


def test_revisions_in_a_tree_are_found_by_what_files_declare_not_where_they_are() -> None:
    texts = {"old/place/abc_x.py": body(), "app/models.py": "down_revision_note = 1\n",
             "app/util.py": "import os\n"}
    assert list(revisions_in_texts(texts)) == ["abc"]


def test_dropping_an_index_in_raw_sql_is_not_data_loss() -> None:
    parsed = read(body("    op.execute('DROP INDEX IF EXISTS ix_invalid')\n"
                       "    op.execute('CREATE INDEX CONCURRENTLY ix ON t (a)')\n",
                       "    op.execute('DROP INDEX ix')\n"))
    assert parsed.operations == ()
