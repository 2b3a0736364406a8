"""Who and when, as every record tminus writes states them.

The audit log, the deploy lock, the intent record, a sign-off, a backup, the VERSION file, the
manifest and the JSON report all carry a UTC time; the audit log, the lock and a sign-off also
name the person running tminus. One format and one rule for each, so the records agree.
"""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime

#: ISO 8601 in UTC to the second: ``2026-11-26T12:00:00Z``.
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_stamp(when: datetime | None = None) -> str:
    """``when`` (default: now) as ``2026-11-26T12:00:00Z``; ``when`` is a UTC time."""
    return (when or datetime.now(UTC)).strftime(UTC_FORMAT)


def operator() -> str:
    """Who runs tminus: ``TMINUS_USER`` when set (a CI job names the person who triggered it,
    not the runner's account), else the login name, else ``uid:N`` (a container without an
    /etc/passwd entry for its user)."""
    try:
        return os.environ.get("TMINUS_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
