"""Run argv lists built by the pure command builders, or print them under ``--dry-run``.

Never ``shell=True``: arguments that came from a user (versions, service names, paths) stay single
argv elements, so no value can become a second command.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
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
