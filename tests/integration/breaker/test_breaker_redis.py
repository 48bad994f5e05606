"""Breakers sharing state in a real redis-server: across registries, processes, and outages."""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.breaker_worker import CONFIG, OPEN_SECONDS, worker
from tests.helpers import free_port
from tests.upstream import Upstream

from flowfactory.breaker import BreakerRegistry, Override, RedisStore, Transition
from flowfactory.config import CircuitBreakerConfig
from flowfactory.errors import CircuitOpenError

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    """A store on a flushed database."""
    store = RedisStore(redis_url, namespace="test", timeout=5.0)
    store.client.flushdb()
    yield store
    store.client.close()


def config() -> CircuitBreakerConfig:
    """The workers' settings: threshold 4, ``OPEN_SECONDS`` open, no jitter."""
    return CircuitBreakerConfig.model_validate(CONFIG)


def attempt(registry: BreakerRegistry, upstream: Upstream) -> str:
    """One guarded GET."""
    breaker = registry.get("upstream", config())
    try:
        with httpx.Client(timeout=2.0) as http:
            breaker.call(lambda: http.get(upstream.url).raise_for_status())
    except CircuitOpenError as exc:
        return f"rejected:{exc.state}"
    except httpx.HTTPError:
        return "failed"
    return "ok"


def test_two_registries_see_one_circuit(store: RedisStore, upstream: Upstream) -> None:
    first = BreakerRegistry(store=store)
    second = BreakerRegistry(store=RedisStore(_url(store), namespace="test", timeout=5.0))
    heard: list[Transition] = []
    first.add_listener(heard.append)
    second.add_listener(heard.append)
    upstream.set("down")
    outcomes = [attempt(first if i % 2 else second, upstream) for i in range(8)]
    assert outcomes == ["failed"] * 4 + ["rejected:open"] * 4
    assert upstream.requests == 4
    assert [(t.old, t.new, t.shared) for t in heard] == [("closed", "open", True)]
    time.sleep(OPEN_SECONDS + 0.2)
    upstream.set("healthy")
    assert attempt(second, upstream) == "ok"
    assert attempt(first, upstream) == "ok"
    assert [(t.old, t.new) for t in heard[1:]] == [("open", "half-open"), ("half-open", "closed")]
    assert first.get("upstream").status().state == "closed"
    assert upstream.requests == 6


def test_two_worker_processes_share_one_circuit(redis_url: str, upstream: Upstream) -> None:
    RedisStore(redis_url, namespace="test", timeout=5.0).client.flushdb()
    spawn = multiprocessing.get_context("spawn")

    def run_workers(calls: int, threads: int) -> list[list[str]]:
        start, results = spawn.Barrier(3), spawn.Queue()  # two workers and this test
        processes = [
            spawn.Process(
                target=worker,
                args=(redis_url, upstream.url),
                kwargs={"calls": calls, "threads": threads, "start": start, "results": results},
            )
            for _ in range(2)
        ]
        for process in processes:
            process.start()
        start.wait(60)
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=30)
            assert process.exitcode == 0
        return outcomes

    upstream.set("down")
    first = run_workers(calls=10, threads=1)
    flat = [o for outcomes in first for o in outcomes]
    # Threshold 4; a call already in flight in the other process when it opened may land too.
    assert 4 <= upstream.requests <= 5
    assert flat.count("failed") == upstream.requests
    assert flat.count("rejected:open") == 20 - upstream.requests
    assert all(len(outcomes) == 10 for outcomes in first)
    assert all("rejected:open" in outcomes for outcomes in first)

    time.sleep(OPEN_SECONDS + 0.2)
    before = upstream.requests
    upstream.set("slow")

    def heal_after_the_probe_arrives() -> None:
        # The probe hangs at the upstream; the other nine calls meet a half-open circuit.
        deadline = time.monotonic() + 60
        while upstream.requests == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)
        upstream.set("healthy")

    healer = threading.Thread(target=heal_after_the_probe_arrives)
    healer.start()
    second = run_workers(calls=1, threads=5)
    healer.join()
    flat = [o for outcomes in second for o in outcomes]
    assert upstream.requests - before == 1  # one probe for the whole fleet
    assert flat.count("ok") == 1
    assert flat.count("rejected:half-open") == 9
    store = RedisStore(redis_url, namespace="test", timeout=5.0)
    assert store.status("upstream")[0] == "closed"


def test_stale_success_cannot_close_shared_half_open(store: RedisStore) -> None:
    cfg = CircuitBreakerConfig(failure_threshold=1, reset_after=0.2, jitter=0)
    early = store.admit("svc", cfg)  # admitted while closed, finishes late
    tripping = store.admit("svc", cfg)
    opened = store.record("svc", cfg, tripping, "failure")
    assert opened is not None
    assert (opened.old, opened.new) == ("closed", "open")
    time.sleep(0.3)
    probe = store.admit("svc", cfg)
    assert probe.probe
    assert probe.moved_to_half_open
    assert store.record("svc", cfg, early, "success") is None
    assert store.status("svc")[0] == "half-open"
    assert not store.admit("svc", cfg).admitted  # the probe's lease is still held
    closed = store.record("svc", cfg, probe, "success")
    assert closed is not None
    assert (closed.old, closed.new) == ("half-open", "closed")


def test_concurrent_failures_do_not_overshoot_the_threshold(store: RedisStore) -> None:
    cfg = CircuitBreakerConfig(failure_threshold=3, reset_after=60, jitter=0)
    admitted = [store.admit("svc", cfg) for _ in range(10)]  # all in flight together
    transitions = [store.record("svc", cfg, a, "failure") for a in admitted]
    assert [t.new for t in transitions if t is not None] == ["open"]  # exactly one trip
    assert transitions.index(next(t for t in transitions if t is not None)) == 2
    assert not store.admit("svc", cfg).admitted


def test_operator_forces_open_and_closed_fleet_wide(store: RedisStore, upstream: Upstream) -> None:
    operator = BreakerRegistry(store=store)
    worker_registry = BreakerRegistry(store=RedisStore(_url(store), namespace="test", timeout=5.0))
    operator.force("upstream", Override.FORCED_OPEN)
    assert attempt(worker_registry, upstream) == "rejected:forced-open"
    assert upstream.requests == 0
    assert worker_registry.get("upstream").status().override is Override.FORCED_OPEN
    operator.reset("upstream")
    assert attempt(worker_registry, upstream) == "ok"
    upstream.set("down")
    for _ in range(4):
        attempt(worker_registry, upstream)
    assert attempt(worker_registry, upstream) == "rejected:open"
    operator.force("upstream", Override.FORCED_CLOSED)
    assert attempt(worker_registry, upstream) == "failed"  # let through although open
    assert store.dependencies() == ["upstream"]


def test_redis_down_falls_back_to_local_with_a_warning(
    upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0", namespace="test", timeout=5.0)
    registry = BreakerRegistry(store=dead)
    with caplog.at_level(logging.WARNING):
        assert attempt(registry, upstream) == "ok"
    assert "circuit breaker store unavailable" in caplog.text
    upstream.set("down")
    outcomes = [attempt(registry, upstream) for _ in range(6)]
    assert outcomes == ["failed"] * 4 + ["rejected:open"] * 2  # the local breaker still works
    assert upstream.requests == 5


def test_redis_that_hangs_times_out_and_falls_back(
    upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)  # accepts connections (kernel backlog), never answers
        port = black_hole.getsockname()[1]
        registry = BreakerRegistry(store=RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.2))
        with caplog.at_level(logging.WARNING):
            assert attempt(registry, upstream) == "ok"
            assert attempt(registry, upstream) == "ok"
    assert caplog.text.count("circuit breaker store unavailable") == 1  # then it waits a while
    assert "Timeout" in caplog.text


def _url(store: RedisStore) -> str:
    kwargs = store.client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_retry_budget_is_earned_back_with_shared_state(store: RedisStore) -> None:
    registry = BreakerRegistry(store=store)
    breaker = registry.get("svc", CircuitBreakerConfig(failure_threshold=100, retry_budget=1.0))
    for _ in range(5):
        with pytest.raises(OSError, match="down"), breaker.guard():
            raise OSError("down")
    assert not breaker.allow_retry()  # 10 tokens, 5 failures: at the floor
    for _ in range(3):
        breaker.call(lambda: None)
    assert breaker.allow_retry()


def test_the_retry_budget_is_shared_by_the_fleet(store: RedisStore, redis_url: str) -> None:
    """Two workers draw on one budget: together they spend what one alone could, no more."""
    first = BreakerRegistry(store=store)
    second = BreakerRegistry(store=RedisStore(redis_url, namespace="test", timeout=5.0))
    budget = CircuitBreakerConfig.model_validate({"retry_budget": 0.5, "failure_threshold": 100})
    a, b = first.get("api", budget), second.get("api", budget)

    spent = [a.allow_retry() for _ in range(3)] + [b.allow_retry() for _ in range(5)]
    assert spent == [True] * 5 + [False] * 3  # half of the 10 tokens, fleet-wide

    a.call(lambda: None)  # a success anywhere earns tokens for everyone
    a.call(lambda: None)
    assert b.allow_retry()
    assert not b.allow_retry()
