"""Which image each service runs at a version, read from the compose file.

The compose file is the single source of truth: a service with ``build:`` declares
``image: tminus-demo/app:${TMINUS_VERSION:-latest}``, so the reference at ``v0.2.0`` is what
``TMINUS_VERSION=v0.2.0 docker compose build`` would tag. build, the artifacts check, deploy and
rollback all ask here, so they can never disagree on a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import ConfigError, UsageError

VERSION_VARIABLE = "TMINUS_VERSION"
COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml")
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


@dataclass(frozen=True)
class ServiceImage:
    service: str
    reference: str
    built: bool  # True when the compose file builds it (so tminus tags and ships it)


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


def substitute(text: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` interpolation."""

    def one(match: re.Match[str]) -> str:
        value = variables.get(match["name"])
        if value:
            return value
        return match["default"] or ""

    return _VAR.sub(one, text)


def service_images(compose_file: Path, version: str) -> list[ServiceImage]:
    """Every service's image reference at ``version``, in the compose file's order."""
    services = load_compose(compose_file)["services"]
    images = []
    for name, raw_spec in services.items():
        spec = raw_spec or {}
        built = "build" in spec
        raw = spec.get("image")
        if raw is None:
            if not built:
                continue
            raise UsageError(f"{compose_file.name}: service {name!r} builds an image but names "
                             "none", hint=f"add `image: <name>/{name}:${{{VERSION_VARIABLE}}}`")
        images.append(ServiceImage(name, substitute(str(raw), {VERSION_VARIABLE: version}), built))
    return images
