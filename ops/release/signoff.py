"""A release's sign-off record: ``releases/signoff_vX.Y.Z.json``, one signature per role.

Sign-offs are part of the release's record, not of the checklist's Markdown (``ops.checklist``
renders them every time, so regenerating the checklist never loses a signature). They live here,
among the release files, because the release_tag check must know the record's path too.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from ops.atomic import atomic_write_text
from ops.config import Settings, resolve_path
from ops.errors import UsageError
from ops.stamps import operator, utc_stamp

ROLES = ("engineer", "reviewer")
_MAX_NAME = 80


@dataclass(frozen=True)
class Signoff:
    role: str
    name: str
    signed_at: str
    recorded_by: str = ""
    predeploy_result: str = ""
    env: str = ""  # the environment whose predeploy the signer saw


@dataclass
class SignoffRecord:
    """The release's sign-off record: one signature per role, the latest one wins."""

    version: str
    signoffs: list[Signoff] = field(default_factory=list)

    def by_role(self) -> dict[str, Signoff]:
        return {s.role: s for s in self.signoffs}


def signoff_path(root: Path, settings: Settings, version: str) -> Path:
    return resolve_path(root, settings.release.releases_dir) / f"signoff_{version}.json"


def read_signoffs(path: Path, version: str) -> SignoffRecord:
    if not path.is_file():
        return SignoffRecord(version)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        signoffs = [Signoff(**{k: str(v) for k, v in entry.items()
                               if k in Signoff.__dataclass_fields__})
                    for entry in data.get("signoffs", [])]
    except (ValueError, TypeError, AttributeError, OSError) as exc:
        raise UsageError(f"{path} is not a readable sign-off record ({type(exc).__name__})",
                         hint="repair it from git history or remove it and sign again") from None
    return SignoffRecord(str(data.get("version", version)), signoffs)


def clean_name(raw: str, role: str) -> str:
    """A signer's name as it may appear in Markdown and JSON: printable, one line, short."""
    name = " ".join(raw.split())
    if not name:
        raise UsageError(f"--sign-{role} needs a name")
    if len(name) > _MAX_NAME or not name.isprintable() or any(c in name for c in "<>`|"):
        raise UsageError(f"--sign-{role}: a name is at most {_MAX_NAME} printable characters "
                         "without < > ` |")
    return name


def sign(record: SignoffRecord, names: dict[str, str], *, result: str, env: str = "",
         now: datetime | None = None) -> SignoffRecord:
    """Add the given role → name signatures; a reviewer must not be the engineer."""
    when = utc_stamp(now)
    who = f"{operator()}@{socket.gethostname()}"
    current = record.by_role()
    for role, raw in names.items():
        current[role] = Signoff(role, clean_name(raw, role), when, who, result, env)
    engineer, reviewer = current.get("engineer"), current.get("reviewer")
    if engineer and reviewer and engineer.name.casefold() == reviewer.name.casefold():
        raise UsageError(f"{reviewer.name} cannot review their own release",
                         hint="the reviewer signs off a release another engineer prepared")
    return SignoffRecord(record.version, [current[r] for r in ROLES if r in current])


def write_signoffs(path: Path, record: SignoffRecord) -> None:
    data = {"version": record.version, "signoffs": [asdict(s) for s in record.signoffs]}
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
