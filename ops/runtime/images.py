"""Which image each service runs at a version, read from the compose file.

The compose file is the single source of truth: a service with ``build:`` declares
``image: tminus-demo/app:${TMINUS_VERSION:-latest}``, so the reference at ``v0.2.0`` is what
``TMINUS_VERSION=v0.2.0 docker compose build`` would tag. build, the artifacts check, deploy and
rollback all ask here, so they can never disagree on a name.

A service that builds without ``image:`` gets the name compose itself gives it
(``<project>-<service>``, or ``<project>_<service>`` with docker-compose v1), tagged with the
release: the caller passes that naming rule in (``ops.runtime.compose.image_namer``), since only
it knows the project and the compose CLI. A built service whose ``image:`` has no
``${TMINUS_VERSION}`` under a moving tag (``:latest``, or none) cannot carry the release tag;
``release_tag_problem`` says so and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import ConfigError, OpsError, UsageError

VERSION_VARIABLE = "TMINUS_VERSION"
COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml")
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")
#: Tags that every build moves: an image under one of them can never be pinned to a release.
MOVING_TAGS = frozenset({None, "latest"})

#: service name -> the image repository compose names it when ``image:`` is absent
DefaultName = Callable[[str], str]


@dataclass(frozen=True)
class ServiceImage:
    service: str
    reference: str
    built: bool  # True when the compose file builds it (so tminus tags and ships it)
    declared: str | None = None  # the ``image:`` as written; None when compose names the image

    @property
    def named_by_compose(self) -> bool:
        return self.built and self.declared is None

    @property
    def versioned(self) -> bool:
        """A release image: built, and its reference follows the release version."""
        if not self.built:
            return False
        return self.declared is None or VERSION_VARIABLE in {
            m["name"] for m in _VAR.finditer(self.declared)}

    @property
    def floating(self) -> bool:
        """Built under a tag every build moves, with no ``${TMINUS_VERSION}``: unpinnable.

        A fixed explicit tag (``db:15``, ``proxy:stable``) is infrastructure, not this.
        """
        if not self.built or self.versioned:
            return False
        _, tag, digest = split_reference(self.reference)
        return digest is None and tag in MOVING_TAGS


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag."""
    name, _, digest = reference.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest or None
    return name, None, digest or None


def release_tag_problem(image: ServiceImage, version: str,
                        compose_name: str) -> tuple[str, str] | None:
    """(message, hint) when ``image`` is built under a moving tag, else None."""
    if not image.floating:
        return None
    repository = split_reference(image.reference)[0]
    return (f"{image.service}: `image: {image.declared}` has no ${{{VERSION_VARIABLE}}}, so the "
            f"release tag {version} cannot be applied (every build retags {repository}:latest)",
            f"write `image: {repository}:${{{VERSION_VARIABLE}}}` for {image.service} in "
            f"{compose_name}")


def find_compose_file(root: Path, configured: Path | None = None) -> Path | None:
    if configured is not None:
        path = configured if configured.is_absolute() else root / configured
        return path if path.is_file() else None
    for name in COMPOSE_NAMES:
        if (root / name).is_file():
            return root / name
    return None


def load_compose(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path.name}: cannot be read as YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ConfigError(f"{path.name}: no `services:` mapping")
    return data


def compose_services(root: Path, configured: Path | None = None
                     ) -> tuple[Path, dict[Any, Any]] | None:
    """The compose file and its ``services:`` mapping, or None when there is no compose file or
    it cannot be read: for readers that only inform (rule-file mounts, incident mitigations)."""
    compose = find_compose_file(root, configured)
    if compose is None:
        return None
    try:
        services: dict[Any, Any] = load_compose(compose)["services"]
    except OpsError:
        return None
    return compose, services


def substitute(text: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` interpolation."""

    def one(match: re.Match[str]) -> str:
        value = variables.get(match["name"])
        if value:
            return value
        return match["default"] or ""

    return _VAR.sub(one, text)


def service_images(compose_file: Path, version: str, *,
                   default_name: DefaultName | None = None) -> list[ServiceImage]:
    """Every service's image reference at ``version``, in the compose file's order.

    A built service without ``image:`` is ``default_name(service):version``; a caller that cannot
    name it (it does not know the compose project) gets a UsageError instead of a guess.
    """
    services = load_compose(compose_file)["services"]
    images = []
    for name, raw_spec in services.items():
        spec = raw_spec if isinstance(raw_spec, dict) else {}
        built = "build" in spec
        raw = spec.get("image")
        if raw is not None:
            images.append(ServiceImage(name, substitute(str(raw), {VERSION_VARIABLE: version}),
                                       built, str(raw)))
        elif built and default_name is not None:
            images.append(ServiceImage(name, f"{default_name(str(name))}:{version}", True))
        elif built:
            raise UsageError(f"{compose_file.name}: service {name!r} builds an image without "
                             "`image:`, so no release tag selects it here",
                             hint=f"add `image: <name>/{name}:${{{VERSION_VARIABLE}}}`")
    return images
