"""Release notes: reading commit messages, Alembic scripts and VERSION files (no git needed)."""

from __future__ import annotations

from ops.release.notes import (
    OTHER,
    Change,
    CheckpointChange,
    Migration,
    ReleaseNotes,
    parse_message,
    parse_migration,
    parse_version_file,
    render_notes,
)

# --- commit messages -----------------------------------------------------------------------------


def test_conventional_feature_with_scope_is_a_feature() -> None:
    assert parse_message("feat(api): add /version endpoint") == (
        "Features", "api", "add /version endpoint", None)


def test_type_is_case_insensitive_and_aliases_map_to_their_group() -> None:
    assert parse_message("Fix: trailing slash")[0] == "Fixes"
    assert parse_message("bugfix: off by one")[0] == "Fixes"
    assert parse_message("tests: cover rollback")[0] == "Tests"


def test_each_known_type_lands_in_its_heading() -> None:
    groups = {kind: parse_message(f"{kind}: x")[0]
              for kind in ("perf", "refactor", "docs", "build", "ci", "chore")}
    assert groups == {"perf": "Performance", "refactor": "Refactoring", "docs": "Documentation",
                      "build": "Build", "ci": "CI", "chore": "Chores"}


def test_non_conventional_message_is_other_with_its_whole_first_line() -> None:
    assert parse_message("Update the worker loop\n\nlonger text") == (
        OTHER, None, "Update the worker loop", None)


def test_unknown_type_keeps_the_whole_header_under_other() -> None:
    group, _, subject, _ = parse_message("wip: half a thing")
    assert (group, subject) == (OTHER, "wip: half a thing")


def test_bang_marks_a_breaking_change_with_the_subject() -> None:
    assert parse_message("feat(api)!: drop /v1")[3] == "drop /v1"


def test_breaking_change_footer_text_is_the_breaking_note() -> None:
    message = ("refactor: rename queue\n\nBody text.\n\nBREAKING CHANGE: the queue key is now\n"
               "queue:jobs; drain the old one first\nRefs: #12\n")
    assert parse_message(message)[3] == "the queue key is now queue:jobs; drain the old one first"


def test_breaking_footer_counts_on_a_non_conventional_message_too() -> None:
    group, _, _, breaking = parse_message("Rework auth\n\nBREAKING-CHANGE: tokens expire")
    assert (group, breaking) == (OTHER, "tokens expire")


def test_colon_without_space_is_not_conventional() -> None:
    assert parse_message("fix:nospace")[0] == OTHER


# --- Alembic scripts -----------------------------------------------------------------------------


MIGRATION = '''"""add jobs

Revision ID: 0002
"""
revision = "0002"
down_revision = "0001"
'''


def test_migration_revision_parent_and_message_come_from_the_script() -> None:
    assert parse_migration(MIGRATION, "migrations/versions/0002_add_jobs.py") == Migration(
        "0002", "add jobs", "0001", "migrations/versions/0002_add_jobs.py")


def test_typed_assignments_are_read_too() -> None:
    text = 'revision: str = "abc"\ndown_revision: str | None = None\n'
    migration = parse_migration(text, "v/abc_x.py")
    assert migration is not None
    assert (migration.revision, migration.down_revision, migration.message) == (
        "abc", None, "abc_x")


def test_a_file_without_revision_or_with_bad_syntax_is_not_a_migration() -> None:
    assert parse_migration("import os\n", "v/helpers.py") is None
    assert parse_migration("def (:\n", "v/broken.py") is None


# --- VERSION files -------------------------------------------------------------------------------


def test_version_file_hash_lines_are_read_and_header_lines_ignored() -> None:
    digest = "a" * 64
    text = (f"# comment\nversion: v0.2.0\ncommit: {'b' * 40}\ndate: 2026-11-26\n\n"
            f"ranker.safetensors: {digest}\nsub/embedder.onnx: {digest.upper()}\n")
    assert parse_version_file(text) == {"ranker.safetensors": digest,
                                        "sub/embedder.onnx": digest}


# --- rendering -----------------------------------------------------------------------------------


def _notes(*changes: Change, checkpoints: list[CheckpointChange] | None = None) -> ReleaseNotes:
    return ReleaseNotes(from_ref="v0.1.0", to_ref="v0.2.0", to_commit="c" * 40,
                        date="2026-11-26", changes=list(changes), checkpoints=checkpoints)


def test_breaking_changes_come_before_every_group_and_not_again_in_it() -> None:
    text = render_notes(_notes(
        Change("1" * 40, "A", "2026-11-26", "Features", "add jobs"),
        Change("2" * 40, "A", "2026-11-26", "Features", "drop v1", "api", breaking="drop v1"),
    ))
    assert text.index("## ⚠ Breaking changes") < text.index("## Features")
    assert "- **api:** drop v1 (2222222)" in text
    assert text.count("drop v1") == 1


def test_groups_follow_the_conventional_order_with_other_last() -> None:
    text = render_notes(_notes(
        Change("1" * 40, "A", "d", OTHER, "Tweak things"),
        Change("2" * 40, "A", "d", "Fixes", "a fix"),
        Change("3" * 40, "A", "d", "Features", "a feature"),
    ))
    assert text.index("## Features") < text.index("## Fixes") < text.index("## Other")


def test_checkpoint_changes_show_old_and_new_hash_prefixes() -> None:
    text = render_notes(_notes(checkpoints=[
        CheckpointChange("ranker.safetensors", "a" * 64, "b" * 64),
        CheckpointChange("new.onnx", None, "c" * 64),
    ]))
    assert "- `ranker.safetensors`: `aaaaaaaaaaaa` → `bbbbbbbbbbbb` (changed)" in text
    assert "- `new.onnx`: — → `cccccccccccc` (added)" in text


def test_unknown_checkpoint_record_says_so_instead_of_claiming_no_change() -> None:
    text = render_notes(_notes(checkpoints=None))
    assert "No checkpoint files changed" not in text
    assert "compare the manifests by hand" in text
