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
