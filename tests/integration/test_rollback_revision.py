"""rollback --with-db (db_rollback: downgrade) goes down to the Alembic head the release shipped:
the manifest create-release wrote names the commit, the revision files of that tree are parsed.

Round trip on a real git repository: create-release writes the manifest, rollback reads it.
"""

from __future__ import annotations

import json

import pytest

from ops.config import Settings
from ops.deploy.rollback import release_revision
from ops.release.create import create_release
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

SETTINGS = Settings()


def migration(revision: str, down: str | None) -> str:
    parent = f'"{down}"' if down else "None"
    return (f'"""step {revision}\n\nRevision ID: {revision}\n"""\n'
            f'revision = "{revision}"\ndown_revision = {parent}\n\n\n'
            "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n")


@pytest.fixture
def released(git_repo: GitRepo) -> GitRepo:
    """v0.1.0 ships revisions a1 → b2; v0.2.0 adds c3 on top."""
    repo = git_repo
    repo.write("alembic.ini", "[alembic]\nscript_location = migrations\n")
    repo.write("migrations/env.py", "# read, never imported\n")
    repo.write("migrations/versions/a1_users.py", migration("a1", None))
    repo.write("migrations/versions/b2_jobs.py", migration("b2", "a1"))
    repo.commit("feat: users and jobs")
    create_release(repo.path, SETTINGS, parse_version("v0.1.0"))
    repo.write("migrations/versions/c3_index.py", migration("c3", "b2"))
    repo.commit("feat(db): an index")
    create_release(repo.path, SETTINGS, parse_version("v0.2.0"))
    return repo


def test_rollback_reads_the_head_each_release_shipped_from_the_manifest_create_release_wrote(
        released: GitRepo) -> None:
    assert release_revision(released.path, SETTINGS, "v0.1.0") == "b2"
    assert release_revision(released.path, SETTINGS, "v0.2.0") == "c3"


def test_the_commit_the_manifest_names_is_what_is_read_even_without_the_tag(
        released: GitRepo) -> None:
    manifest = json.loads((released.path / "releases/manifest_v0.1.0.json").read_text())
    released.git("tag", "-d", "v0.1.0")
    assert manifest["git"]["commit"]  # the source commit the release was cut from
    assert release_revision(released.path, SETTINGS, "v0.1.0") == "b2"


def test_a_release_with_two_heads_or_no_release_at_all_names_no_revision(
        git_repo: GitRepo) -> None:
    git_repo.write("alembic.ini", "[alembic]\nscript_location = migrations\n")
    git_repo.write("migrations/versions/a1_users.py", migration("a1", None))
    git_repo.write("migrations/versions/b2_jobs.py", migration("b2", "a1"))
    git_repo.write("migrations/versions/x9_other.py", migration("x9", "a1"))
    git_repo.commit("feat: two branches")
    create_release(git_repo.path, SETTINGS, parse_version("v0.1.0"))
    assert release_revision(git_repo.path, SETTINGS, "v0.1.0") is None
    assert release_revision(git_repo.path, SETTINGS, "v0.9.0") is None


def test_revision_files_outside_the_configured_folders_do_not_count(git_repo: GitRepo) -> None:
    git_repo.write("alembic.ini", "[alembic]\nscript_location = migrations\n")
    git_repo.write("migrations/versions/a1_users.py", migration("a1", None))
    git_repo.write("vendor/other/versions/z1_theirs.py", migration("z1", None))
    git_repo.commit("feat: users, and a vendored project")
    create_release(git_repo.path, SETTINGS, parse_version("v0.1.0"))
    assert release_revision(git_repo.path, SETTINGS, "v0.1.0") == "a1"
