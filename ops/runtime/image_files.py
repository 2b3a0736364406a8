"""Read text files out of a local image without running it.

A container is *created* from the image (never started: nothing in it executes), the folder is
copied out of it as a tar stream (the engine's archive API), and the container is removed. What
comes back is bounded in size and count, and only regular files are read: the deploy uses it to
parse a release's Alembic revision files (parsed, never imported) and learn its migration heads.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import PurePosixPath
from typing import Any

#: A migrations folder is a few hundred kilobytes; anything far bigger is not read.
MAX_BYTES = 8 * 1024 * 1024
MAX_FILES = 2000


def image_identity(client: Any, reference: str) -> tuple[str, str | None] | None:
    """The image's id (content-addressed: its files never change under it) and its WORKDIR
    (where relative paths of the repository land in most Dockerfiles); None when absent."""
    import docker.errors

    try:
        image = client.images.get(reference)
    except docker.errors.DockerException:
        return None
    workdir = ((image.attrs or {}).get("Config") or {}).get("WorkingDir")
    return str(image.id), (str(workdir) if workdir else None)


def image_texts(client: Any, reference: str, folder: str, *, suffix: str = ".py"
                ) -> dict[str, str] | None:
    """{posix path under ``folder``: text} of the files ending in ``suffix``; None when the
    image has no such folder, it is too large, or the engine refuses."""
    import docker.errors

    try:
        container = client.containers.create(reference, command=["true"], entrypoint=[],
                                             network_disabled=True,
                                             labels={"tminus.purpose": "read-files"})
    except docker.errors.DockerException:
        return None
    try:
        stream, _stat = container.get_archive(folder)
        raw = bytearray()
        for chunk in stream:
            raw += chunk
            if len(raw) > MAX_BYTES:
                return None
    except docker.errors.DockerException:
        return None
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
    return tar_texts(bytes(raw), suffix)


def tar_texts(raw: bytes, suffix: str) -> dict[str, str] | None:
    found: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive:
                if len(found) >= MAX_FILES:
                    return None
                if not member.isreg() or not member.name.endswith(suffix):
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                found[str(PurePosixPath(member.name))] = handle.read().decode("utf-8", "replace")
    except tarfile.TarError:
        return None
    return found
