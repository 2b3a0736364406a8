"""The audit log as a table: who changed which environment, from what to what, and how it went."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

HEADERS = ["when (UTC)", "env", "action", "from → to", "result", "took", "who", "notes"]


def _notes(event: dict[str, Any]) -> str:
    details = event.get("details") or {}
    notes = []
    if event.get("skipped_checks"):
        notes.append("checks skipped")
    if event.get("skipped_backup"):
        notes.append("backup skipped")
    if details.get("rolled_back_to"):
        notes.append(f"rolled back to {details['rolled_back_to']}")
    if details.get("db"):
        notes.append(f"database: {details['db']}")
    if details.get("backup_id"):
        notes.append(f"backup {details['backup_id']}")
    recovered = details.get("recovered")
    if details.get("recovered_from"):
        what = recovered.get("action") if isinstance(recovered, dict) else None
        notes.append(f"recovered an interrupted {what or 'action'} "
                     f"(stopped at: {details['recovered_from']})")
    unfinished = details.get("interrupted")
    if isinstance(unfinished, dict) and unfinished.get("step"):
        notes.append(f"left unfinished at: {unfinished['step']}")
    watch = details.get("watch")
    if isinstance(watch, dict) and watch.get("p95_rule"):
        notes.append("p95 rule skipped")
    if details.get("reason") and event.get("result") != "success":
        notes.append(str(details["reason"])[:60])
    return "; ".join(notes)


def history_rows(events: Iterable[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for event in events:
        change = f"{event.get('from_version') or '-'} → {event.get('to_version') or '-'}"
        took = f"{float(event.get('duration_s') or 0):.1f}s"
        who = f"{event.get('who', '?')}@{event.get('host', '?')}"
        rows.append([str(event.get("at", "")).replace("T", " ").rstrip("Z"),
                     str(event.get("env", "")), str(event.get("action", "")), change,
                     str(event.get("result", "")), took, who, _notes(event)])
    return rows


def history_table(events: Iterable[dict[str, Any]]) -> str:
    from tabulate import tabulate

    return tabulate(history_rows(events), headers=HEADERS)
