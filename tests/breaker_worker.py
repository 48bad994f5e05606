"""What one worker process does in the shared-breaker tests (importable by spawned children)."""

from __future__ import annotations

import threading
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import httpx

from flowfactory.breaker import BreakerRegistry, RedisStore
from flowfactory.config import CircuitBreakerConfig
from flowfactory.errors import CircuitOpenError

OPEN_SECONDS = 2.0  # long enough that no probe goes out while a test phase runs
CONFIG = {"failure_threshold": 4, "reset_after": OPEN_SECONDS, "jitter": 0.0, "backoff": 1.0}


def _attempt(registry: BreakerRegistry, url: str, timeout: float) -> str:
    breaker = registry.get("upstream", CircuitBreakerConfig.model_validate(CONFIG))
    try:
        with httpx.Client(timeout=timeout) as http:
            breaker.call(lambda: http.get(url).raise_for_status())
    except CircuitOpenError as exc:
        return f"rejected:{exc.state}"
    except httpx.HTTPError:
        return "failed"
    return "ok"


def worker(
    redis_url: str,
    url: str,
    *,
    calls: int,
    threads: int,
    start: Barrier,
    results: Queue[list[str]],
) -> None:
    """Meet the others at ``start``, then make ``calls`` calls on each of ``threads`` threads."""
    # A generous timeout: two cores shared with the test run must not look like an outage.
    registry = BreakerRegistry(store=RedisStore(redis_url, namespace="test", timeout=5.0))
    outcomes: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        for _ in range(calls):
            outcome = _attempt(registry, url, timeout=10.0)
            with lock:
                outcomes.append(outcome)

    start.wait(30)
    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(outcomes)
