"""Section 2, Database Migrations, on real git repositories, a real Postgres and a real Redis.

Each test lays out a small Alembic project (the demo service's alembic.ini, env.py and template),
releases v0.1.0 with revision 0001, adds 0002 for v0.2.0, then plants one defect.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ops.checks import CheckContext
from ops.checks.migrations import run
from ops.config import Settings
from ops.report import Finding, Status
from ops.runtime.postgres import connect
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration

MAIN = Path(__file__).resolve().parents[2]
OFFLINE = {"DATABASE_URL", "REDIS_URL"}

SCHEMA = """# Schema changelog
## 0002 — add jobs
## 0001 — create users
"""
REDIS_SCHEMA = 'keys:\n  "session:{id}": hash\n  "queue:jobs": list\n'


def revision(rev: str, down: str | None, upgrade: str, downgrade: str) -> str:
    return (f'"""revision {rev}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
            f"depends_on = None\n\n\ndef upgrade() -> None:\n{upgrade}\n\n"
            f"def downgrade() -> None:\n{downgrade}")


R0001 = revision("0001", None, "    op.create_table('users', sa.Column('id', sa.Integer, "
                 "primary_key=True))\n", "    op.drop_table('users')\n")
R0002 = revision("0002", "0001", "    op.create_table('jobs', sa.Column('id', sa.Integer, "
                 "primary_key=True))\n", "    op.drop_table('jobs')\n")


def project(repo: GitRepo, first: str = R0001) -> GitRepo:
    """An Alembic project released as v0.1.0 (0001) and v0.2.0 (0002), HEAD at v0.2.0."""
    shutil.copy(MAIN / "alembic.ini", repo.path / "alembic.ini")
    (repo.path / "migrations/versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(MAIN / "migrations" / name, repo.path / "migrations" / name)
    repo.write(".gitignore", ".env\n__pycache__/\n")
    repo.write("migrations/versions/0001_create_users.py", first)
    repo.write("docs/SCHEMA.md", SCHEMA)
    repo.write("redis_schema.yaml", REDIS_SCHEMA)
    repo.commit("feat: users")
    repo.tag("v0.1.0")
    repo.write("migrations/versions/0002_add_jobs.py", R0002)
    repo.commit("feat: jobs")
    repo.tag("v0.2.0")
    return repo


def check(root: Path, version: str = "v0.2.0", **ops: Any) -> list[Finding]:
    ctx = CheckContext(root=root, settings=Settings.model_validate(ops),
                       version=parse_version(version))
    return list(run(ctx))


def by_id(findings: list[Finding], finding_id: str) -> list[Finding]:
    return [f for f in findings if f.id == finding_id]


def one(findings: list[Finding], finding_id: str) -> Finding:
    [finding] = by_id(findings, finding_id)
    return finding


def failing(findings: list[Finding], finding_id: str) -> Finding:
    [finding] = [f for f in by_id(findings, finding_id) if f.status is Status.FAIL]
    return finding


def problems(findings: list[Finding]) -> dict[str, Status]:
    """Every warn/fail by id (skips for DB/Redis without a URL are expected offline)."""
    return {f.id: f.status for f in findings if f.status in (Status.WARN, Status.FAIL)}


def write_env(repo: GitRepo, **values: str) -> None:
    repo.write(".env", "".join(f"{k}={v}\n" for k, v in values.items()))


# --- the files -----------------------------------------------------------------------------------


def test_clean_project_has_no_warning_or_failure(git_repo: GitRepo) -> None:
    findings = check(project(git_repo).path)
    assert problems(findings) == {}
    assert one(findings, "migrations.present").status is Status.PASS
    assert one(findings, "migrations.db_current").status is Status.SKIP


def test_checks_leave_no_bytecode_in_the_versions_folder(git_repo: GitRepo) -> None:
    check(project(git_repo).path)
    assert not (git_repo.path / "migrations/versions/__pycache__").exists()


def test_project_without_alembic_ini_skips_with_the_reason(git_repo: GitRepo) -> None:
    git_repo.write("README.md", "no database here\n")
    git_repo.commit()
    findings = check(git_repo.path)
    present = one(findings, "migrations.present")
    assert present.status is Status.SKIP
    assert "no alembic.ini" in present.message
    assert problems(findings) == {}


def test_configured_alembic_ini_that_is_missing_fails_present(git_repo: GitRepo) -> None:
    project(git_repo)
    findings = check(git_repo.path, migrations={"alembic_ini": "db/alembic.ini"})
    assert problems(findings) == {"migrations.present": Status.FAIL}
    assert "db/alembic.ini" in one(findings, "migrations.present").message


def test_alembic_ini_without_script_location_fails_present_naming_the_key(
        git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("alembic.ini", "[alembic]\nprepend_sys_path = .\n")
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.present": Status.FAIL}
    assert "script_location" in one(findings, "migrations.present").message


def test_garbage_alembic_ini_fails_present_without_a_traceback(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("alembic.ini", b"\x00\x01garbage = [\n no section header\n")
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.present": Status.FAIL}
    assert "alembic.ini" in one(findings, "migrations.present").message


@pytest.mark.parametrize("content", ["", "[loggers]\nkeys = root\n"])
def test_alembic_ini_without_alembic_section_fails_present(git_repo: GitRepo,
                                                           content: str) -> None:
    project(git_repo)
    git_repo.write("alembic.ini", content)
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.present": Status.FAIL}
    assert "has no [alembic] section" in one(findings, "migrations.present").message


def test_script_location_pointing_nowhere_fails_present(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("alembic.ini", "[alembic]\nscript_location = db/migrations\n")
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.present": Status.FAIL}
    assert "db/migrations" in one(findings, "migrations.present").message


def test_revision_file_with_a_syntax_error_fails_present_naming_the_file(
        git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0002_add_jobs.py", R0002 + "\ndef broken(:\n")
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.present": Status.FAIL}
    assert "0002_add_jobs.py" in one(findings, "migrations.present").message


def test_revision_importing_an_absent_application_is_read_without_running_it(
        git_repo: GitRepo, tmp_path: Path) -> None:
    project(git_repo)
    ran = tmp_path / "ran"
    git_repo.write("migrations/versions/0003_audit.py",
                   f"open({str(ran)!r}, 'w').write('executed')\n"
                   "from tminus_absent_app.models import TABLE\n"
                   + revision("0003", "0002", "    op.create_table(TABLE)\n",
                              "    op.drop_table(TABLE)\n"))
    git_repo.write("docs/SCHEMA.md", SCHEMA + "## 0003 — audit\n")
    git_repo.commit("feat: audit")
    before = list(sys.path)
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {}
    assert not ran.exists()
    assert sys.path == before


def test_untracked_migration_fails_committed_naming_the_file(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0003_more.py", revision(
        "0003", "0002", "    op.create_index('ix', 'jobs', ['id'])\n",
        "    op.drop_index('ix')\n"))
    git_repo.write("docs/SCHEMA.md", SCHEMA + "## 0003 — index\n")
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.committed": Status.FAIL}
    message = one(findings, "migrations.committed").message
    assert "migrations/versions/0003_more.py (untracked)" in message


def test_modified_committed_migration_fails_committed(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0002_add_jobs.py", R0002 + "\n# edited after the tag\n")
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.committed": Status.FAIL}
    assert "0002_add_jobs.py (modified)" in one(findings, "migrations.committed").message


def test_two_heads_fail_single_head_naming_both(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0003_branch.py", revision(
        "0003", "0001", "    op.create_index('ix', 'users', ['id'])\n",
        "    op.drop_index('ix')\n"))
    git_repo.write("docs/SCHEMA.md", SCHEMA + "## 0003 — index\n")
    git_repo.commit("feat: branch")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.single_head": Status.FAIL}
    message = one(findings, "migrations.single_head").message
    assert "0002" in message
    assert "0003" in message


def test_missing_down_revision_fails_chain_naming_file_and_revision(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0003_orphan.py", revision(
        "0003", "9999", "    op.create_index('ix', 'users', ['id'])\n",
        "    op.drop_index('ix')\n"))
    git_repo.write("docs/SCHEMA.md", SCHEMA + "## 0003 — index\n")
    git_repo.commit("feat: orphan")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.chain": Status.FAIL}
    message = one(findings, "migrations.chain").message
    assert "migrations/versions/0003_orphan.py" in message
    assert "'9999'" in message
    assert one(findings, "migrations.single_head").status is Status.SKIP


def test_revision_cycle_fails_chain_without_a_traceback(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0001_create_users.py",
                   R0001.replace("down_revision = None", "down_revision = '0002'"))
    git_repo.commit("fix: oops, a loop")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.chain": Status.FAIL}
    assert "cycle" in one(findings, "migrations.chain").message


def test_revision_id_defined_twice_fails_chain(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0002_copy.py", R0002)
    git_repo.commit("chore: copied a file")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.chain": Status.FAIL}
    assert "0002 is defined by more than one file" in one(findings, "migrations.chain").message


def test_changelog_configured_elsewhere_is_where_revisions_are_looked_up(
        git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("docs/DATABASE.md", "0001 users\n")
    findings = check(git_repo.path, migrations={"changelog": ["docs/DATABASE.md"]})
    assert problems(findings) == {"migrations.documented": Status.WARN}
    assert "docs/DATABASE.md" in one(findings, "migrations.documented").message


def test_bare_pass_downgrade_in_new_revision_fails_with_file_and_line(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0003_nodown.py", revision(
        "0003", "0002", "    op.create_index('ix', 'users', ['id'])\n", "    pass\n"))
    git_repo.write("docs/SCHEMA.md", SCHEMA + "## 0003 — index\n")
    git_repo.commit("feat: index")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.downgrade": Status.FAIL}
    message = one(findings, "migrations.downgrade").message
    assert message.startswith("migrations/versions/0003_nodown.py:")
    assert "bare pass" in message


def test_bare_pass_downgrade_already_released_is_not_judged_again(git_repo: GitRepo) -> None:
    project(git_repo, first=R0001.replace("    op.drop_table('users')\n", "    pass\n"))
    findings = check(git_repo.path)
    assert one(findings, "migrations.downgrade").status is Status.PASS


def test_destructive_operation_in_new_revision_warns_naming_it(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0003_drop.py", revision(
        "0003", "0002", "    op.drop_column('users', 'email')\n",
        "    op.add_column('users', sa.Column('email', sa.String))\n"))
    git_repo.write("docs/SCHEMA.md", SCHEMA + "## 0003 — drop email\n")
    git_repo.commit("feat!: drop email")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.destructive": Status.WARN}
    finding = one(findings, "migrations.destructive")
    source = (git_repo.path / "migrations/versions/0003_drop.py").read_text().splitlines()
    line = 1 + next(n for n, text in enumerate(source) if "drop_column" in text)
    assert f"migrations/versions/0003_drop.py:{line}:" in finding.message
    assert "drops column users.email" in finding.message


def test_acknowledged_destructive_operation_passes(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0003_drop.py", revision(
        "0003", "0002", "    op.drop_column('users', 'email')  # tminus: allow-destructive\n",
        "    op.add_column('users', sa.Column('email', sa.String))\n"))
    git_repo.write("docs/SCHEMA.md", SCHEMA + "## 0003 — drop email\n")
    git_repo.commit("feat!: drop email")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {}
    assert "1 acknowledged" in one(findings, "migrations.destructive").message


def test_undocumented_new_revision_warns_documented(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("migrations/versions/0003_index.py", revision(
        "0003", "0002", "    op.create_index('ix', 'users', ['id'])\n",
        "    op.drop_index('ix')\n"))
    git_repo.commit("feat: index")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.documented": Status.WARN}
    message = one(findings, "migrations.documented").message
    assert "revision 0003 (migrations/versions/0003_index.py)" in message
    assert "docs/SCHEMA.md" in message


# --- the live database ---------------------------------------------------------------------------


def set_db_revision(url: str, *revisions: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        for rev in revisions:
            conn.execute("INSERT INTO alembic_version VALUES (%s)", (rev,))


def test_database_one_behind_passes_with_one_pending(git_repo: GitRepo, pg_url: str) -> None:
    project(git_repo)
    set_db_revision(pg_url, "0001")
    write_env(git_repo, DATABASE_URL=pg_url)
    finding = one(check(git_repo.path), "migrations.db_current")
    assert finding.status is Status.PASS
    assert "1 pending migration(s) (0002)" in finding.message


def test_database_upgraded_by_alembic_is_up_to_date(git_repo: GitRepo, pg_url: str) -> None:
    project(git_repo)
    write_env(git_repo, DATABASE_URL=pg_url)
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE}
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=git_repo.path,
                   check=True, capture_output=True, env=env)
    finding = one(check(git_repo.path), "migrations.db_current")
    assert finding.status is Status.PASS
    assert "up to date" in finding.message


def test_unmigrated_database_has_every_revision_pending(git_repo: GitRepo, pg_url: str) -> None:
    project(git_repo)
    finding = one(check(git_repo.path, environments={"production": {"database_url": pg_url}}),
                  "migrations.db_current")
    assert finding.status is Status.PASS
    assert "2 pending migration(s)" in finding.message


def test_database_ahead_of_the_code_fails_db_current(git_repo: GitRepo, pg_url: str) -> None:
    project(git_repo)
    set_db_revision(pg_url, "0007")
    write_env(git_repo, DATABASE_URL=pg_url)
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.db_current": Status.FAIL}
    assert "0007" in one(findings, "migrations.db_current").message


def test_check_does_not_write_to_the_database(git_repo: GitRepo, pg_url: str) -> None:
    import psycopg

    project(git_repo)
    write_env(git_repo, DATABASE_URL=pg_url)
    check(git_repo.path)
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
    assert row == (None,)


def test_the_probe_session_refuses_writes(pg_url: str) -> None:
    """The checks look through postgres.connect(read_only=True): even a mistaken statement
    cannot change a production database."""
    import psycopg

    with connect(pg_url, timeout=3, autocommit=False, read_only=True) as conn, \
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("CREATE TABLE written_by_a_check (id int)")


def test_unreachable_database_skips_with_the_reason_and_no_password(git_repo: GitRepo) -> None:
    project(git_repo)
    url = "postgresql://app:pw-Zq81secret@127.0.0.1:9/app"  # pragma: allowlist secret
    write_env(git_repo, DATABASE_URL=url)
    finding = one(check(git_repo.path), "migrations.db_current")
    assert finding.status is Status.SKIP
    assert "127.0.0.1:9" in finding.message
    assert "pw-Zq81secret" not in finding.message


# --- Redis ---------------------------------------------------------------------------------------


def test_removed_redis_pattern_fails_naming_it(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("redis_schema.yaml", 'keys:\n  "session:{id}": hash\n')
    git_repo.commit("refactor: no more job queue")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.redis_schema": Status.FAIL}
    assert "'queue:jobs'" in failing(findings, "migrations.redis_schema").message


def test_retyped_redis_pattern_fails_naming_the_line(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("redis_schema.yaml", REDIS_SCHEMA.replace("list", "zset"))
    git_repo.commit("refactor: priority queue")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.redis_schema": Status.FAIL}
    message = failing(findings, "migrations.redis_schema").message
    assert "redis_schema.yaml:3" in message
    assert "list → zset" in message


def test_added_redis_pattern_passes(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("redis_schema.yaml", REDIS_SCHEMA + '  "lock:{name}": string\n')
    git_repo.commit("feat: locks")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {}
    compared = [f for f in by_id(findings, "migrations.redis_schema")
                if f.status is Status.PASS]
    assert "added lock:{name}" in compared[0].message


def test_malformed_redis_schema_fails_with_the_line(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.write("redis_schema.yaml", 'keys:\n  "session:{id}": hashmap\n')
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.redis_schema": Status.FAIL}
    assert "redis_schema.yaml:2" in one(findings, "migrations.redis_schema").message


def test_missing_redis_schema_skips_with_the_reason(git_repo: GitRepo) -> None:
    project(git_repo)
    git_repo.git("rm", "-q", "redis_schema.yaml")
    git_repo.commit("chore: no redis")
    finding = one(check(git_repo.path, "v0.3.0"), "migrations.redis_schema")
    assert finding.status is Status.SKIP
    assert "no redis_schema.yaml" in finding.message


def test_live_key_of_the_wrong_type_fails_naming_the_key(git_repo: GitRepo,
                                                         redis_url: str) -> None:
    import redis

    client: Any = redis.Redis.from_url(redis_url)
    client.hset("session:abc", "user", "1")
    client.set("session:bad", "oops")
    client.rpush("queue:jobs", "1")
    project(git_repo)
    write_env(git_repo, REDIS_URL=redis_url)
    findings = check(git_repo.path)
    assert problems(findings) == {"migrations.redis_schema": Status.FAIL}
    message = failing(findings, "migrations.redis_schema").message
    assert "session:bad is a string" in message
    assert "session:abc" not in message


def test_live_session_token_in_a_key_name_is_masked(git_repo: GitRepo, redis_url: str) -> None:
    import redis

    token = "tok_5b1d7c0e9a3f48d2b6e1"
    client: Any = redis.Redis.from_url(redis_url)
    client.set(f"session:{token}", "oops")
    project(git_repo)
    write_env(git_repo, REDIS_URL=redis_url)
    message = failing(check(git_repo.path), "migrations.redis_schema").message
    assert token not in message
    assert f"session:tok_…({len(token)} chars) is a string" in message


def test_live_keys_matching_the_schema_pass(git_repo: GitRepo, redis_url: str) -> None:
    import redis

    client: Any = redis.Redis.from_url(redis_url)
    client.hset("session:abc", "user", "1")
    client.rpush("queue:jobs", "1")
    client.set("unrelated", "x")
    project(git_repo)
    write_env(git_repo, REDIS_URL=redis_url)
    findings = check(git_repo.path)
    assert problems(findings) == {}
    live = by_id(findings, "migrations.redis_schema")[-1]
    assert "3 key(s) sampled, 2 match a pattern" in live.message


def test_live_sample_is_bounded_by_redis_sample(git_repo: GitRepo, redis_url: str) -> None:
    import redis

    client: Any = redis.Redis.from_url(redis_url)
    for number in range(30):
        client.hset(f"session:{number}", "user", "1")
    project(git_repo)
    write_env(git_repo, REDIS_URL=redis_url)
    live = by_id(check(git_repo.path, migrations={"redis_sample": 5}),
                 "migrations.redis_schema")[-1]
    assert live.status is Status.PASS
    assert "5 key(s) sampled (first 5)" in live.message


def test_unreachable_redis_skips_the_live_sample(git_repo: GitRepo) -> None:
    project(git_repo)
    write_env(git_repo, REDIS_URL="redis://:r3dis-pass@127.0.0.1:9/0")
    live = by_id(check(git_repo.path), "migrations.redis_schema")[-1]
    assert live.status is Status.SKIP
    assert "r3dis-pass" not in live.message


def test_versions_folder_with_revisions_only_in_subfolders_warns_and_skips_the_graph(
        git_repo: GitRepo) -> None:
    project(git_repo)
    for name in ("0001_create_users.py", "0002_add_jobs.py"):
        git_repo.git("mv", f"migrations/versions/{name}", f"migrations/versions/{name}.moved")
    (git_repo.path / "migrations/versions/postgresql").mkdir()
    for name in ("0001_create_users.py", "0002_add_jobs.py"):
        git_repo.git("mv", f"migrations/versions/{name}.moved",
                     f"migrations/versions/postgresql/{name}")
    git_repo.commit("chore: per-dialect folders")
    findings = check(git_repo.path, "v0.3.0")
    assert problems(findings) == {"migrations.present": Status.WARN}
    assert "postgresql/ (2)" in one(findings, "migrations.present").message
    assert one(findings, "migrations.single_head").status is Status.SKIP


def test_version_locations_setting_checks_the_named_folder(git_repo: GitRepo) -> None:
    project(git_repo)
    (git_repo.path / "migrations/versions/postgresql").mkdir()
    for name in ("0001_create_users.py", "0002_add_jobs.py"):
        git_repo.git("mv", f"migrations/versions/{name}",
                     f"migrations/versions/postgresql/{name}")
    git_repo.commit("chore: per-dialect folders")
    findings = check(git_repo.path, "v0.3.0", migrations={
        "version_locations": ["migrations/versions/postgresql"]})
    assert problems(findings) == {}
    assert one(findings, "migrations.chain").status is Status.PASS


def test_tags_that_are_not_versions_still_mark_what_was_released(git_repo: GitRepo) -> None:
    shutil.copy(MAIN / "alembic.ini", git_repo.path / "alembic.ini")
    (git_repo.path / "migrations/versions").mkdir(parents=True)
    shutil.copy(MAIN / "migrations/env.py", git_repo.path / "migrations/env.py")
    git_repo.write("migrations/versions/0001_create_users.py", R0001.replace(
        "    op.create_table('users'", "    op.drop_table('legacy')\n    op.create_table('users'"))
    git_repo.write("docs/SCHEMA.md", SCHEMA)
    git_repo.commit("feat: users")
    git_repo.tag("release-2024-12-20")
    git_repo.write("migrations/versions/0002_add_jobs.py", R0002)
    git_repo.commit("feat: jobs")
    findings = check(git_repo.path, "v1.0.0")
    assert one(findings, "migrations.destructive").status is Status.PASS
    assert "1 new revision(s) since release-2024-12-20" in one(
        findings, "migrations.downgrade").message


def test_mysql_database_url_skips_db_current_without_asking_to_change_it(
        git_repo: GitRepo) -> None:
    project(git_repo)
    write_env(git_repo, DATABASE_URL="mysql+pymysql://app:pw@127.0.0.1:1/app")
    finding = one(check(git_repo.path), "migrations.db_current")
    assert finding.status is Status.SKIP
    assert "mysql URL: tminus reads alembic_version from PostgreSQL only" in finding.message


@pytest.mark.timeout(20)
def test_env_file_that_is_a_fifo_skips_the_live_checks_and_keeps_the_rest(
        git_repo: GitRepo) -> None:
    project(git_repo)
    os.mkfifo(git_repo.path / ".env")
    findings = check(git_repo.path)
    assert one(findings, "migrations.db_current").status is Status.SKIP
    assert "FIFO" in one(findings, "migrations.db_current").message
    assert one(findings, "migrations.chain").status is Status.PASS
