"""Reading a small text file that someone else controls, without trusting what it is.

A ``.env``, ``.env.example`` or ``RUNBOOK.md`` is committed or dropped into the repository by
whoever can write there. Read naively, a FIFO blocks forever (predeploy hangs on ``open``), a
symlink to ``/dev/zero`` or a 5 GiB file exhausts memory, and a symlink to ``~/.ssh/id_rsa`` turns
the checks into a file reader for anything outside the repository. So every such file is read
here: only a regular file, inside the repository when it was named inside it, at most ``limit``
bytes, opened without following a link that appeared after the check and without blocking.
Anything else raises ``UnsafeFile`` naming the problem, which the caller turns into a finding.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ops.bounded import human_bytes
from ops.errors import OpsError

#: Larger than any real .env; small enough that reading it costs nothing.
MAX_TEXT_BYTES = 1 << 20
#: Larger than any real runbook (300 000 headings fit), still far from exhausting memory.
MAX_DOC_BYTES = 8 << 20


class UnsafeFile(OpsError):
    """A file that is not read: missing, not a regular file, outside the repository or too big.

    ``problem`` completes a sentence that starts with the file's name (``.env is a FIFO, not a
    regular file``); ``missing`` tells "does not exist" apart from the refusals.
    """

    def __init__(self, path: Path, problem: str, *, missing: bool = False) -> None:
        super().__init__(f"{path.name} {problem}")
        self.path = path
        self.problem = problem
        self.missing = missing


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def shown_path(root: Path, path: Path) -> str:
    """``path`` as a message shows it: relative to ``root`` (POSIX) when it lies inside, as
    written or once both are resolved (a checkout under a symlinked /tmp), else as given."""
    for inner, outer in ((path, root), (path.resolve(), root.resolve())):
        try:
            return inner.relative_to(outer).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def read_bytes_safely(root: Path, path: Path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The content of ``path``, a regular file of at most ``limit`` bytes.

    When ``path`` is named inside ``root`` it must also resolve inside ``root``: a symlink
    pointing out of the repository is refused (a path configured outside the repository, such
    as ``/etc/app/prod.env``, is the operator's explicit choice and only has to be a regular
    file). Never blocks, never reads more than ``limit + 1`` bytes.
    """
    # lexical on purpose: Path.resolve() would follow the very links being judged
    root = Path(os.path.abspath(root))  # noqa: PTH100
    named = Path(os.path.abspath(path))  # noqa: PTH100
    try:
        real = named.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        raise UnsafeFile(path, "is a symlink loop") from None
    if _inside(named, root) and not _inside(real, root.resolve()):
        how = "a symlink pointing" if named.is_symlink() else "a path that leads"
        raise UnsafeFile(path, f"is {how} outside the repository")
    try:
        info = real.stat()
    except FileNotFoundError:
        dangling = named.is_symlink()
        raise UnsafeFile(path, "is a symlink to a file that does not exist" if dangling
                         else "does not exist", missing=not dangling) from None
    except OSError as exc:
        raise UnsafeFile(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    _check(path, info, limit)
    try:
        # O_NONBLOCK: a FIFO swapped in after the stat cannot block the open; O_NOFOLLOW: nor
        # can a symlink swapped in for the resolved path.
        fd = os.open(real, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_NOFOLLOW
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnsafeFile(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as handle:
        _check(path, os.fstat(handle.fileno()), limit)  # what was opened, not what was stat'ed
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(path, f"grew past {human_bytes(limit)} while being read")
    return data


def _check(path: Path, info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(path, f"is {_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise UnsafeFile(path, f"is {human_bytes(info.st_size)}, over the "
                               f"{human_bytes(limit)} limit for a text file")


def read_text_safely(root: Path, path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    """:func:`read_bytes_safely`, decoded as UTF-8 (a BOM is dropped); ``UnsafeFile`` naming the
    line of the first bad byte when it is not UTF-8."""
    data = read_bytes_safely(root, path, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UnsafeFile(path, f"is not UTF-8 text (first bad byte on line {line})") from None
