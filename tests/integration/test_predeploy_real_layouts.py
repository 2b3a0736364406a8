"""predeploy on repositories shaped like real services, prepared by a careful team.

The layouts (tests/layouts.py) reproduce what public projects look like: a project template
with ``backend/alembic.ini``, Flask-Migrate, a large app with 300 revisions and no ini. On each,
predeploy must flag nothing — no failure and no warning — and must never run the service's code:
every revision file and env.py there would write a canary file and print if imported.

The Docker engine is pointed at a socket that does not exist, so ``artifacts.images`` skips (the
team's images are not built in these tests); everything else runs for real.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.checks import CheckContext, run_predeploy
from ops.config import Settings
from ops.report import Report, Status, render_json
from ops.versioning import parse_version
from tests import layouts
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

Builder = Callable[[GitRepo], layouts.Layout]
CAREFUL_TEAMS: dict[str, Builder] = {
    "template-backend-ini": layouts.template_project,
    "flask-migrate": layouts.flask_migrate_project,
    "large-app-no-ini": layouts.large_app_without_ini,
}


@pytest.fixture(autouse=True)
def no_engine_and_a_canary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    canary = tmp_path / "canary"
    canary.mkdir()
    monkeypatch.setenv(layouts.CANARY_ENV, str(canary))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    return canary


def predeploy(root: Path, version: str, **ops: object) -> Report:
    ctx = CheckContext(root=root, settings=Settings.model_validate(ops),
                       version=parse_version(version))
    return run_predeploy(ctx)


def flagged(report: Report) -> list[str]:
    return [f"{f.id} {f.status.value}: {f.message}" for s in report.sections
            for f in s.findings if f.status in (Status.WARN, Status.FAIL)]


def finding(report: Report, finding_id: str) -> list[str]:
    return [f"{f.status.value}: {f.message}" for s in report.sections for f in s.findings
            if f.id == finding_id]


@pytest.mark.parametrize("layout", CAREFUL_TEAMS)
def test_careful_team_repository_passes_predeploy_with_nothing_flagged(
        git_repo: GitRepo, layout: str) -> None:
    built = CAREFUL_TEAMS[layout](git_repo)
    report = predeploy(built.root, built.version)
    assert flagged(report) == []


@pytest.mark.parametrize("layout", CAREFUL_TEAMS)
def test_predeploy_never_imports_revision_files_or_env_py(
        git_repo: GitRepo, layout: str, no_engine_and_a_canary: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    built = CAREFUL_TEAMS[layout](git_repo)
    capfd.readouterr()
    predeploy(built.root, built.version)
    out, err = capfd.readouterr()
    assert list(no_engine_and_a_canary.iterdir()) == []
    assert "was imported" not in out + err


@pytest.mark.parametrize("layout", CAREFUL_TEAMS)
def test_report_holds_no_value_from_the_env_file(git_repo: GitRepo, layout: str) -> None:
    built = CAREFUL_TEAMS[layout](git_repo)
    report = predeploy(built.root, built.version)
    assert layouts.ENV_SECRET not in render_json(report)


@pytest.mark.parametrize("layout", CAREFUL_TEAMS)
def test_only_revisions_added_since_the_previous_tag_are_new(git_repo: GitRepo,
                                                             layout: str) -> None:
    built = CAREFUL_TEAMS[layout](git_repo)
    report = predeploy(built.root, built.version)
    [downgrade] = finding(report, "migrations.downgrade")
    assert f"{len(built.new_revisions)} new revision(s) since {built.previous}" in downgrade


def test_previous_release_tag_without_v_prefix_is_the_comparison_base(git_repo: GitRepo) -> None:
    built = layouts.template_project(git_repo)
    report = predeploy(built.root, built.version)
    assert any("since 0.1.0" in line for line in finding(report, "migrations.destructive"))


def test_migrations_under_backend_ini_are_found_and_named(git_repo: GitRepo) -> None:
    built = layouts.template_project(git_repo)
    [present] = finding(predeploy(built.root, built.version), "migrations.present")
    assert "backend/app/alembic/versions" in present
    assert "backend/alembic.ini [alembic] script_location = app/alembic" in present


def test_flask_migrate_ini_without_script_location_means_its_own_folder(
        git_repo: GitRepo) -> None:
    built = layouts.flask_migrate_project(git_repo)
    [present] = finding(predeploy(built.root, built.version), "migrations.present")
    assert present.startswith("pass: 5 revision(s) in migrations/versions")
    assert "Flask-Migrate" in present


def test_three_hundred_revisions_without_ini_form_one_chain_with_a_merge(
        git_repo: GitRepo) -> None:
    built = layouts.large_app_without_ini(git_repo)
    report = predeploy(built.root, built.version)
    [chain] = finding(report, "migrations.chain")
    assert "(300 revision(s), 1 merge(s), no cycles)" in chain
    assert finding(report, "migrations.single_head") == [
        f"pass: single head {built.new_revisions[-1]}"]


def shallow_clone(source: Path, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{source}", str(target)],
                   check=True, capture_output=True)
    (target / ".env").write_text((source / ".env").read_text())
    (target / ".env").chmod(0o600)
    return target


def test_shallow_clone_warns_once_instead_of_calling_every_revision_new(
        git_repo: GitRepo, tmp_path: Path) -> None:
    built = layouts.template_project(git_repo)
    clone = shallow_clone(built.root, tmp_path / "ci-checkout")
    report = predeploy(clone, built.version)
    assert [line.split(":")[0] for line in flagged(report)] == [
        "release_tag.monotonic warn", "migrations.history warn"]
    assert "history is shallow: fetch tags to compare" in finding(report, "migrations.history")[0]


def test_shallow_clone_judges_no_revision_as_new(git_repo: GitRepo, tmp_path: Path) -> None:
    built = layouts.template_project(git_repo)
    clone = shallow_clone(built.root, tmp_path / "ci-checkout")
    report = predeploy(clone, built.version)
    assert finding(report, "migrations.destructive") == [
        "skip: new revisions unknown: the history is shallow (migrations.history)"]


def test_destructive_revision_added_since_the_tag_names_table_and_column(
        git_repo: GitRepo) -> None:
    built = layouts.flask_migrate_project(git_repo)
    repo = built.repo
    rev = layouts.Rev("d1e2f3a4b5c6", built.new_revisions[-1], "drop user email",
                      "    with op.batch_alter_table('user', schema=None) as batch_op:\n"
                      "        batch_op.drop_column('email')\n",
                      "    with op.batch_alter_table('user', schema=None) as batch_op:\n"
                      "        batch_op.add_column(sa.Column('email', sa.String(120)))\n",
                      typed=False)
    layouts.write_revisions(repo, "migrations/versions", [rev])
    repo.commit("Drop e-mail again")
    report = predeploy(built.root, "v1.2.0")
    [warning] = finding(report, "migrations.destructive")
    assert "revision d1e2f3a4b5c6 drops column user.email (drop_column)" in warning


def test_release_notes_count_only_the_revisions_added_between_the_tags(
        git_repo: GitRepo) -> None:
    from ops.release.notes import release_notes

    built = layouts.large_app_without_ini(git_repo)
    notes = release_notes(built.root, Settings(), from_ref=built.previous, to_ref=built.version)
    assert "20 migrations" in notes


def test_json_report_of_a_careful_team_is_parseable_and_passes(git_repo: GitRepo) -> None:
    built = layouts.template_project(git_repo)
    data = json.loads(render_json(predeploy(built.root, built.version)))
    assert (data["result"], data["summary"]["fail"], data["summary"]["warn"]) == ("passed", 0, 0)


def test_revision_ids_named_in_tests_are_not_secrets(git_repo: GitRepo) -> None:
    built = layouts.large_app_without_ini(git_repo, count=40, modules=2)
    named = ", ".join(repr(r) for r in built.revisions[-8:])
    git_repo.write("tests/test_migrations.py",
                   f"STEPS = [{named}]\n\n\ndef test_upgrade_steps() -> None:\n"
                   "    assert len(STEPS) == 8\n")
    git_repo.commit("test: migration steps")
    report = predeploy(built.root, "v3.1.0")
    [hardcoded] = finding(report, "secrets.hardcoded")
    assert hardcoded.startswith("pass:")


def test_release_notes_count_only_the_configured_version_locations(git_repo: GitRepo) -> None:
    from ops.release.notes import release_notes

    built = layouts.large_app_without_ini(git_repo, count=30, modules=1)
    folder = "src/bigapp/db/migrations/versions"
    copy = layouts.Rev("c0ffee000001", None, "sqlite copy", "    pass\n", "    pass\n")
    layouts.write_revisions(git_repo, f"{folder}/../sqlite_versions", [copy])
    git_repo.commit("a second dialect's tree")
    settings = Settings.model_validate({"migrations": {"version_locations": [folder]}})
    notes = release_notes(built.root, settings, from_ref=built.previous, to_ref="HEAD")
    assert "20 migrations" in notes
    assert "c0ffee000001" not in notes
