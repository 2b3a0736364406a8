"""The audit log: one JSON line per deploy, rollback, scale, backup and restore.

Appended with one ``write`` on an O_APPEND descriptor (see ``ops.atomic.append_line``), so
concurrent writers never interleave and a crash never leaves half a line behind.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.atomic import append_line

ACTIONS = ("deploy", "rollback", "scale", "backup", "restore")


def _who() -> str:
    try:
        return os.environ.get("TMINUS_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


@dataclass
class AuditEvent:
    action: str
    env: str
    result: str  # success | failed | rolled_back | dry_run
    from_version: str | None = None
    to_version: str | None = None
    duration_s: float = 0.0
    skipped_checks: bool = False
    skipped_backup: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    who: str = field(default_factory=_who)
    host: str = field(default_factory=socket.gethostname)
    at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_json(self) -> str:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        return json.dumps(data, sort_keys=True, ensure_ascii=False)


def record(log_path: Path, event: AuditEvent) -> None:
    append_line(log_path, event.to_json())


def read_events(log_path: Path, *, env: str | None = None) -> Iterator[dict[str, Any]]:
    """Events oldest first; a corrupt line is skipped rather than hiding every later one."""
    if not log_path.is_file():
        return
    with log_path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and (env is None or event.get("env") == env):
                yield event
