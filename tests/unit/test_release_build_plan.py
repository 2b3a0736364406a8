"""Planning image builds from a compose file: what build would hand to the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.config import Settings
from ops.errors import BuildFailed, UsageError
from ops.release.build import (
    BuildPlan,
    build_images,
    describe_plan,
    parse_build_args,
    plan_builds,
)
from ops.runtime.compose import COMPOSE_V1, COMPOSE_V2
from ops.runtime.docker_engine import _build_progress
from ops.versioning import parse_version

V020 = parse_version("v0.2.0")

COMPOSE = """\
services:
  app:
    build:
      context: .
      dockerfile: service/Dockerfile
      args:
        BASE_IMAGE: "${TMINUS_BASE_IMAGE:-python:3.12-slim}"
        APP_VERSION: "${TMINUS_VERSION:-latest}"
    image: "demo/app:${TMINUS_VERSION:-latest}"
  worker:
    build:
      context: ./worker
      target: runtime
      args: ["MODE=batch", "FROM_ENV"]
    image: "demo/worker:${TMINUS_VERSION}"
  db:
    build: db
    image: "demo/db:15"
  redis:
    image: "redis:7"
"""


@pytest.fixture
def compose(tmp_path: Path) -> Path:
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    return path


def test_default_plan_builds_only_images_whose_reference_carries_the_version(
        compose: Path) -> None:
    plans = plan_builds(compose, "v0.2.0", environ={})
    assert [(p.service, p.reference) for p in plans] == [
        ("app", "demo/app:v0.2.0"), ("worker", "demo/worker:v0.2.0")]


def test_context_and_dockerfile_resolve_relative_to_the_compose_file(compose: Path) -> None:
    app, worker = plan_builds(compose, "v0.2.0", environ={})
    assert app.context == compose.parent.resolve()
    assert app.dockerfile == "service/Dockerfile"
    assert worker.context == (compose.parent / "worker").resolve()
    assert worker.dockerfile == "Dockerfile"
    assert worker.target == "runtime"


def test_build_args_are_interpolated_from_the_environment_and_the_version(
        compose: Path) -> None:
    app = plan_builds(compose, "v0.2.0", environ={"TMINUS_BASE_IMAGE": "local/base:1"})[0]
    assert app.args == {"BASE_IMAGE": "local/base:1", "APP_VERSION": "v0.2.0"}


def test_unset_variable_falls_back_to_the_compose_default(compose: Path) -> None:
    app = plan_builds(compose, "v0.2.0", environ={})[0]
    assert app.args["BASE_IMAGE"] == "python:3.12-slim"


def test_list_form_args_take_bare_keys_from_the_environment_only_when_set(
        compose: Path) -> None:
    assert plan_builds(compose, "v0.2.0", environ={})[1].args == {"MODE": "batch"}
    with_env = plan_builds(compose, "v0.2.0", environ={"FROM_ENV": "x"})[1]
    assert with_env.args == {"MODE": "batch", "FROM_ENV": "x"}


def test_command_line_build_args_override_the_compose_file(compose: Path) -> None:
    app = plan_builds(compose, "v0.2.0", environ={},
                      build_args={"BASE_IMAGE": "tminus/debian-base:bookworm"})[0]
    assert app.args["BASE_IMAGE"] == "tminus/debian-base:bookworm"


def test_every_image_is_labelled_with_the_release_version_and_service(compose: Path) -> None:
    app = plan_builds(compose, "v0.2.0", environ={})[0]
    assert app.labels == {"tminus.version": "v0.2.0", "tminus.service": "app"}


def test_a_named_service_with_a_fixed_reference_can_be_built_but_is_not_a_release_image(
        compose: Path) -> None:
    (db,) = plan_builds(compose, "v0.2.0", services=["db"], environ={})
    assert (db.reference, db.versioned) == ("demo/db:15", False)


def test_unknown_service_is_a_usage_error_listing_buildable_ones(compose: Path) -> None:
    with pytest.raises(UsageError, match="unknown service 'ap'") as info:
        plan_builds(compose, "v0.2.0", services=["ap"], environ={})
    assert info.value.hint == "services that build an image: app, worker, db"


def test_service_without_build_section_is_a_usage_error(compose: Path) -> None:
    with pytest.raises(UsageError, match=r"service 'redis' does not build an image"):
        plan_builds(compose, "v0.2.0", services=["redis"], environ={})


def test_remote_build_context_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text('services:\n  app:\n    build: "https://github.com/x/y.git"\n'
                    '    image: "x/app:${TMINUS_VERSION}"\n')
    with pytest.raises(UsageError, match="remote build contexts are not supported"):
        plan_builds(path, "v1.0.0", environ={})


def test_dry_run_command_is_the_equivalent_docker_build() -> None:
    plan = BuildPlan("app", "demo/app:v0.2.0", Path("/src"), "service/Dockerfile",
                     {"BASE_IMAGE": "b:1"}, {"tminus.version": "v0.2.0"}, target="rt")
    assert plan.argv(no_cache=True) == [
        "docker", "build", "--tag", "demo/app:v0.2.0", "--file", "/src/service/Dockerfile",
        "--build-arg", "BASE_IMAGE=b:1", "--label", "tminus.version=v0.2.0",
        "--target", "rt", "--no-cache", "/src"]


def test_build_arg_flag_without_equals_sign_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--build-arg 'BASE_IMAGE': expected KEY=VALUE"):
        parse_build_args(["BASE_IMAGE"])


def test_build_arg_flag_keeps_equals_signs_in_the_value() -> None:
    assert parse_build_args(["OPTS=a=b"]) == {"OPTS": "a=b"}


def test_an_error_line_in_the_engine_stream_fails_the_build_naming_the_service() -> None:
    chunk = {"errorDetail": {"message": "COPY failed: file not found"},
             "error": "COPY failed: file not found"}
    with pytest.raises(BuildFailed, match="app: COPY failed: file not found"):
        _build_progress("app", chunk, lambda _line: None)


def test_stream_lines_are_passed_on_without_blank_lines() -> None:
    seen: list[str] = []
    _build_progress("app", {"stream": "Step 1/2 : FROM scratch\n\n ---> abc\n"}, seen.append)
    assert seen == ["Step 1/2 : FROM scratch", " ---> abc"]


def test_dry_run_line_masks_build_args_whose_names_look_secret() -> None:
    token = "ghp_" + "x" * 36
    plan = BuildPlan("app", "demo/app:v1.0.0", Path("/src"), "Dockerfile",
                     {"NPM_TOKEN": token, "BASE_IMAGE": "b:1"})
    line = describe_plan(plan)
    assert token not in line
    assert "NPM_TOKEN=ghp_…(40 chars)" in line
    assert "BASE_IMAGE=b:1" in line


# --- services compose names itself, and moving tags ----------------------------------------------

UNNAMED = """\
services:
  app:
    build: .
  web:
    build: web
    image: myorg/web:latest
"""


def shop(tmp_path: Path, compose_text: str) -> Path:
    """A project directory called ``shop``, so its production compose project is
    ``shop-production``."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "docker-compose.yml").write_text(compose_text)
    return root


def test_service_without_image_is_planned_under_the_compose_name_and_release_tag(
        tmp_path: Path) -> None:
    compose = shop(tmp_path, UNNAMED) / "docker-compose.yml"
    (app,) = plan_builds(compose, "v0.2.0", environ={},
                         default_name=lambda s: f"shop-production-{s}")
    assert (app.service, app.reference, app.versioned) == (
        "app", "shop-production-app:v0.2.0", True)


def test_build_names_images_after_the_project_tminus_deploys_with_v2(tmp_path: Path) -> None:
    root = shop(tmp_path, UNNAMED)
    result = build_images(root, Settings(), V020, dry_run=True, program=COMPOSE_V2)
    assert [p.reference for p in result.plans] == ["shop-production-app:v0.2.0"]


def test_build_names_images_with_an_underscore_under_docker_compose_v1(tmp_path: Path) -> None:
    root = shop(tmp_path, UNNAMED)
    result = build_images(root, Settings(), V020, dry_run=True, program=COMPOSE_V1)
    assert [p.reference for p in result.plans] == ["shop-production_app:v0.2.0"]


def test_configured_project_name_names_the_images(tmp_path: Path) -> None:
    root = shop(tmp_path, UNNAMED)
    settings = Settings.model_validate(
        {"environments": {"production": {"project_name": "storefront"}}})
    result = build_images(root, settings, V020, dry_run=True, program=COMPOSE_V2)
    assert [p.reference for p in result.plans] == ["storefront-app:v0.2.0"]


def test_moving_tag_beside_a_release_image_is_built_over_with_a_note(tmp_path: Path) -> None:
    root = shop(tmp_path, UNNAMED)
    said: list[str] = []
    result = build_images(root, Settings(), V020, dry_run=True, program=COMPOSE_V2,
                          on_line=said.append)
    assert result.notes == [
        "web: `image: myorg/web:latest` has no ${TMINUS_VERSION}, so the release tag v0.2.0 "
        "cannot be applied (every build retags myorg/web:latest) (write `image: "
        "myorg/web:${TMINUS_VERSION}` for web in docker-compose.yml)"]
    assert said == [f"note: {result.notes[0]}"]


def test_only_moving_tags_refuse_the_build_naming_the_fix(tmp_path: Path) -> None:
    root = shop(tmp_path, "services:\n  web:\n    build: web\n    image: myorg/web:latest\n")
    with pytest.raises(UsageError, match=r"nothing to build for v0.2.0: web: `image: "
                       r"myorg/web:latest` has no \$\{TMINUS_VERSION\}") as info:
        build_images(root, Settings(), V020, dry_run=True)
    assert info.value.hint == ("write `image: myorg/web:${TMINUS_VERSION}` for web in "
                               "docker-compose.yml")


def test_a_moving_tag_image_named_with_service_is_built_without_a_note(tmp_path: Path) -> None:
    root = shop(tmp_path, UNNAMED)
    result = build_images(root, Settings(), V020, services=["web"], dry_run=True,
                          program=COMPOSE_V2)
    assert ([(p.reference, p.versioned) for p in result.plans], result.notes) == (
        [("myorg/web:latest", False)], [])


def test_a_t1_manifest_is_left_as_it_is_with_a_note(tmp_path: Path) -> None:
    root = shop(tmp_path, UNNAMED)
    manifest = root / "releases" / "manifest_v0.2.0.json"
    manifest.parent.mkdir()
    manifest.write_text('{"version": "v0.2.0", "git": {"commit": "abc123de"}, '
                        '"artifacts": {"models": "tagged"}, "docker_images": {"app": "a:v0.2.0"}}')
    result = build_images(root, Settings(), V020, dry_run=True, program=COMPOSE_V2)
    assert result.manifest_note == ("manifest_v0.2.0.json is in the T-1 scripts' layout (image "
                                    "references, no ids): it is left as it is and no ids are "
                                    "recorded")
