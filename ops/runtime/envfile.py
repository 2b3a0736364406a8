"""Reading ``.env`` files with python-dotenv, the parser the service itself uses."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str | None = field(repr=False)  # None: a bare ``KEY`` line without ``=``
    line: int


@dataclass
class EnvFile:
    """A dotenv file as python-dotenv parses it, with line numbers, before any interpolation.

    ``problem`` says why the file could not be read as text at all (missing, binary, not UTF-8);
    ``bad_lines`` are the lines python-dotenv could not parse. Values stay in memory only.
    """

    path: Path
    entries: list[EnvEntry] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)
    problem: str | None = None
    exists: bool = True

    def values(self) -> dict[str, str]:
        """Key → value, the last assignment winning as in python-dotenv."""
        return {e.key: e.value or "" for e in self.entries}


def parse_env_file(path: Path) -> EnvFile:
    """Parse ``path`` with dotenv's own parser; never raises for bad content."""
    import io

    from dotenv.parser import parse_stream

    result = EnvFile(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        result.exists = False
        result.problem = "does not exist"
        return result
    except OSError as exc:
        result.problem = f"cannot be read ({exc.strerror or type(exc).__name__})"
        return result
    if b"\0" in data:
        result.problem = "is binary, not a dotenv text file"
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.problem = f"is not UTF-8 text (first bad byte on line {line})"
        return result
    for binding in parse_stream(io.StringIO(text, newline="")):
        if binding.error:
            result.bad_lines.append(binding.original.line)
        elif binding.key is not None:
            result.entries.append(EnvEntry(binding.key, binding.value, binding.original.line))
    return result
