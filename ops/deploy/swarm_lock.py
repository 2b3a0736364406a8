"""The deploy lock of a swarm environment, kept in the swarm itself.

Operators on different machines share no file system, but they share the swarm: the lock is the
labels of a dedicated service (``<stack>_tminus-lock``, zero replicas, never pulled), changed
with compare-and-swap. Every service update names the version index it read; the manager
refuses an update whose index is stale ("update out of sequence"), so of two operators taking a
free lock at once exactly one wins, and the other reads the winner's labels and waits or exits
naming the holder.

The labels say who holds it, where, since when and for what (``docker service inspect`` shows
them). A lock older than ``stale_s`` is reclaimed with a warning, as is one whose holder runs on
this host and is gone (a deploy killed with SIGKILL), as the file lock on compose does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ops.deploy.lock import pid_alive
from ops.deploy.stack import Stack
from ops.errors import DockerUnavailable, LockHeld
from ops.stamps import operator

PREFIX = "tminus.lock."
FIELDS = ("holder", "host", "pid", "action", "version", "since")
LOCK_IMAGE = "tminus/lock:none"  # never pulled: the service has no replicas
#: A lock this old is taken over: no deploy holds the lock for a day.
STALE_S = 6 * 3600.0
POLL_S = 0.5


@dataclass(frozen=True)
class Holder:
    holder: str
    host: str
    pid: int
    action: str
    version: str
    since: str  # ISO 8601, UTC

    def labels(self) -> dict[str, str]:
        return {PREFIX + k: str(getattr(self, k)) for k in FIELDS}

    @classmethod
    def of(cls, labels: dict[str, str]) -> Holder | None:
        if PREFIX + "holder" not in labels:
            return None
        values = {k: labels.get(PREFIX + k, "") for k in FIELDS}
        try:
            pid = int(values["pid"] or 0)
        except ValueError:
            pid = 0
        return cls(values["holder"], values["host"], pid, values["action"], values["version"],
                   values["since"])

    def age_s(self) -> float:
        try:
            since = datetime.fromisoformat(self.since)
        except ValueError:
            return float("inf")
        return (datetime.now(UTC) - since).total_seconds()

    def describe(self) -> str:
        return (f"{self.holder} on {self.host} (pid {self.pid}) since {self.since}: "
                f"{self.action} {self.version}")


def lock_service(stack: str) -> str:
    return f"{stack}_tminus-lock"


def _service(client: Any, name: str) -> Any:
    """The lock service, created on first use (two creators at once: the loser reads it)."""
    from docker.errors import APIError, NotFound
    from docker.types import ServiceMode

    try:
        return client.services.get(name)
    except NotFound:
        pass
    # another operator may create it just now (409, or 500 "name conflicts"): then read theirs
    with contextlib.suppress(APIError):
        client.services.create(LOCK_IMAGE, name=name, mode=ServiceMode("replicated", replicas=0),
                               labels={"tminus.role": "lock"})
    return client.services.get(name)  # NotFound here: the create failed for another reason


def _swap(client: Any, service: Any, labels: dict[str, str]) -> bool:
    """Replace the lock labels if nobody changed the service since it was read (CAS)."""
    from docker.errors import APIError

    attrs = service.attrs
    spec = dict(attrs["Spec"])
    kept = {k: v for k, v in (spec.get("Labels") or {}).items() if not k.startswith(PREFIX)}
    spec["Labels"] = {**kept, **labels}
    try:
        client.api.update_service(attrs["ID"], attrs["Version"]["Index"],
                                  task_template=spec.get("TaskTemplate"), name=spec.get("Name"),
                                  labels=spec["Labels"], mode=spec.get("Mode"))
    except APIError as exc:
        if "out of sequence" in str(exc.explanation or exc):
            return False
        raise
    return True


def reclaimable(holder: Holder, *, stale_s: float) -> str | None:
    """Why the holder's lock may be taken over, or None."""
    if holder.age_s() > stale_s:
        return f"it is older than {stale_s / 3600:.0f} h"
    if holder.host == socket.gethostname() and not pid_alive(holder.pid):
        return f"its process {holder.pid} is gone from this host"
    return None


@contextmanager
def swarm_lock(client: Any, stack: str, *, action: str, version: str | None, holder: str,
               wait_s: float = 0.0, stale_s: float = STALE_S,
               warn: Callable[[str], None] = lambda _m: None,
               progress: Callable[[str], None] = lambda _m: None) -> Iterator[Holder]:
    """Hold the environment's swarm lock for the block; ``LockHeld`` (exit 1) naming the holder
    after ``wait_s``. Held already by this very process (a restore inside a rollback's lock):
    the block runs under that hold, which this call neither takes again nor releases."""
    from docker.errors import DockerException

    name = lock_service(stack)
    me = Holder(holder, socket.gethostname(), os.getpid(), action, version or "",
                datetime.now(UTC).isoformat(timespec="seconds"))
    deadline = time.monotonic() + wait_s
    told = False
    try:
        while True:
            service = _service(client, name)
            current = Holder.of(dict(service.attrs["Spec"].get("Labels") or {}))
            if current is not None and (current.host, current.pid) == (me.host, me.pid):
                break  # this process holds it (a rollback --with-db restoring): not again
            why = reclaimable(current, stale_s=stale_s) if current is not None else None
            if current is None or why:
                if current is not None:
                    warn(f"taking over the swarm lock of {current.describe()}: {why}")
                if _swap(client, service, me.labels()):
                    break
                continue  # someone else swapped first: read again
            if time.monotonic() >= deadline:
                raise LockHeld(f"the swarm deploy lock of {stack} is held by "
                               f"{current.describe()}",
                               hint=f"wait for it (--lock-wait), or see `docker service inspect "
                                    f"{name}`")
            if not told:
                progress(f"the swarm lock, held by {current.describe()}")
                told = True
            time.sleep(POLL_S)
    except DockerException as exc:
        raise DockerUnavailable(f"the swarm lock could not be read ({type(exc).__name__})"
                                ) from None
    if current is not None and (current.host, current.pid) == (me.host, me.pid):
        yield current  # released by the outer holder, not here
        return
    try:
        yield me
    finally:
        _release(client, name, me)


def _release(client: Any, name: str, me: Holder) -> None:
    """Clear the labels if they are still ours (a taken-over lock is not ours to clear)."""
    for _ in range(20):
        service = client.services.get(name)
        current = Holder.of(dict(service.attrs["Spec"].get("Labels") or {}))
        if current is None or (current.pid, current.host, current.since) != (
                me.pid, me.host, me.since):
            return
        if _swap(client, service, {}):
            return


def stack_lock(stack: Stack, action: str, version: str | None, wait_s: float
               ) -> AbstractContextManager[Any] | None:
    """The swarm lock for a changing action on ``stack``, or None (compose, or a dry run): taken
    inside the local file lock, so one machine's operators queue on the file first."""
    if stack.env.backend != "swarm" or stack.dry_run or stack.client is None:
        return None
    return swarm_lock(stack.client, stack.project, action=action, version=version,
                      holder=operator(), wait_s=wait_s,
                      warn=lambda m: stack.steps.say(f"  warning: {m}"),
                      progress=stack.steps.waiting)
