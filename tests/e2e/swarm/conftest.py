"""Session-wide infrastructure of the swarm specs: the registry (and, later, the swarms).

Each piece is made once per session and removed at its end whatever happened, so a failing spec
leaves no process, certificate, namespace or firewall rule behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need
from tests.e2e.swarm.harness import TestRegistry, start_registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestRegistry]:
    """A TLS + htpasswd registry on loopback, trusted by the host engine through certs.d."""
    for tool in ("docker-registry", "htpasswd", "openssl"):
        if shutil.which(tool) is None:
            need(f"{tool} is not installed (apt-get install docker-registry apache2-utils)")
    started = start_registry(Path(tmp_path_factory.mktemp("registry")))
    try:
        yield started
    finally:
        started.stop()
