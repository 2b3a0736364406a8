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
