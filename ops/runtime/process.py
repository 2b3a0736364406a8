"""Run argv lists built by the pure command builders, or print them under ``--dry-run``.

Never ``shell=True``: arguments that came from a user (versions, service names, paths) stay single
argv elements, so no value can become a second command.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ops.errors import DeployFailed, UnavailableError

Argv = list[str]


@dataclass(frozen=True)
class Completed:
    argv: Argv
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Runner:
    """Executes argv lists; under ``dry_run`` only records and prints them, in order."""

    dry_run: bool = False
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    echo: Callable[[str], None] | None = None
    history: list[Argv] = field(default_factory=list)
    out: TextIO = field(default_factory=lambda: sys.stdout)

    def run(self, argv: Sequence[str], *, check: bool = True, capture: bool = True,
            timeout: float | None = None, input_text: str | None = None) -> Completed:
        args = [str(a) for a in argv]
        self.history.append(args)
        if self.dry_run:
            self.out.write(f"[dry-run] {shlex.join(args)}\n")
            return Completed(args, 0)
        if self.echo:
            self.echo(shlex.join(args))
        if shutil.which(args[0]) is None:
            raise UnavailableError(f"{args[0]} is not installed or not on PATH")
        try:
            env = None if self.env is None else dict(self.env)
            proc = subprocess.run(args, cwd=self.cwd, env=env, capture_output=capture,
                                  text=True, timeout=timeout, input=input_text, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DeployFailed(f"{shlex.join(args[:3])} … timed out after {timeout:.0f}s") from exc
        done = Completed(args, proc.returncode, proc.stdout or "", proc.stderr or "")
        if check and not done.ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DeployFailed(f"`{shlex.join(args[:4])}…` exited {done.returncode}: {tail[0]}")
        return done


# --- signals -------------------------------------------------------------------------------------

#: Fault injection for the reliability suite: ``TMINUS_FAULT_AT=create-release:tagged`` kills the
#: process at that point with SIGKILL, as the OOM killer would; ``…:tagged:SIGINT`` (or SIGTERM)
#: sends that signal to the whole process group instead, as a terminal's Ctrl-C does. A test can
#: then prove the next run converges from exactly there. Unset, it costs one dict lookup.
FAULT_VARIABLE = "TMINUS_FAULT_AT"


class Background:
    """A client tool running in the background whose stderr is collected, stoppable at once."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        if shutil.which(argv[0]) is None:
            raise UnavailableError(f"{argv[0]} is not installed or not on PATH")
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        if self.proc.stderr is not None:
            self._stderr.append(self.proc.stderr.read())

    def wait(self, tick: Callable[[], object], every_s: float = 0.25) -> Completed:
        """Until the child exits (it is bounded by itself), calling ``tick`` every ``every_s``."""
        while True:
            try:
                returncode = self.proc.wait(timeout=every_s)
                break
            except subprocess.TimeoutExpired:
                tick()
        self._drain.join(timeout=5)
        stderr = b"".join(self._stderr).decode("utf-8", "replace")
        return Completed(self.argv, returncode, "", stderr)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; reaped either way (no orphan, no zombie)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def fault_point(where: str) -> None:
    """Deliver the configured signal when the fault is set to ``where``."""
    wanted = os.environ.get(FAULT_VARIABLE, "")
    point, _, name = wanted.partition(":SIG")
    if point != where:
        return
    if not name or name == "KILL":
        os.kill(os.getpid(), signal.SIGKILL)
    os.killpg(os.getpgrp(), getattr(signal, f"SIG{name}"))


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM while a short sequence that must not be cut in half runs, then
    raise KeyboardInterrupt once it is done (the interrupt is honoured, the state stays whole).

    Outside the main thread signals cannot be caught here; the sequence then runs as it is.
    """
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = {s: signal.signal(s, lambda signum, _frame: received.append(signum))
                    for s in held}
    except ValueError:  # not the main thread
        yield received
        return
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        raise KeyboardInterrupt
