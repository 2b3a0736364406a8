"""Reading ``.env`` files with python-dotenv, the parser the service itself uses.

Every read goes through ``ops.runtime.files``: a FIFO, a device, a symlink out of the repository
or a file over 1 MiB is refused, never opened for reading. A line that is not ``KEY=value`` — a
bare word, a key that is no variable name, the body of an unquoted multi-line private key — is
kept as a line number only: its text may be a piece of a secret, so it never becomes a "key"
that a message could print.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from ops.runtime.files import MAX_TEXT_BYTES, UnsafeFile, read_bytes_safely, read_text_safely

#: A variable name as shells, compose and python-dotenv's users write them (dots and dashes
#: included, for Spring- and Java-style keys).
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
#: A line of a PEM body (base64, padding only at the end) or one of its ``Name: value`` headers.
_PEM_BODY = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z][A-Za-z0-9-]*: .*")


def read_env(path: Path, root: Path | None = None) -> dict[str, str]:
    """Key → value of a dotenv file; keys without a value map to ""; a missing file is empty.

    ``root`` is the repository (default: the file's directory). A file that is not safe to read
    (see ``ops.runtime.files``) raises ``UnsafeFile``; one that is not UTF-8 reads as empty.
    """
    from dotenv import dotenv_values

    try:
        text = read_text_safely(root or path.parent, path)
    except UnsafeFile as exc:
        if exc.missing or "UTF-8" in exc.problem:
            return {}
        raise
    values = dotenv_values(stream=io.StringIO(text))
    return {key: value or "" for key, value in values.items()}


def service_url(root: Path, env_file: Path, configured: str | None, key: str) -> str | None:
    """A connection URL for an environment: the configured one wins, else ``key`` in its .env.

    Backup, restore, migrations and the db_current check all resolve URLs here, so they always
    talk to the same database.
    """
    if configured:
        return configured
    path = env_file if env_file.is_absolute() else root / env_file
    return read_env(path, root).get(key) or None


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str = field(repr=False)  # a bare ``KEY`` line without ``=`` is a bad line instead
    line: int


@dataclass
class EnvFile:
    """A dotenv file as python-dotenv parses it, with line numbers, before any interpolation.

    ``problem`` says why the file could not be read as text at all (missing, binary, not UTF-8,
    or refused: a FIFO, a device, a symlink out of the repository, too large); ``bad_lines`` are
    the lines that are not ``KEY=value``, by number only. Values stay in memory only.
    """

    path: Path
    entries: list[EnvEntry] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)
    problem: str | None = None
    exists: bool = True

    def values(self) -> dict[str, str]:
        """Key → value, the last assignment winning as in python-dotenv."""
        return {e.key: e.value for e in self.entries}


def parse_env_file(path: Path, root: Path | None = None,
                   limit: int = MAX_TEXT_BYTES) -> EnvFile:
    """Parse ``path`` with dotenv's own parser; never raises for bad content.

    ``root`` is the repository the file must stay inside (default: the file's directory).
    """
    from dotenv.parser import parse_stream

    result = EnvFile(path)
    try:
        data = read_bytes_safely(root or path.parent, path, limit)
    except UnsafeFile as exc:
        result.exists = not exc.missing
        result.problem = exc.problem
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
    in_pem = False
    for binding in parse_stream(io.StringIO(text, newline="")):
        line, raw = binding.original.line, binding.original.string.strip()
        if in_pem:
            if "-----END" in raw or _PEM_BODY.fullmatch(raw):
                result.bad_lines.append(line)
                in_pem = "-----END" not in raw
                continue
            in_pem = False  # the body ended without its END line: this line is itself again
        if "-----BEGIN" in raw and "-----END" not in raw and not _quoted(binding.value, raw):
            result.bad_lines.append(line)  # an unquoted multi-line key: this line and its body
            in_pem = True
        elif binding.error or (binding.key is not None and (
                binding.value is None or KEY.fullmatch(binding.key) is None)):
            result.bad_lines.append(line)
        elif binding.key is not None:
            result.entries.append(EnvEntry(binding.key, binding.value or "", line))
    return result


def _quoted(value: str | None, raw: str) -> bool:
    """A quoted value holds its whole multi-line key (python-dotenv reads it to the quote)."""
    return value is not None and raw.partition("=")[2].lstrip()[:1] in {"'", '"'}
