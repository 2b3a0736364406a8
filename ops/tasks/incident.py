"""``invoke incident``: declare an incident (see ops.deploy.incident)."""

from __future__ import annotations

import sys

from invoke.context import Context
from invoke.tasks import task

from ops.deploy.incident import record_incident
from ops.taskkit import boundary, project_root, settings_from


@task(auto_shortflags=False, positional=["description"], help={
    "description": "what is wrong, in one line (positional)",
    "severity": "P0 (all down), P1 (major), P2 (degraded), P3 (minor); default P2",
    "env": "environment (default: production)",
})
@boundary
def incident(c: Context, description: str, severity: str = "P2",
             env: str = "production") -> None:
    """Declare an incident: log it, audit it, print the response target and mitigations."""
    settings = settings_from(c)
    found = record_incident(project_root(c, settings), settings, description, severity, env)
    sys.stdout.write(found.render())
