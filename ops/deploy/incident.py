"""``invoke incident``: the T-1 document's incident procedure, recorded and answered.

The document's P0 procedure starts with one line appended to ``incidents/YYYYMMDD.log``; tminus
writes that line (one ``O_APPEND`` write, so two people declaring at once never interleave), an
audit line, and answers with what the severity promises (P0 at once, P1 within 15 minutes, P2
within 4 hours, P3 within 2 days) and the mitigations as exact commands for this environment.
The incidents folder keeps itself out of git (a ``.gitignore`` of ``*``): it is an operator's
log, not source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ops.atomic import make_ignored_dir
from ops.config import Settings, resolve_path
from ops.deploy.audit import AuditEvent, append_event_line, read_events, record
from ops.errors import UsageError
from ops.redact import mask_urls_in
from ops.runtime.compose import project_name
from ops.runtime.images import compose_services
from ops.stamps import operator

#: Severity → the response target the document sets for it.
RESPONSE = {"P0": "immediately", "P1": "within 15 minutes", "P2": "within 4 hours",
            "P3": "within 2 days"}
INCIDENTS_DIR = Path("incidents")
MAX_DESCRIPTION = 500


@dataclass
class Incident:
    severity: str
    env: str
    description: str
    at: datetime
    reporter: str
    log_file: Path
    running: str | None = None
    previous: str | None = None
    mitigations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def response(self) -> str:
        return RESPONSE[self.severity]

    def line(self) -> str:
        """The log line: when, severity, environment, who, and the description (JSON-quoted,
        so a newline or a quote in it cannot forge a second entry)."""
        return (f"{self.at:%Y-%m-%dT%H:%M:%SZ} {self.severity} incident env={self.env} "
                f"by={self.reporter} {json.dumps(self.description, ensure_ascii=False)}")

    def render(self) -> str:
        lines = [f"{self.severity} incident recorded in {self.log_file}: {self.description}",
                 f"response target: {self.response}"
                 + (" — page the on-call engineer now" if self.severity == "P0" else ""),
                 f"running: {self.running or 'unknown'}"
                 + (f" (previous release: {self.previous})" if self.previous else ""),
                 "mitigations:"]
        lines += [f"  - {what}: {command}" for what, command in self.mitigations]
        return "\n".join(lines) + "\n"


def parse_severity(value: str) -> str:
    severity = value.strip().upper()
    if severity not in RESPONSE:
        raise UsageError(f"unknown severity {value!r}", hint="use P0, P1, P2 or P3")
    return severity


def mitigations(root: Path, settings: Settings, env: str,
                previous: str | None) -> list[tuple[str, str]]:
    """The document's three mitigations as commands for this environment's services."""
    conf = settings.environment(env)
    project = project_name(root, env, conf.project_name)
    services = list(conf.services) or stack_services(root, conf.compose_file) or ["app", "worker"]
    flag = f" --env {env}"
    out = [("restart a failing service (compose; tminus has no restart task)",
            f"docker compose -p {project} restart {services[0]}"),
           ("roll back to the previous release",
            f"invoke rollback {previous or 'previous'}{flag}"),
           ("roll back code and database (data damaged)",
            f"invoke rollback {previous or 'previous'}{flag} --with-db")]
    for name in services:
        count = conf.services[name].replicas if name in conf.services else 1
        out.append((f"scale down the failing service {name}",
                    f"invoke scale {name}={max(count - 1, 1)}{flag}"))
    return out


def stack_services(root: Path, configured: Path | None) -> list[str]:
    """The services the compose file builds (the ones a release changes), else all of them: the
    mitigations must name services this stack has, not the document's ``app`` and ``worker``.
    No compose file, or one that cannot be read, names none."""
    found = compose_services(root, configured)
    if found is None:
        return []
    services = found[1]
    built = [str(name) for name, spec in services.items()
             if isinstance(spec, dict) and "build" in spec]
    return built or [str(name) for name in services]


def record_incident(root: Path, settings: Settings, description: str, severity: str, env: str,
                    *, now: datetime | None = None) -> Incident:
    """Append the incident to today's log and the audit log; what to answer with."""
    severity = parse_severity(severity)
    settings.environment(env)  # an unknown environment is a usage error before anything
    text = mask_urls_in(re.sub(r"\s+", " ", description).strip())
    if not text:
        raise UsageError("an incident needs a description", hint='invoke incident "what broke"')
    if len(text) > MAX_DESCRIPTION:
        text = text[:MAX_DESCRIPTION] + "…"
    at = (now or datetime.now(UTC)).astimezone(UTC)
    folder = root / INCIDENTS_DIR
    make_ignored_dir(folder)
    log = resolve_path(root, settings.audit_log)
    running, previous = versions_from(log, env)
    incident = Incident(severity, env, text, at, operator(), folder / f"{at:%Y%m%d}.log",
                        running, previous)
    incident.mitigations = mitigations(root, settings, env, previous)
    append_event_line(incident.log_file, incident.line())
    record(log, AuditEvent(action="incident", env=env, result="success", to_version=running,
                           details={"severity": severity, "description": text,
                                    "log": str(incident.log_file.relative_to(root))}))
    return incident


def versions_from(log: Path, env: str) -> tuple[str | None, str | None]:
    """What the audit log says runs now and ran before (the rollback target)."""
    current: str | None = None
    before: str | None = None
    for event in read_events(log, env=env):
        changed = (event.get("action") in {"deploy", "rollback"}
                   and event.get("result") == "success")
        if changed and event.get("to_version") != current:
            before, current = current, event.get("to_version")
    return current, before
