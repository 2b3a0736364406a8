"""The swarm lock's record (labels on the lock service) and when it may be taken over."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from ops.deploy.swarm_lock import Holder, lock_service, reclaimable


def holder(*, host: str = "ops-laptop", pid: int = 4242, age_s: float = 10) -> Holder:
    since = (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat(timespec="seconds")
    return Holder("alice", host, pid, "deploy", "v0.2.0", since)


def test_holder_round_trips_through_the_service_labels() -> None:
    record = holder()
    assert Holder.of(record.labels()) == record


def test_labels_without_a_holder_mean_the_lock_is_free() -> None:
    assert Holder.of({"tminus.role": "lock"}) is None


def test_holder_is_described_with_who_where_since_and_what() -> None:
    text = holder().describe()
    assert text.startswith("alice on ops-laptop (pid 4242) since ")
    assert text.endswith(": deploy v0.2.0")


def test_live_lock_of_another_machine_is_not_reclaimed() -> None:
    assert reclaimable(holder(), stale_s=3600) is None


def test_lock_older_than_the_stale_age_is_reclaimed() -> None:
    assert reclaimable(holder(age_s=7200), stale_s=3600) == "it is older than 1 h"


def test_lock_of_a_process_gone_from_this_host_is_reclaimed() -> None:
    gone = holder(host=socket.gethostname(), pid=2**22 + 17)
    assert reclaimable(gone, stale_s=3600) == f"its process {2**22 + 17} is gone from this host"


def test_lock_service_is_named_after_the_stack() -> None:
    assert lock_service("shop") == "shop_tminus-lock"
