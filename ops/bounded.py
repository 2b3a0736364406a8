"""Untrusted input within bounds: how much is read, how deep it nests, how much a message shows.

A release file, a backup's metadata or a configuration file is written by whoever can write to
the repository, so its size and shape are an attacker's choice. Read naively, a 50 MB name is
copied into every message and report, a list of 300 000 names becomes a 300 000-name sentence,
``[[[[…`` 100 000 deep is a ``RecursionError`` and a FIFO blocks the reader forever. The
helpers here keep each of those bounded in one place, so every reader applies the same limits
and every message lists the same way ("3 missing: a, b, c and 299 997 more").
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Names shown in a one-line message before "and N more".
SHOWN = 3
#: Characters of one name shown in a message; the rest is replaced by its length.
NAME_CHARS = 120
#: Characters of one listed item that is itself a sentence (names in it already clipped).
SENTENCE_CHARS = 400
#: Nesting deeper than this is refused: no file tminus reads nests more than a few levels.
MAX_DEPTH = 64


class Refused(ValueError):
    """Input that is not read or not parsed because it exceeds a bound, or is not a file.

    The message completes a sentence that starts with the input's name
    (``manifest_v0.2.0.json is 50.0 MiB, over the 32.0 MiB limit``).
    """


def count(number: int) -> str:
    """``299 997``: digits grouped by a space, readable in any locale."""
    return f"{number:,}".replace(",", " ")


def clipped(text: str, limit: int = NAME_CHARS) -> str:
    """``text`` itself when short; else its start and its length, so a 50 MB name costs a line.

    Control characters are shown escaped: a name is data, never a terminal instruction.
    """
    shown = text if len(text) <= limit else text[:limit]
    if not shown.isprintable():
        shown = shown.encode("unicode_escape").decode("ascii")
    return shown if len(text) <= limit else f"{shown}…({count(len(text))} chars)"


def listed(items: Iterable[str], shown: int = SHOWN, sep: str = ", ",
           chars: int = NAME_CHARS) -> str:
    """``a, b, c and 299 997 more``: the first ``shown`` items (each clipped), then a count.

    The caller says what the items are ("missing …"); this only keeps the enumeration to a line
    whatever the number or length of the items. Items that are sentences are joined with
    ``sep="; "`` and clipped at ``chars=SENTENCE_CHARS``.
    """
    items = list(items)
    head = sep.join(clipped(item, chars) for item in items[:shown])
    rest = len(items) - shown
    return f"{head} and {count(rest)} more" if rest > 0 else head


def human_bytes(size: float) -> str:
    """``512 B``, ``2.0 KiB``, ``47.7 MiB``: binary units (1 KiB = 1024 B), as ``du -h`` counts;
    every size tminus shows (limits, backups, checkpoints) is written this way."""
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"


def read_capped(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Opened without blocking (a FIFO would hang a plain ``open``) and checked with ``fstat`` on
    the descriptor, so what is judged is what is read; never reads more than ``limit + 1``
    bytes, so a file that grows meanwhile cannot exhaust memory either. Raises ``Refused`` for a
    file that is not regular or too big, ``OSError`` (``FileNotFoundError`` included, which
    callers treat as absence) when it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused("is not a regular file")
        if info.st_size > limit:
            raise Refused(f"is {human_bytes(info.st_size)}, over the {human_bytes(limit)} limit")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"grew past the {human_bytes(limit)} limit while being read")
    return data


def loads_json(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that cannot recurse without end: nesting beyond ``max_depth`` is
    ``Refused``, and so is a number Python will not convert (over 4 300 digits).

    ``json.JSONDecodeError`` still reports malformed JSON, with its line, as callers expect.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise Refused(f"nests deeper than {max_depth} levels") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int(...) of a 5 000-digit number
        raise Refused(f"holds a value Python will not read ({clipped(str(exc), 60)})") from None
    if depth_exceeds(data, max_depth):
        raise Refused(f"nests deeper than {max_depth} levels")
    return data


def depth_exceeds(data: Any, max_depth: int = MAX_DEPTH) -> bool:
    """Whether lists and objects in ``data`` nest deeper than ``max_depth`` (walked with an
    explicit stack: the check itself must not be what recurses too deep)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
