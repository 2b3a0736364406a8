"""Finding a project's migrations with no configuration, the way real layouts put them.

Folders and inis are written to a temp dir; discovery reads them with configparser and never
imports env.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.runtime.alembic_scripts import MigrationsUnreadable, discover


def script_dir(folder: Path) -> Path:
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text("raise SystemExit('env.py must never run')\n")
    (folder / "script.py.mako").write_text("")
    return folder


def ini(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def test_root_ini_with_relative_script_location(tmp_path: Path) -> None:
    script_dir(tmp_path / "migrations")
    ini(tmp_path / "alembic.ini", "[alembic]\nscript_location = migrations\n")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.version_dirs == (tmp_path / "migrations/versions",)


def test_ini_in_a_subfolder_resolves_relative_to_its_own_folder(tmp_path: Path) -> None:
    script_dir(tmp_path / "backend/app/alembic")
    ini(tmp_path / "backend/alembic.ini", "[alembic]\nscript_location = app/alembic\n")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.script_location == tmp_path / "backend/app/alembic"
    assert chosen.how == "backend/alembic.ini [alembic] script_location = app/alembic"


def test_here_interpolation_is_the_ini_folder(tmp_path: Path) -> None:
    script_dir(tmp_path / "svc/db")
    ini(tmp_path / "svc/alembic.ini", "[alembic]\nscript_location = %(here)s/db\n")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.script_location == tmp_path / "svc/db"


def test_flask_migrate_ini_without_script_location_is_its_own_folder(tmp_path: Path) -> None:
    script_dir(tmp_path / "migrations")
    ini(tmp_path / "migrations/alembic.ini", "[alembic]\n# template\n\n[loggers]\nkeys = root\n")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.script_location == tmp_path / "migrations"
    assert "Flask-Migrate" in chosen.how


def test_folder_with_env_py_and_versions_is_found_without_any_ini(tmp_path: Path) -> None:
    script_dir(tmp_path / "src/app/db/migrations")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.config_file is None
    assert chosen.script_location == tmp_path / "src/app/db/migrations"


def test_pyproject_tool_alembic_is_read(tmp_path: Path) -> None:
    script_dir(tmp_path / "alembic")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.alembic]\nscript_location = "%(here)s/alembic"\n')
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.section == "tool.alembic"


def test_configured_section_of_a_multi_section_ini_is_used(tmp_path: Path) -> None:
    script_dir(tmp_path / "tenant")
    script_dir(tmp_path / "core")
    ini(tmp_path / "alembic.ini",
        "[alembic]\nscript_location = core\n\n[tenant]\nscript_location = tenant\n")
    chosen = discover(tmp_path, section="tenant").chosen
    assert chosen is not None
    assert (chosen.script_location, chosen.section) == (tmp_path / "tenant", "tenant")


def test_ini_without_the_alembic_section_names_the_sections_it_has(tmp_path: Path) -> None:
    script_dir(tmp_path / "tenant")
    ini(tmp_path / "alembic.ini", "[tenant]\nscript_location = tenant\n")
    with pytest.raises(MigrationsUnreadable) as caught:
        discover(tmp_path)
    assert "no [alembic] section" in caught.value.message
    assert "[tenant]" in (caught.value.hint or "")


def test_version_locations_with_path_separator_are_all_read(tmp_path: Path) -> None:
    script_dir(tmp_path / "migrations")
    (tmp_path / "migrations/extra").mkdir()
    ini(tmp_path / "alembic.ini", "[alembic]\nscript_location = migrations\npath_separator = os\n"
                                  "version_locations = %(here)s/migrations/versions:"
                                  "%(here)s/migrations/extra\n")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.version_dirs == (tmp_path / "migrations/versions", tmp_path / "migrations/extra")


def test_two_setups_choose_one_and_keep_the_other_as_a_candidate(tmp_path: Path) -> None:
    script_dir(tmp_path / "billing/migrations")
    script_dir(tmp_path / "users/migrations")
    ini(tmp_path / "billing/alembic.ini", "[alembic]\nscript_location = migrations\n")
    ini(tmp_path / "users/alembic.ini", "[alembic]\nscript_location = migrations\n")
    found = discover(tmp_path)
    assert found.chosen is not None
    assert [o.script_location for o in found.others] == [tmp_path / "users/migrations"]


def test_test_fixtures_lose_to_the_real_migrations(tmp_path: Path) -> None:
    script_dir(tmp_path / "tests/fixtures/migrations")
    script_dir(tmp_path / "app/migrations")
    found = discover(tmp_path)
    assert found.chosen is not None
    assert found.chosen.script_location == tmp_path / "app/migrations"


def test_dependency_folders_are_never_searched(tmp_path: Path) -> None:
    script_dir(tmp_path / ".venv/lib/python3.11/site-packages/pkg/migrations")
    script_dir(tmp_path / "node_modules/x/migrations")
    found = discover(tmp_path)
    assert found.chosen is None
    assert "env.py and versions/" in found.searched


def test_configured_script_location_wins(tmp_path: Path) -> None:
    script_dir(tmp_path / "a")
    script_dir(tmp_path / "b")
    chosen = discover(tmp_path, script_location=Path("b")).chosen
    assert chosen is not None
    assert chosen.script_location == tmp_path / "b"


def test_fifo_in_place_of_the_ini_is_refused_not_read(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "alembic.ini")
    with pytest.raises(MigrationsUnreadable) as caught:
        discover(tmp_path)
    assert "not a valid alembic.ini" in caught.value.message


def test_package_resource_location_is_the_packages_folder_under_src(tmp_path: Path) -> None:
    script_dir(tmp_path / "src/shop/database/revisions/tenant")
    ini(tmp_path / "src/shop/alembic.ini",
        "[alembic]\nscript_location = shop:database/revisions/tenant\n")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.script_location == tmp_path / "src/shop/database/revisions/tenant"


def test_package_resource_with_a_colon_per_segment_is_joined_as_alembic_does(
        tmp_path: Path) -> None:
    script_dir(tmp_path / "src/flow/server/database/_migrations")
    ini(tmp_path / "src/flow/server/database/alembic.ini",
        "[alembic]\nscript_location = flow:server:database:_migrations\n")
    chosen = discover(tmp_path).chosen
    assert chosen is not None
    assert chosen.script_location == tmp_path / "src/flow/server/database/_migrations"


def test_multi_section_ini_without_alembic_offers_each_section_the_larger_first(
        tmp_path: Path) -> None:
    core = script_dir(tmp_path / "src/app/revisions/core")
    tenant = script_dir(tmp_path / "src/app/revisions/tenant")
    (core / "versions/a1_one.py").write_text('revision = "a1"\ndown_revision = None\n')
    for n in range(3):
        (tenant / f"versions/t{n}_x.py").write_text(f'revision = "t{n}"\ndown_revision = None\n')
    ini(tmp_path / "src/app/alembic.ini", "[core]\nscript_location = app:revisions/core\n\n"
                                          "[tenant]\nscript_location = app:revisions/tenant\n")
    found = discover(tmp_path)
    assert found.chosen is not None
    assert (found.chosen.section, [o.section for o in found.others]) == ("tenant", ["core"])


def test_configured_version_locations_replace_the_default_versions_folder(
        tmp_path: Path) -> None:
    script_dir(tmp_path / "migrations")
    (tmp_path / "migrations/versions/postgresql").mkdir()
    ini(tmp_path / "alembic.ini", "[alembic]\nscript_location = migrations\n")
    chosen = discover(tmp_path, version_locations=[Path("migrations/versions/postgresql")]).chosen
    assert chosen is not None
    assert chosen.version_dirs == (tmp_path / "migrations/versions/postgresql",)


def test_ini_whose_alembic_section_lacks_script_location_points_at_the_named_sections(
        tmp_path: Path) -> None:
    script_dir(tmp_path / "core")
    ini(tmp_path / "alembic.ini", "[alembic]\nprepend_sys_path = .\n\n[core]\n"
                                  "script_location = core\n")
    with pytest.raises(MigrationsUnreadable) as caught:
        discover(tmp_path)
    assert "ops.migrations.alembic_section" in (caught.value.hint or "")


def test_chosen_section_leaves_the_other_sections_tree_out_of_the_candidates(
        tmp_path: Path) -> None:
    script_dir(tmp_path / "src/app/core")
    script_dir(tmp_path / "src/app/tenant")
    ini(tmp_path / "src/app/alembic.ini", "[core]\nscript_location = app:core\n\n"
                                          "[tenant]\nscript_location = app:tenant\n")
    found = discover(tmp_path, section="tenant")
    assert found.chosen is not None
    assert (found.chosen.section, found.others) == ("tenant", [])
