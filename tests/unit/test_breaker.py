"""The breaker layer against a real HTTP upstream on loopback, whose request count proves it."""

from __future__ import annotations

import asyncio
import pickle
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tests.upstream import Upstream, running_upstream

from flowfactory.breaker import BreakerRegistry, Override, Transition, registry, reset_registry
from flowfactory.config import CircuitBreakerConfig, load_project
from flowfactory.errors import CircuitOpenError, ConfigError, FlowfactoryError
from flowfactory.settings import Settings

RESET = 0.3  # seconds open before a probe; tests sleep past it, never assert on time


def config(**changes: object) -> CircuitBreakerConfig:
    """Deterministic breaker settings: no jitter, a short open time."""
    base: dict[str, object] = {
        "failure_threshold": 3,
        "reset_after": RESET,
        "jitter": 0.0,
        "backoff": 1.0,
    }
    return CircuitBreakerConfig.model_validate({**base, **changes})


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A healthy upstream; the test switches it."""
    with running_upstream(slow_seconds=5.0) as server:
        yield server


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
    breaker = registry.get("upstream", config(**kw))
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


def wait_open_time(seconds: float = RESET) -> None:
    """Let the open period run out."""
    time.sleep(seconds + 0.1)


def test_opens_at_threshold_and_rejects_without_calling(
    upstream: Upstream, client: httpx.Client
) -> None:
    registry = BreakerRegistry()
    upstream.set("down")
    outcomes = [attempt(registry, client, upstream.url) for _ in range(10)]
    assert outcomes == ["failed"] * 3 + ["rejected:open"] * 7
    assert upstream.requests == 3
    assert registry.get("upstream").state() == "open"


def test_one_probe_then_closes_on_recovery(upstream: Upstream, client: httpx.Client) -> None:
    registry = BreakerRegistry()
    upstream.set("down")
    for _ in range(3):
        attempt(registry, client, upstream.url)
    assert upstream.requests == 3
    wait_open_time()
    upstream.set("healthy")
    assert attempt(registry, client, upstream.url) == "ok"  # the probe
    assert registry.get("upstream").state() == "closed"
    assert [attempt(registry, client, upstream.url) for _ in range(5)] == ["ok"] * 5
    assert upstream.requests == 3 + 1 + 5


def test_exactly_one_probe_under_concurrency(upstream: Upstream) -> None:
    registry = BreakerRegistry()
    breaker = registry.get("upstream", config())
    upstream.set("down")
    with httpx.Client(timeout=0.5) as http:
        for _ in range(3):
            attempt(registry, http, upstream.url)
    wait_open_time()
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


def test_allowed_probes_are_bounded_by_config(upstream: Upstream) -> None:
    registry = BreakerRegistry()
    upstream.set("down")
    with httpx.Client(timeout=0.5) as http:
        for _ in range(3):
            attempt(registry, http, upstream.url, half_open_probes=3)
    wait_open_time()
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


def test_failed_probe_reopens_with_backoff(upstream: Upstream, client: httpx.Client) -> None:
    registry = BreakerRegistry()
    seen: list[Transition] = []
    registry.add_listener(seen.append)
    upstream.set("down")
    for _ in range(3):
        attempt(registry, client, upstream.url, backoff=2.0)
    wait_open_time()
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


def test_jitter_shortens_the_open_time_within_bounds() -> None:
    registry = BreakerRegistry()
    seen: list[Transition] = []
    registry.add_listener(seen.append)
    for index in range(20):
        breaker = registry.get(f"dep{index}", config(jitter=0.5, failure_threshold=1))
        with pytest.raises(OSError, match="boom"):
            breaker.call(_raise, OSError("boom"))
    spans = [t.open_seconds for t in seen if t.new == "open"]
    assert len(spans) == 20
    assert all(s is not None and RESET * 0.5 <= s <= RESET for s in spans)
    assert len(set(spans)) > 1


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


def test_failure_rate_window_opens_without_consecutive_failures() -> None:
    registry = BreakerRegistry()
    breaker = registry.get(
        "flaky", config(failure_threshold=100, failure_rate_threshold=0.5, minimum_calls=6)
    )
    for index in range(6):
        if index % 2:
            breaker.call(lambda: None)
        else:
            with pytest.raises(OSError, match="flaky"):
                breaker.call(_raise, OSError("flaky"))
    assert breaker.state() == "open"


def test_stale_success_does_not_close_half_open() -> None:
    registry = BreakerRegistry()
    breaker = registry.get("svc", config(failure_threshold=2))
    release = threading.Event()
    results: list[str] = []

    def slow_success() -> None:
        breaker.call(release.wait, 5)
        results.append("stale done")

    early = threading.Thread(target=slow_success)
    early.start()  # admitted while closed
    time.sleep(0.05)
    for _ in range(2):
        with pytest.raises(OSError, match="down"):
            breaker.call(_raise, OSError("down"))
    assert breaker.state() == "open"
    wait_open_time()
    probe_started = threading.Event()
    probe_release = threading.Event()

    def probe() -> None:
        def body() -> None:
            probe_started.set()
            probe_release.wait(5)
            raise OSError("still down")

        try:
            breaker.call(body)
        except OSError:
            results.append("probe failed")

    probing = threading.Thread(target=probe)
    probing.start()
    probe_started.wait(5)
    release.set()  # the call admitted before the trip succeeds now
    early.join()
    assert breaker.state() == "half-open"  # purgatory alone would have closed it here
    probe_release.set()
    probing.join()
    assert results == ["stale done", "probe failed"]
    assert breaker.state() == "open"
    assert breaker.stale == 1


def test_cancellation_is_not_a_failure(upstream: Upstream) -> None:
    registry = BreakerRegistry()
    breaker = registry.get("upstream", config(failure_threshold=2))
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


def test_ignored_is_neutral_but_success_on_closes(upstream: Upstream, client: httpx.Client) -> None:
    registry = BreakerRegistry()
    breaker = registry.get("upstream", config(failure_threshold=2))

    def client_error(exc: Exception) -> bool:
        return isinstance(exc, httpx.HTTPStatusError) and exc.response.is_client_error

    missing = f"{upstream.url}/missing"
    upstream.set("down")
    for _ in range(2):
        with pytest.raises(httpx.TransportError), breaker.guard(ignore=client_error):
            get(client, upstream.url)
    wait_open_time()
    upstream.set("healthy")
    with pytest.raises(httpx.HTTPStatusError), breaker.guard(ignore=client_error):
        get(client, missing)  # the probe answers 404: neither failure nor success
    assert breaker.state() == "half-open"
    with pytest.raises(httpx.HTTPStatusError), breaker.guard(success_on=client_error):
        get(client, missing)  # a 404 proves the upstream is up: counts as success
    assert breaker.state() == "closed"
    assert upstream.requests == 4


def test_circuit_open_error_pickles_and_does_not_grow() -> None:
    registry = BreakerRegistry()
    breaker = registry.get("svc", config(failure_threshold=1, reset_after=600))
    with pytest.raises(OSError, match="down"):
        breaker.call(_raise, OSError("down"))
    depths = []
    for _ in range(10_000):
        try:
            breaker.call(lambda: None)
        except CircuitOpenError as exc:
            depths.append(_depth(exc))
            last = exc
    assert len(depths) == 10_000
    assert max(depths) == min(depths) <= 5
    assert isinstance(last, FlowfactoryError)
    assert last.dependency == "svc"
    assert last.retry_after is not None
    assert 0 < last.retry_after <= 600
    copy = pickle.loads(pickle.dumps(last))  # noqa: S301 - our own bytes
    assert (copy.dependency, copy.retry_after, copy.state) == ("svc", last.retry_after, "open")
    assert str(copy) == str(last)
    assert "'svc' is open" in str(last)
    assert len({last, copy}) == 2  # hashable


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


def test_disabled_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWFACTORY_BREAKERS", "false")
    try:
        fresh = reset_registry()
        assert fresh is registry()
        assert fresh.override_for("anything") is Override.DISABLED
    finally:
        monkeypatch.delenv("FLOWFACTORY_BREAKERS")
        assert reset_registry().override_for("anything") is None


def test_listener_errors_do_not_reach_callers() -> None:
    registry = BreakerRegistry()
    heard: list[str] = []

    def broken(transition: Transition) -> None:
        raise RuntimeError("listener bug")

    registry.add_listener(broken)
    registry.add_listener(lambda t: heard.append(t.new))
    breaker = registry.get("svc", config(failure_threshold=1))
    with pytest.raises(OSError, match="down"):
        breaker.call(_raise, OSError("down"))
    assert heard == ["open"]


def test_retry_budget_runs_out_while_failing() -> None:
    registry = BreakerRegistry()
    breaker = registry.get("svc", config(failure_threshold=100, retry_budget=0.5))
    allowed = 0
    for _ in range(20):
        with pytest.raises(OSError, match="down"):
            breaker.call(_raise, OSError("down"))
        allowed += breaker.allow_retry()
    assert allowed == 2  # 10 tokens, -1 per failure and per retry; none at 5 or fewer
    for _ in range(30):
        breaker.call(lambda: None)
    assert breaker.allow_retry()


def test_registry_shares_one_breaker_per_dependency() -> None:
    registry = BreakerRegistry()
    first = registry.get("svc", config())
    assert registry.get("svc") is first
    assert registry.get("svc", config(failure_threshold=7)) is first
    assert first.config.failure_threshold == 7
    assert [s.dependency for s in registry.statuses()] == ["svc"]


def test_breaker_config_in_defaults_and_per_source(tmp_path: Path) -> None:
    folder = tmp_path / "deployments"
    folder.mkdir()
    (folder / "_defaults.yaml").write_text("circuit_breaker: {failure_threshold: 4, jitter: 0}\n")
    (folder / "a.yaml").write_text(
        textwrap.dedent(
            """
            name: a
            sources:
              remote:
                path: https://example.org/x.csv
                circuit_breaker: {dependency: example-api, reset_after: 2m}
              local: {path: landing/y.csv}
            transform: {sql: SELECT 1}
            destination: {dataset: a}
            circuit_breaker: {reset_after: 45s}
            """
        )
    )
    project = load_project(folder, Settings(project_dir=tmp_path))
    pipeline = project.pipelines[0].config
    assert pipeline.circuit_breaker.failure_threshold == 4
    assert pipeline.circuit_breaker.reset_after == timedelta(seconds=45)
    remote = pipeline.inputs["remote"]
    assert remote.circuit_breaker is not None
    merged = remote.circuit_breaker.over(pipeline.circuit_breaker)
    assert merged.dependency == "example-api"
    assert merged.reset_after == timedelta(minutes=2)
    assert merged.failure_threshold == 4
    assert merged.jitter == 0


def test_breaker_config_mistakes_are_positioned(tmp_path: Path) -> None:
    folder = tmp_path / "deployments"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "name: a\nsource: {path: landing/y.csv}\ndestination: {dataset: a}\n"
        "circuit_breaker:\n  reset_after: soon\n  minimum_calls: 50\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_project(folder, Settings(project_dir=tmp_path))
    text = str(caught.value)
    assert ":5:" in text
    assert "circuit_breaker.reset_after" in text
    assert "not a duration" in text


def _raise(exc: Exception) -> None:
    raise exc


def _depth(exc: BaseException) -> int:
    depth, tb = 0, exc.__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    return depth


def test_one_breaker_shared_by_threads_under_churn() -> None:
    registry = BreakerRegistry()
    breaker = registry.get(
        "svc", config(failure_threshold=2, reset_after=0.001, half_open_probes=2)
    )
    unexpected: list[BaseException] = []
    in_body = 0
    lock = threading.Lock()

    def body(fail: bool) -> None:
        nonlocal in_body
        with lock:
            in_body += 1
        if fail:
            raise OSError("down")

    def hammer(seed: int) -> None:
        for index in range(3000):
            try:
                breaker.call(body, (index + seed) % 3 != 0)
            except (OSError, CircuitOpenError):
                pass
            except BaseException as exc:  # noqa: BLE001 - what the test looks for
                unexpected.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert unexpected == []
    assert in_body > 0
    assert breaker.rejected > 0
    assert 0 <= breaker.machine.probes <= 2
