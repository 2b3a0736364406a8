"""Reading ``.env`` files with python-dotenv, the parser the service itself uses."""

from __future__ import annotations

from pathlib import Path


def read_env(path: Path) -> dict[str, str]:
    """Key → value of a dotenv file; keys without a value map to ""; a missing file is empty."""
    from dotenv import dotenv_values

    if not path.is_file():
        return {}
    try:
        values = dotenv_values(path, encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError):
        return {}
    return {key: value or "" for key, value in values.items()}


def service_url(root: Path, env_file: Path, configured: str | None, key: str) -> str | None:
    """A connection URL for an environment: the configured one wins, else ``key`` in its .env.

    Backup, restore, migrations and the db_current check all resolve URLs here, so they always
    talk to the same database.
    """
    if configured:
        return configured
    path = env_file if env_file.is_absolute() else root / env_file
    return read_env(path).get(key) or None
