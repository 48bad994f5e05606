"""The breaker callers go through: windows, fencing, rejections, the test switch, listeners,
the retry budget, the registry and the config keys; time is a fake clock the tests move."""

from __future__ import annotations

import asyncio
import pickle
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from tests.breaker_helpers import RESET, FakeClock, breaker_config, wait_open_time

from flowfactory.breaker import BreakerRegistry, Override, Transition, registry, reset_registry
from flowfactory.config import load_project
from flowfactory.errors import CircuitOpenError, ConfigError, FlowfactoryError
from flowfactory.settings import Settings


def test_open_breaker_rejects_until_its_clock_passes_reset_after(clock: FakeClock) -> None:
    """Rejected calls are not made and tell how long is left; then one probe closes it."""
    registry = BreakerRegistry(clock=clock)
    seen: list[Transition] = []
    registry.add_listener(seen.append)
    breaker = registry.get("svc", breaker_config(failure_threshold=2))
    for _ in range(2):
        with pytest.raises(OSError, match="down"):
            breaker.call(_raise, OSError("down"))
    clock.advance(RESET - 10)
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(calls.append, 1)
    assert rejected.value.retry_after == pytest.approx(10)
    wait_open_time(clock)
    breaker.call(calls.append, 2)
    assert calls == [2]
    assert [(t.old, t.new) for t in seen] == [
        ("closed", "open"),
        ("open", "half-open"),
        ("half-open", "closed"),
    ]


def test_cancelled_calls_are_neutral() -> None:
    """A cancelled coroutine says nothing about its dependency."""
    breaker = BreakerRegistry().get("svc", breaker_config(failure_threshold=1))

    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(asyncio.CancelledError):
                await breaker.acall(cancelled)

    asyncio.run(scenario())
    assert breaker.state() == "closed"


def test_test_switch_disables_and_forces_without_an_upstream() -> None:
    """Disabled: failures are not recorded; forced open: the call is not made."""
    registry = BreakerRegistry()
    breaker = registry.get("svc", breaker_config(failure_threshold=1))
    with registry.overridden(Override.DISABLED):
        for _ in range(3):
            with pytest.raises(OSError, match="down"):
                breaker.call(_raise, OSError("down"))
    assert breaker.state() == "closed"
    calls: list[int] = []
    with (
        registry.overridden(Override.FORCED_OPEN, "svc"),
        pytest.raises(CircuitOpenError, match="forced-open"),
    ):
        breaker.call(calls.append, 1)
    breaker.call(calls.append, 2)
    assert calls == [2]


def test_jitter_shortens_the_open_time_within_bounds() -> None:
    registry = BreakerRegistry()
    seen: list[Transition] = []
    registry.add_listener(seen.append)
    for index in range(20):
        breaker = registry.get(f"dep{index}", breaker_config(jitter=0.5, failure_threshold=1))
        with pytest.raises(OSError, match="boom"):
            breaker.call(_raise, OSError("boom"))
    spans = [t.open_seconds for t in seen if t.new == "open"]
    assert len(spans) == 20
    assert all(s is not None and RESET * 0.5 <= s <= RESET for s in spans)
    assert len(set(spans)) > 1


def test_failure_rate_window_opens_without_consecutive_failures() -> None:
    registry = BreakerRegistry()
    breaker = registry.get(
        "flaky", breaker_config(failure_threshold=100, failure_rate_threshold=0.5, minimum_calls=6)
    )
    for index in range(6):
        if index % 2:
            breaker.call(lambda: None)
        else:
            with pytest.raises(OSError, match="flaky"):
                breaker.call(_raise, OSError("flaky"))
    assert breaker.state() == "open"


def test_stale_success_does_not_close_half_open(clock: FakeClock) -> None:
    registry = BreakerRegistry(clock=clock)
    breaker = registry.get("svc", breaker_config(failure_threshold=2))
    admitted = threading.Event()
    release = threading.Event()
    results: list[str] = []

    def slow_success() -> None:
        def body() -> None:
            admitted.set()
            release.wait(5)

        breaker.call(body)
        results.append("stale done")

    early = threading.Thread(target=slow_success)
    early.start()
    admitted.wait(5)  # admitted while closed
    for _ in range(2):
        with pytest.raises(OSError, match="down"):
            breaker.call(_raise, OSError("down"))
    assert breaker.state() == "open"
    wait_open_time(clock)
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


def test_circuit_open_error_pickles_and_does_not_grow() -> None:
    registry = BreakerRegistry()
    breaker = registry.get("svc", breaker_config(failure_threshold=1, reset_after=600))
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
    breaker = registry.get("svc", breaker_config(failure_threshold=1))
    with pytest.raises(OSError, match="down"):
        breaker.call(_raise, OSError("down"))
    assert heard == ["open"]


def test_retry_budget_runs_out_while_failing() -> None:
    registry = BreakerRegistry()
    breaker = registry.get("svc", breaker_config(failure_threshold=100, retry_budget=0.5))
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
    first = registry.get("svc", breaker_config())
    assert registry.get("svc") is first
    assert registry.get("svc", breaker_config(failure_threshold=7)) is first
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
        "svc", breaker_config(failure_threshold=2, reset_after=0.001, half_open_probes=2)
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
