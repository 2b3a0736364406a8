"""Image names from the compose file: compose's own default name, and tags a release cannot move.

A built service without ``image:`` is named by compose itself after the project (v2
``<project>-<service>``, v1 ``<project>_<service>``); tminus tags that name with the release. A
built service under a moving tag (``:latest``, no tag) can never be pinned, and the message says
which compose line fixes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.errors import UsageError
from ops.runtime.compose import COMPOSE_V1, COMPOSE_V2, Compose, default_image_name, image_namer
from ops.runtime.images import ServiceImage, release_tag_problem, service_images, split_reference

COMPOSE = """\
services:
  app:
    build: .
  worker:
    build: .
    image: "myorg/worker:${TMINUS_VERSION:-latest}"
  web:
    build: web
    image: myorg/web:latest
  api:
    build: api
    image: myorg/api
  db:
    build: db
    image: myorg/db:15
  redis:
    image: redis:7
"""


@pytest.fixture
def compose(tmp_path: Path) -> Path:
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    return path


def images(compose: Path, version: str = "v0.2.0") -> dict[str, ServiceImage]:
    return {i.service: i for i in service_images(
        compose, version, default_name=lambda s: default_image_name("shop-production", s))}


def test_compose_v2_names_a_built_image_project_dash_service() -> None:
    assert default_image_name("shop-production", "app", COMPOSE_V2) == "shop-production-app"


def test_docker_compose_v1_names_a_built_image_project_underscore_service() -> None:
    assert default_image_name("shop-production", "app", COMPOSE_V1) == "shop-production_app"


def test_a_compose_project_names_images_with_its_own_program() -> None:
    v1 = Compose("shop-production", Path("docker-compose.yml"), COMPOSE_V1)
    assert v1.default_image("worker") == "shop-production_worker"
    assert Compose("shop-staging", Path("x.yml")).default_image("worker") == "shop-staging-worker"


def test_a_namer_given_the_program_asks_no_compose_cli() -> None:
    assert image_namer("shop-production", COMPOSE_V1)("app") == "shop-production_app"


def test_built_service_without_image_gets_the_compose_name_tagged_with_the_release(
        compose: Path) -> None:
    app = images(compose)["app"]
    assert (app.reference, app.named_by_compose, app.versioned) == (
        "shop-production-app:v0.2.0", True, True)


def test_built_service_without_image_is_refused_only_when_no_naming_rule_is_given(
        compose: Path) -> None:
    with pytest.raises(UsageError, match="service 'app' builds an image without `image:`") as info:
        service_images(compose, "v0.2.0")
    assert info.value.hint == "add `image: <name>/app:${TMINUS_VERSION}`"


def test_image_with_the_version_variable_is_a_release_image(compose: Path) -> None:
    worker = images(compose)["worker"]
    assert (worker.reference, worker.versioned, worker.floating) == (
        "myorg/worker:v0.2.0", True, False)


@pytest.mark.parametrize("service", ["web", "api"])
def test_built_image_under_latest_or_no_tag_is_floating(compose: Path, service: str) -> None:
    image = images(compose)[service]
    assert (image.versioned, image.floating) == (False, True)


def test_built_image_under_a_fixed_tag_is_infrastructure_not_floating(compose: Path) -> None:
    db = images(compose)["db"]
    assert (db.versioned, db.floating) == (False, False)


def test_pulled_image_is_neither_a_release_image_nor_floating(compose: Path) -> None:
    redis = images(compose)["redis"]
    assert (redis.built, redis.versioned, redis.floating) == (False, False, False)


def test_latest_tag_message_says_the_release_tag_cannot_be_applied_and_the_fix(
        compose: Path) -> None:
    problem = release_tag_problem(images(compose)["web"], "v0.2.0", "docker-compose.yml")
    assert problem == (
        "web: `image: myorg/web:latest` has no ${TMINUS_VERSION}, so the release tag v0.2.0 "
        "cannot be applied (every build retags myorg/web:latest)",
        "write `image: myorg/web:${TMINUS_VERSION}` for web in docker-compose.yml")


def test_untagged_image_message_names_the_latest_tag_docker_gives_it(compose: Path) -> None:
    problem = release_tag_problem(images(compose)["api"], "v0.2.0", "compose.yaml")
    assert problem is not None
    message, hint = problem
    assert message.startswith("api: `image: myorg/api` has no ${TMINUS_VERSION}")
    assert "every build retags myorg/api:latest" in message
    assert hint == "write `image: myorg/api:${TMINUS_VERSION}` for api in compose.yaml"


def test_release_images_and_infrastructure_have_no_tag_problem(compose: Path) -> None:
    found = images(compose)
    assert [release_tag_problem(found[s], "v0.2.0", "c.yml") for s in ("app", "worker", "db")] \
        == [None, None, None]


@pytest.mark.parametrize(("reference", "parts"), [
    ("myorg/app:v1", ("myorg/app", "v1", None)),
    ("myorg/app", ("myorg/app", None, None)),
    ("registry:5000/myorg/app", ("registry:5000/myorg/app", None, None)),
    ("registry:5000/app:2@sha256:ab", ("registry:5000/app", "2", "sha256:ab")),
])
def test_split_reference_never_takes_a_registry_port_for_a_tag(
        reference: str, parts: tuple[str, str | None, str | None]) -> None:
    assert split_reference(reference) == parts
