"""The circuit breaker layer, side by side with stock purgatory and with no breaker at all.

(a) per-call overhead while closed: an unwrapped ``await f()``, purgatory's decorator
    (in-memory), and ``await breaker.acall(f)``; medians of interleaved repeats;
(b) the cost of a rejection while open, ours against stock purgatory;
(c) memory traced after 100,000 rejections, ours against stock purgatory (which keeps a
    growing traceback on one shared exception);
(d) the storm: 100 tasks, each with 3 retries, against a dead upstream on loopback; the
    upstream counts the requests that reach it, without a breaker and with one (the retry
    policy is the one the Prefect tasks use: no retry into an open circuit or past the budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from flowfactory.breaker import Breaker, BreakerRegistry
from flowfactory.config import CircuitBreakerConfig
from flowfactory.errors import CircuitOpenError

__all__ = ["run"]

CALLS: Final = 100_000
REJECTIONS: Final = 100_000
TASKS: Final = 100
RETRIES: Final = 3
# Tasks in flight at once: one at a time, a 4-thread task runner, all 100 together. Calls
# already in flight when the circuit opens were admitted while it was closed, so they land too.
CONCURRENCY: Final = (1, 4, 100)
TARGETS: Final = {"overhead_us": 2.0, "rejection_us": 10.0}


async def _one() -> int:
    return 1


async def _fail() -> int:
    raise OSError("down")


async def _time_loop(call: Callable[[], Awaitable[object]], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await call()
    return time.perf_counter() - started


def _ours(threshold: int = 5, reset: float = 600.0) -> Breaker:
    config = CircuitBreakerConfig(failure_threshold=threshold, reset_after=reset, jitter=0.0)
    return BreakerRegistry().get("bench", config)


async def _overhead(repeats: int) -> dict[str, Any]:
    factory = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=600)
    decorated = factory("bench")(_one)
    breaker = _ours()

    async def ours() -> int:
        return await breaker.acall(_one)

    async def ours_block() -> int:
        async with breaker.guard():
            return await _one()

    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "unwrapped": _one,
        "purgatory": decorated,
        "flowfactory": ours,
        "flowfactory_block": ours_block,
    }
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):  # interleaved, so machine noise hits every case alike
        for name, call in cases.items():
            seconds[name].append(await _time_loop(call, CALLS))
    per_call = {name: statistics.median(s) / CALLS * 1e6 for name, s in seconds.items()}
    return {
        "per_call_us": per_call,
        "overhead_us": {
            name: per_call[name] - per_call["unwrapped"] for name in cases if name != "unwrapped"
        },
    }


async def _reject_purgatory(n: int) -> object:
    """Reject ``n`` calls; returns the factory, so what it holds stays alive to be measured."""
    factory = AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=600)
    decorated = factory("bench")(_fail)
    with contextlib.suppress(OSError):
        await decorated()
    for _ in range(n):
        with contextlib.suppress(OpenedState):
            await decorated()
    return factory


async def _reject_ours(n: int) -> object:
    """Reject ``n`` calls; returns the breaker, so what it holds stays alive to be measured."""
    breaker = _ours(threshold=1)
    with contextlib.suppress(OSError):
        await breaker.acall(_fail)
    for _ in range(n):
        with contextlib.suppress(CircuitOpenError):
            await breaker.acall(_fail)
    return breaker


async def _rejections(repeats: int) -> dict[str, Any]:
    timings: dict[str, list[float]] = {"purgatory": [], "flowfactory": []}
    for _ in range(repeats):
        for name, body in (("purgatory", _reject_purgatory), ("flowfactory", _reject_ours)):
            started = time.perf_counter()
            await body(REJECTIONS)
            timings[name].append(time.perf_counter() - started)
            gc.collect()
    memory: dict[str, float] = {}
    for name, body in (("purgatory", _reject_purgatory), ("flowfactory", _reject_ours)):
        # Measured inside the run, while the breaker (and what it holds) is still alive.
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        alive = await body(REJECTIONS)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del alive
        memory[name] = (after - before) / 2**20
    return {
        "per_rejection_us": {
            name: statistics.median(t) / REJECTIONS * 1e6 for name, t in timings.items()
        },
        "memory_mib_after_100k": memory,
    }


class _DeadUpstream:
    """A loopback server that answers every request 503, and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    upstream.requests += 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        ThreadingHTTPServer.request_queue_size = 256  # no refused connections under the storm
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _storm(breaker: Breaker | None, concurrency: int) -> dict[str, Any]:
    upstream = _DeadUpstream()
    slots = asyncio.Semaphore(concurrency)  # a task runner's worker count
    outcomes = {"failed": 0, "rejected": 0}
    attempts = 0
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:

            async def fetch() -> None:
                response = await http.get(upstream.url)
                response.raise_for_status()

            async def task() -> None:
                async with slots:
                    await attempts_of_one_task()

            async def attempts_of_one_task() -> None:
                nonlocal attempts
                for attempt in range(RETRIES + 1):
                    attempts += 1
                    try:
                        if breaker is None:
                            await fetch()
                        else:
                            await breaker.acall(fetch)
                    except CircuitOpenError:
                        outcomes["rejected"] += 1
                        return  # the task ends fast: no retry into an open circuit
                    except httpx.HTTPError:
                        last = attempt == RETRIES
                        if last or (breaker is not None and not breaker.allow_retry()):
                            outcomes["failed"] += 1
                            return
                        await asyncio.sleep(0.01)

            await asyncio.gather(*(task() for _ in range(TASKS)))
    finally:
        upstream.close()
    return {"upstream_requests": upstream.requests, "task_attempts": attempts, **outcomes}


async def _storms() -> dict[str, Any]:
    config = CircuitBreakerConfig(failure_threshold=5, reset_after=30, jitter=0.0)
    by_concurrency = {}
    for concurrency in CONCURRENCY:
        breaker = BreakerRegistry().get("dead-upstream", config)
        by_concurrency[str(concurrency)] = {
            "without_breaker": await _storm(None, concurrency),
            "with_breaker": await _storm(breaker, concurrency),
        }
    return {
        "tasks": TASKS,
        "retries": RETRIES,
        "threshold": config.failure_threshold,
        "probes": config.half_open_probes,
        "by_concurrency": by_concurrency,
    }


async def _main(repeats: int) -> dict[str, Any]:
    overhead = await _overhead(repeats)
    rejections = await _rejections(max(1, repeats // 2))
    storms = await _storms()
    met = {
        "overhead": overhead["overhead_us"]["flowfactory"] <= TARGETS["overhead_us"],
        "rejection": rejections["per_rejection_us"]["flowfactory"] <= TARGETS["rejection_us"],
        "memory_flat": rejections["memory_mib_after_100k"]["flowfactory"] < 1.0,
        "storm": storms["by_concurrency"]["1"]["with_breaker"]["upstream_requests"]
        <= storms["threshold"] + storms["probes"],
    }
    return {
        "calls": CALLS,
        "rejections": REJECTIONS,
        "repeats": repeats,
        **overhead,
        **rejections,
        "storm": storms,
        "targets": TARGETS,
        "meets_targets": met,
    }


def run(repeats: int = 5) -> dict[str, Any]:
    """Measure everything; a few tens of seconds on a 2-core machine."""
    return asyncio.run(_main(repeats))


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
