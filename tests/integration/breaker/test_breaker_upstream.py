"""The breaker layer against a real HTTP upstream on loopback, whose request count proves it.

Open periods run out on a fake clock; what the upstream does takes real time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from tests.breaker_helpers import RESET, FakeClock, breaker_config, wait_open_time
from tests.upstream import Upstream

from flowfactory.breaker import BreakerRegistry, Override, Transition
from flowfactory.errors import CircuitOpenError

pytestmark = pytest.mark.integration


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client with a short timeout (the upstream's slow mode goes beyond it)."""
    with httpx.Client(timeout=0.5) as http:
        yield http


def get(client: httpx.Client, url: str) -> int:
    """GET, raising on 5xx (a failure) and on 4xx (the caller decides what that is)."""
    response = client.get(url)
    response.raise_for_status()
    return response.status_code


def attempt(registry: BreakerRegistry, client: httpx.Client, url: str, **kw: object) -> str:
    """One guarded call; returns what happened, for readable assertions."""
    breaker = registry.get("upstream", breaker_config(**kw))
    try:
        breaker.call(get, client, url)
    except CircuitOpenError as exc:
        return f"rejected:{exc.state}"
    except httpx.HTTPError:
        return "failed"
    return "ok"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until ``condition`` holds (threads on a busy machine take their time)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_opens_at_threshold_and_rejects_without_calling(
    upstream: Upstream, client: httpx.Client
) -> None:
    registry = BreakerRegistry()
    upstream.set("down")
    outcomes = [attempt(registry, client, upstream.url) for _ in range(10)]
    assert outcomes == ["failed"] * 3 + ["rejected:open"] * 7
    assert upstream.requests == 3
    assert registry.get("upstream").state() == "open"


def test_one_probe_then_closes_on_recovery(
    upstream: Upstream, client: httpx.Client, clock: FakeClock
) -> None:
    registry = BreakerRegistry(clock=clock)
    upstream.set("down")
    for _ in range(3):
        attempt(registry, client, upstream.url)
    assert upstream.requests == 3
    wait_open_time(clock)
    upstream.set("healthy")
    assert attempt(registry, client, upstream.url) == "ok"  # the probe
    assert registry.get("upstream").state() == "closed"
    assert [attempt(registry, client, upstream.url) for _ in range(5)] == ["ok"] * 5
    assert upstream.requests == 3 + 1 + 5


def test_exactly_one_probe_under_concurrency(upstream: Upstream, clock: FakeClock) -> None:
    registry = BreakerRegistry(clock=clock)
    breaker = registry.get("upstream", breaker_config())
    upstream.set("down")
    with httpx.Client(timeout=0.5) as http:
        for _ in range(3):
            attempt(registry, http, upstream.url)
    wait_open_time(clock)
    upstream.set("slow")  # the probe hangs at the upstream while the others arrive
    outcomes: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(timeout=10.0) as http:
            result = attempt(registry, http, upstream.url)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(outcomes) == 19 and upstream.requests >= 4)
    time.sleep(0.2)  # a second probe, if one had been let through, would have arrived by now
    assert upstream.requests == 3 + 1
    assert breaker.state() == "half-open"
    upstream.set("healthy")  # releases the probe, which succeeds
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["rejected:half-open"] * 19
    assert breaker.state() == "closed"
    assert upstream.requests == 4


def test_allowed_probes_are_bounded_by_config(upstream: Upstream, clock: FakeClock) -> None:
    registry = BreakerRegistry(clock=clock)
    upstream.set("down")
    with httpx.Client(timeout=0.5) as http:
        for _ in range(3):
            attempt(registry, http, upstream.url, half_open_probes=3)
    wait_open_time(clock)
    upstream.set("slow")
    outcomes: list[str] = []

    def one() -> None:
        with httpx.Client(timeout=10.0) as http:
            outcomes.append(attempt(registry, http, upstream.url, half_open_probes=3))

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(outcomes) == 7 and upstream.requests >= 6)
    time.sleep(0.2)
    assert upstream.requests == 3 + 3
    upstream.set("healthy")
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 3
    assert outcomes.count("rejected:half-open") == 7


def test_failed_probe_reopens_with_backoff(
    upstream: Upstream, client: httpx.Client, clock: FakeClock
) -> None:
    registry = BreakerRegistry(clock=clock)
    seen: list[Transition] = []
    registry.add_listener(seen.append)
    upstream.set("down")
    for _ in range(3):
        attempt(registry, client, upstream.url, backoff=2.0)
    wait_open_time(clock)
    assert attempt(registry, client, upstream.url, backoff=2.0) == "failed"  # the probe
    assert attempt(registry, client, upstream.url, backoff=2.0) == "rejected:open"
    assert upstream.requests == 4
    assert [(t.old, t.new) for t in seen] == [
        ("closed", "open"),
        ("open", "half-open"),
        ("half-open", "open"),
    ]
    assert seen[0].open_seconds == pytest.approx(RESET)
    assert seen[2].open_seconds == pytest.approx(2 * RESET)


def test_five_xx_burst_below_threshold_keeps_it_closed(
    upstream: Upstream, client: httpx.Client
) -> None:
    registry = BreakerRegistry()
    upstream.set("error", burst=2)
    outcomes = [attempt(registry, client, upstream.url) for _ in range(6)]
    assert outcomes == ["failed", "failed", "ok", "ok", "ok", "ok"]
    assert registry.get("upstream").status().consecutive_failures == 0
    upstream.set("error", burst=5)
    outcomes = [attempt(registry, client, upstream.url) for _ in range(6)]
    assert outcomes == ["failed"] * 3 + ["rejected:open"] * 3
    assert upstream.requests == 6 + 3


def test_slow_upstream_beyond_timeout_opens_it(upstream: Upstream) -> None:
    registry = BreakerRegistry()
    upstream.set("slow")
    with httpx.Client(timeout=0.2) as http:
        outcomes = [attempt(registry, http, upstream.url) for _ in range(5)]
    assert outcomes == ["failed"] * 3 + ["rejected:open"] * 2
    assert upstream.requests == 3


def test_slow_call_rate_opens_it_even_when_calls_succeed(upstream: Upstream) -> None:
    registry = BreakerRegistry()
    upstream.slow_seconds = 0.1
    upstream.set("slow")
    kw = {"slow_call_duration": 0.05, "slow_call_rate_threshold": 0.5, "minimum_calls": 4}
    with httpx.Client(timeout=5.0) as http:
        outcomes = [attempt(registry, http, upstream.url, **kw) for _ in range(6)]
    assert outcomes == ["ok"] * 4 + ["rejected:open"] * 2
    assert upstream.requests == 4


def test_cancellation_is_not_a_failure(upstream: Upstream) -> None:
    registry = BreakerRegistry()
    breaker = registry.get("upstream", breaker_config(failure_threshold=2))
    upstream.set("slow")

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:
            for _ in range(4):
                task = asyncio.create_task(breaker.acall(http.get, upstream.url))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

    asyncio.run(scenario())
    assert upstream.requests == 4
    assert breaker.state() == "closed"
    assert breaker.status().consecutive_failures == 0


def test_ignored_is_neutral_but_success_on_closes(
    upstream: Upstream, client: httpx.Client, clock: FakeClock
) -> None:
    registry = BreakerRegistry(clock=clock)
    breaker = registry.get("upstream", breaker_config(failure_threshold=2))

    def client_error(exc: Exception) -> bool:
        return isinstance(exc, httpx.HTTPStatusError) and exc.response.is_client_error

    missing = f"{upstream.url}/missing"
    upstream.set("down")
    for _ in range(2):
        with pytest.raises(httpx.TransportError), breaker.guard(ignore=client_error):
            get(client, upstream.url)
    wait_open_time(clock)
    upstream.set("healthy")
    with pytest.raises(httpx.HTTPStatusError), breaker.guard(ignore=client_error):
        get(client, missing)  # the probe answers 404: neither failure nor success
    assert breaker.state() == "half-open"
    with pytest.raises(httpx.HTTPStatusError), breaker.guard(success_on=client_error):
        get(client, missing)  # a 404 proves the upstream is up: counts as success
    assert breaker.state() == "closed"
    assert upstream.requests == 4


def test_test_switch_disables_and_forces(upstream: Upstream, client: httpx.Client) -> None:
    registry = BreakerRegistry()
    upstream.set("down")
    with registry.overridden(Override.DISABLED):
        outcomes = [attempt(registry, client, upstream.url) for _ in range(5)]
    assert outcomes == ["failed"] * 5
    assert registry.get("upstream").state() == "closed"  # nothing was recorded
    upstream.set("healthy")
    with registry.overridden(Override.FORCED_OPEN, "upstream"):
        assert attempt(registry, client, upstream.url) == "rejected:forced-open"
    assert upstream.requests == 5
    assert attempt(registry, client, upstream.url) == "ok"
