"""The Docker engine through the docker SDK: connecting, and reading images.

Connection failures become ``DockerUnavailable`` (exit 3) with the socket that was tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.errors import DockerUnavailable


def connect(timeout: float = 10.0) -> Any:
    """A ``docker.DockerClient`` that has answered a ping."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (DockerException, OSError) as exc:
        raise DockerUnavailable(
            f"no Docker engine answers ({type(exc).__name__})",
            hint="start dockerd, or set DOCKER_HOST to the engine's socket") from None
    return client


def try_connect(timeout: float = 5.0) -> tuple[Any | None, str | None]:
    """(client, None) or (None, reason): for checks that skip without an engine."""
    try:
        return connect(timeout), None
    except DockerUnavailable as exc:
        return None, exc.message


@dataclass(frozen=True)
class ImageInfo:
    reference: str
    id: str
    repo_digests: tuple[str, ...]
    labels: dict[str, str]
    created: str


def image_info(client: Any, reference: str) -> ImageInfo | None:
    """The local image's id and digests, or None when the engine does not have it."""
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(reference)
    except ImageNotFound:
        return None
    attrs = image.attrs
    return ImageInfo(reference, image.id, tuple(attrs.get("RepoDigests") or ()),
                     dict((attrs.get("Config") or {}).get("Labels") or {}),
                     str(attrs.get("Created", "")))


# --- containers: what is deployed is read from the engine's labels, never from a file -----------

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
VERSION_LABEL = "tminus.version"


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    service: str
    version: str | None
    status: str  # created | running | exited | ...
    health: str | None  # healthy | unhealthy | starting | None (no HEALTHCHECK)
    image: str
    number: int
    started_at: str

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def ready(self) -> bool:
        """Running, and healthy when the image declares a HEALTHCHECK."""
        return self.status == "running" and self.health in {None, "healthy"}


def _state(container: Any) -> ContainerState:
    attrs = container.attrs
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    state = attrs.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    try:
        number = int(labels.get(NUMBER_LABEL, "0"))
    except ValueError:
        number = 0
    return ContainerState(
        id=container.id, name=container.name, service=labels.get(SERVICE_LABEL, ""),
        version=labels.get(VERSION_LABEL), status=str(state.get("Status", "")),
        health=health, image=str((attrs.get("Config") or {}).get("Image", "")), number=number,
        started_at=str(state.get("StartedAt", "")))


def project_containers(client: Any, project: str, service: str | None = None, *,
                       include_stopped: bool = False) -> list[ContainerState]:
    """The project's containers (of one service), oldest replica number first."""
    labels = [f"{PROJECT_LABEL}={project}"]
    if service is not None:
        labels.append(f"{SERVICE_LABEL}={service}")
    found = client.containers.list(all=include_stopped, filters={"label": labels})
    states = [_state(c) for c in found]
    # one-off containers (compose run) are not replicas
    states = [s for s in states if "_run_" not in s.name and "-run-" not in s.name]
    return sorted(states, key=lambda s: (s.service, s.number, s.name))


def container_state(client: Any, container_id: str) -> ContainerState | None:
    from docker.errors import NotFound

    try:
        return _state(client.containers.get(container_id))
    except NotFound:
        return None


def deployed_versions(client: Any, project: str) -> dict[str, set[str]]:
    """service → the release versions its running containers carry in their labels."""
    versions: dict[str, set[str]] = {}
    for state in project_containers(client, project):
        if state.version:
            versions.setdefault(state.service, set()).add(state.version)
    return versions


def container_logs(client: Any, container_id: str, *, since_s: int) -> str:
    """The container's recent stdout and stderr, decoded leniently."""
    import time

    from docker.errors import NotFound

    try:
        raw = client.containers.get(container_id).logs(
            stdout=True, stderr=True, since=int(time.time()) - since_s, timestamps=False)
    except NotFound:
        return ""
    return bytes(raw).decode("utf-8", errors="replace")


def local_tags(client: Any, repository: str) -> list[str]:
    """The tags of ``repository`` present in the local engine (``tminus-demo/app`` → v0.1.0…)."""
    tags = []
    for image in client.images.list(name=repository):
        for ref in image.tags:
            repo, _, tag = ref.rpartition(":")
            if repo == repository and tag:
                tags.append(tag)
    return sorted(set(tags))
