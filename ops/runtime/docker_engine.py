"""The Docker engine through the docker SDK: connecting, building and reading images.

Connection failures become ``DockerUnavailable`` (exit 3) with the socket that was tried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import BuildFailed, DockerUnavailable


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


def build_image(client: Any, *, name: str, context: Path, dockerfile: str, tag: str,
                args: Mapping[str, str], labels: Mapping[str, str], target: str | None,
                no_cache: bool, on_line: Callable[[str], None]) -> ImageInfo:
    """Build ``tag`` from ``context`` and return the image the engine made.

    The docker SDK's low-level ``api.build`` streams the engine's progress; each line goes to
    ``on_line`` as it comes. ``name`` (the service) starts every error: ``BuildFailed`` (exit 1)
    for a refused or failed build, ``DockerUnavailable`` (exit 3) when the engine stops answering.
    """
    from docker.errors import APIError, DockerException  # docker is deferred on purpose

    try:
        stream = client.api.build(
            path=str(context), dockerfile=dockerfile, tag=tag, buildargs=dict(args) or None,
            labels=dict(labels), target=target, nocache=no_cache, rm=True, forcerm=True,
            pull=False, decode=True)
        for chunk in stream:
            _build_progress(name, chunk, on_line)
    except APIError as exc:
        raise BuildFailed(f"{name}: the engine refused the build: "
                          f"{exc.explanation or exc}") from None
    except (DockerException, OSError) as exc:
        raise DockerUnavailable(f"{name}: the engine stopped answering during the build "
                                f"({type(exc).__name__})") from None
    info = image_info(client, tag)
    if info is None:
        raise BuildFailed(f"{name}: the build finished but {tag} is missing")
    return info


def _build_progress(name: str, chunk: Mapping[str, Any], on_line: Callable[[str], None]) -> None:
    if "error" in chunk or "errorDetail" in chunk:
        detail = chunk.get("errorDetail") or {}
        message = str(chunk.get("error") or detail.get("message") or "build failed").strip()
        raise BuildFailed(f"{name}: {message.splitlines()[-1] if message else message}")
    text = chunk.get("stream")
    if text:
        for line in str(text).splitlines():
            if line.strip():
                on_line(line.rstrip())
        return
    if chunk.get("status"):
        on_line(" ".join(str(chunk[k]) for k in ("status", "progress") if chunk.get(k)))


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
