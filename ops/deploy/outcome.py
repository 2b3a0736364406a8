"""The one vocabulary of how a changing action, or one step of it, ended.

``Outcome`` is a ``str`` enum whose values are the strings the audit log
(``releases/deployments.jsonl``), the JSON result of deploy/rollback/scale and the step records
have always carried: those are contracts, so two legacy spellings stay at the edge and are named
here instead of being scattered: an interrupted action is *recorded* as ``"failed"`` (with the
reason ``"interrupted"``), and a step that succeeded is written ``"ok"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ops.errors import OpsError


class Outcome(StrEnum):
    """How a changing action ended. A ``str``: the value is what the audit log and the JSON
    result have always said (``"success"``, …).

    ``INTERRUPTED`` is recorded as ``"failed"`` with the reason ``"interrupted"`` (the contract
    of the audit line and the JSON result predates it): use ``recorded`` for what is written.
    """

    SUCCESS = "success"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    DRY_RUN = "dry_run"
    INTERRUPTED = "interrupted"

    @property
    def recorded(self) -> str:
        """The value the audit line and the JSON result carry."""
        return "failed" if self is Outcome.INTERRUPTED else self.value

    @property
    def as_step(self) -> str:
        """The value a step record carries: ``"ok"`` for a step that succeeded."""
        return "ok" if self is Outcome.SUCCESS else self.recorded


#: Endings after which what runs is one version again, the one the result names.
SETTLED = frozenset({Outcome.SUCCESS, Outcome.ROLLED_BACK, Outcome.DRY_RUN})

INTERRUPTED_REASON = "interrupted"


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, OpsError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED_REASON
    return f"{type(exc).__name__}: {exc}"


def outcome_of(exc: BaseException | None, reported: Outcome) -> Outcome:
    """The one outcome of an ending: what the body reported, unless an exception says worse.

    A body that reported ``ROLLED_BACK`` or ``FAILED`` before raising keeps it (it knows why);
    any other exception is ``INTERRUPTED`` (KeyboardInterrupt, which SIGTERM also raises) or
    ``FAILED``.
    """
    if exc is None:
        return reported
    if reported in {Outcome.ROLLED_BACK, Outcome.FAILED}:
        return reported
    return Outcome.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else Outcome.FAILED


# --- steps ---------------------------------------------------------------------------------------


@dataclass
class StepRecord:
    """One step of an action: its name, how it ended, how long it took, one line about it."""

    name: str
    status: Outcome  # SUCCESS | FAILED | INTERRUPTED | DRY_RUN; JSON: ``as_step``
    duration_s: float = 0.0
    detail: str | None = None

    @property
    def interrupted(self) -> bool:
        return self.status is Outcome.INTERRUPTED

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "status": self.status.as_step,
                                "duration_s": round(self.duration_s, 2)}
        if self.detail:
            data["detail"] = self.detail
        return data


@contextmanager
def timed_step(name: str, *, dry_run: bool = False,
               on_end: Callable[[StepRecord], None]) -> Iterator[StepRecord]:
    """Time the block as step ``name``; its way out becomes the record's ``Outcome`` (FAILED,
    INTERRUPTED for Ctrl-C, DRY_RUN under --dry-run), an error's message its detail unless the
    block set one; ``on_end`` keeps and shows the record, whichever way the block ended."""
    record = StepRecord(name, Outcome.DRY_RUN if dry_run else Outcome.SUCCESS)
    started = time.perf_counter()
    try:
        yield record
    except BaseException as exc:
        record.status = outcome_of(exc, record.status)
        record.detail = record.detail or getattr(exc, "message", None) or str(exc)
        raise
    finally:
        record.duration_s = time.perf_counter() - started
        on_end(record)
