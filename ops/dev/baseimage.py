"""The local Debian base image every demo image is built from.

No registry can be reached from the machines tminus is tested on, so ``FROM debian`` is not an
option: the base is made with ``debootstrap`` from the machine's own apt mirror (the one apt is
already allowed to use) and imported with ``docker import``. It is cached by tag: a second call
costs one ``images.get``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import ConfigError
from ops.runtime.docker_engine import image_info
from ops.runtime.process import Argv, Runner

BASE_TAG = "tminus/debian-base:bookworm"
SUITE = "bookworm"
#: What the demo's app, worker, proxy, db and redis images need, so none of them runs apt.
PACKAGES = (
    "ca-certificates", "python3", "python3-psycopg2", "python3-redis", "python3-alembic",
    "python3-sqlalchemy", "python3-dotenv", "python3-requests", "python3-yaml", "haproxy",
    "postgresql", "redis-server", "procps", "tini", "python3-prometheus-client", "prometheus",
)
#: The label that says which package list an image was made from: a cached image made from
#: another list is stale (a machine keeps its images across runs, so a tag alone would lie).
PACKAGES_LABEL = "tminus.base.packages"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
#: ``docker import`` produces an image without any config; these make it usable as a ``FROM``.
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)


def apt_mirror(etc_apt: Path = Path("/etc/apt"), suite: str = SUITE) -> str:
    """The Debian mirror apt is configured with (deb822 ``debian.sources`` or ``sources.list``).

    The security archive has a different layout and no full suite, so it is never chosen.
    """
    candidates: list[str] = []
    deb822 = etc_apt / "sources.list.d" / "debian.sources"
    if deb822.is_file():
        for stanza in re.split(r"\n\s*\n", deb822.read_text(encoding="utf-8")):
            fields = dict(_deb822_fields(stanza))
            suites = fields.get("suites", "").split()
            if "deb" in fields.get("types", "deb").split() and suite in suites:
                candidates += fields.get("uris", "").split()
    legacy = etc_apt / "sources.list"
    if legacy.is_file():
        for line in legacy.read_text(encoding="utf-8").splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                rest = [p for p in parts[1:] if not p.startswith("[")]
                if len(rest) >= 2 and rest[1] == suite:
                    candidates.append(rest[0])
    for uri in candidates:
        if "security" not in uri:
            return uri.rstrip("/")
    return FALLBACK_MIRROR


def _deb822_fields(stanza: str) -> list[tuple[str, str]]:
    fields = []
    for line in stanza.splitlines():
        if line.startswith("#") or ":" not in line or line[:1].isspace():
            continue
        key, value = line.split(":", 1)
        fields.append((key.strip().lower(), value.strip()))
    return fields


def debootstrap_argv(target: Path, mirror: str, *, suite: str = SUITE,
                     packages: tuple[str, ...] = PACKAGES) -> Argv:
    return ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite,
            str(target), mirror]


def tar_argv(rootfs: Path, archive: Path) -> Argv:
    return ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(archive), "."]


def packages_digest(packages: tuple[str, ...] = PACKAGES) -> str:
    """A short, order-free fingerprint of the package list, kept as a label on the image."""
    return hashlib.sha256(" ".join(sorted(packages)).encode()).hexdigest()[:16]


def import_argv(archive: Path, tag: str, *, packages: tuple[str, ...] = PACKAGES) -> Argv:
    argv = ["docker", "import"]
    for change in (*IMPORT_CHANGES, f"LABEL {PACKAGES_LABEL}={packages_digest(packages)}"):
        argv += ["--change", change]
    return [*argv, str(archive), tag]


@dataclass(frozen=True)
class BaseImageResult:
    tag: str
    built: bool
    duration_s: float
    mirror: str


def ensure_base_image(client: Any | None, runner: Runner, *, tag: str = BASE_TAG,
                      force: bool = False, mirror: str | None = None,
                      workdir: Path | None = None) -> BaseImageResult:
    """Build the base unless the engine already has ``tag`` made from today's package list
    (or ``force``)."""

    started = time.perf_counter()
    source = mirror or apt_mirror()
    cached = image_info(client, tag) if client is not None and not force else None
    if cached is not None and cached.labels.get(PACKAGES_LABEL) == packages_digest():
        return BaseImageResult(tag, False, time.perf_counter() - started, source)
    if not runner.dry_run and shutil.which("debootstrap") is None:
        raise ConfigError("debootstrap is not installed",
                          hint="apt-get install debootstrap (the CI script does)")
    scratch = Path(tempfile.mkdtemp(prefix="tminus-base-", dir=workdir))
    rootfs, archive = scratch / "rootfs", scratch / "rootfs.tar"
    try:
        runner.run(debootstrap_argv(rootfs, source), timeout=1800)
        if not runner.dry_run:
            _slim(rootfs)
        runner.run(tar_argv(rootfs, archive), timeout=600)
        runner.run(import_argv(archive, tag), timeout=600)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return BaseImageResult(tag, True, time.perf_counter() - started, source)


def _slim(rootfs: Path) -> None:
    """Downloaded .debs and apt lists are half the size and useless inside an image."""
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        directory = rootfs / junk
        if directory.is_dir():
            for entry in directory.iterdir():
                if entry.is_file():
                    entry.unlink()
