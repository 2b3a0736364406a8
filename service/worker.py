"""The demo worker: takes jobs from the Redis list ``queue:jobs`` and records results.

A single writer on purpose: the deploy configuration marks it ``recreate``, since two versions
must not consume the same queue at once.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

VERSION = os.environ.get("TMINUS_BUILD_VERSION") or os.environ.get("APP_VERSION", "dev")
stopping = threading.Event()


def stop(_signum: int, _frame: object) -> None:
    stopping.set()


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = os.environ.get("REDIS_URL")
    client = None
    if url:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5)
    print(f"worker {VERSION} started", flush=True)
    while not stopping.is_set():
        if client is None:
            time.sleep(1)
            continue
        item = client.blpop(["queue:jobs"], timeout=1)
        if item is None:
            client.set("worker:heartbeat", str(time.time()), ex=30)
            continue
        job = json.loads(item[1])
        client.hset(f"job:{job.get('id', 'unknown')}", mapping={"status": "done",
                                                                "worker": VERSION})
    print("worker stopped", flush=True)


if __name__ == "__main__":
    main()
