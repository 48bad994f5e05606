"""The pure state machine of one circuit, driven by a fake clock: no lock, no calls, no sleep."""

from __future__ import annotations

import asyncio

import pytest
from tests.breaker_helpers import RESET, FakeClock, breaker_config

from flowfactory.breaker import CircuitMachine, Permit, Rejection, classify
from flowfactory.errors import CircuitOpenError


def machine(clock: FakeClock, **changes: object) -> CircuitMachine:
    """A machine on ``clock`` whose jitter draws are always the middle of the range."""
    return CircuitMachine(
        "svc", breaker_config(**changes), clock=clock, random_fraction=lambda: 0.5
    )


def permit(circuit: CircuitMachine) -> Permit:
    """Admit one call, which the test expects to go through."""
    verdict, _ = circuit.admit()
    assert isinstance(verdict, Permit)
    return verdict


def trip(circuit: CircuitMachine) -> None:
    """Fail calls until the circuit opens."""
    while circuit.status()[0] == "closed":
        circuit.record(permit(circuit), "failure", OSError("down"))


def test_threshold_opens_then_one_probe_closes_after_reset_after(clock: FakeClock) -> None:
    """Three failures open it; it rejects until the clock passes reset_after, then probes."""
    circuit = machine(clock)
    moves = [circuit.record(permit(circuit), "failure", OSError("down")) for _ in range(3)]
    assert [[(t.old, t.new, t.failures, t.last_error) for t in m] for m in moves] == [
        [],
        [],
        [("closed", "open", 3, "OSError")],
    ]
    assert moves[2][0].open_seconds == RESET
    clock.advance(RESET - 1)
    assert circuit.admit() == (Rejection("open", pytest.approx(1.0)), [])
    clock.advance(1)
    probe, moved = circuit.admit()
    assert [(t.old, t.new) for t in moved] == [("open", "half-open")]
    assert isinstance(probe, Permit)
    assert probe.probe
    assert circuit.admit() == (Rejection("half-open", RESET), [])
    closed = circuit.record(probe, "success")
    assert [(t.old, t.new) for t in closed] == [("half-open", "closed")]
    assert circuit.status() == ("closed", 0, None)


def test_half_open_lets_through_the_configured_probes(clock: FakeClock) -> None:
    """Three probes at once; the fourth is rejected until a neutral probe gives its slot back."""
    circuit = machine(clock, half_open_probes=3)
    trip(circuit)
    clock.advance(RESET)
    probes = [permit(circuit) for _ in range(3)]
    assert all(p.probe for p in probes)
    assert isinstance(circuit.admit()[0], Rejection)
    assert circuit.record(probes[0], "neutral") == []
    assert permit(circuit).probe


def test_open_time_backs_off_per_reopen_shortened_by_jitter(clock: FakeClock) -> None:
    """10 s, 20 s, then the 30 s ceiling, each less a jitter of half of 20 %; closing resets."""
    circuit = machine(
        clock, reset_after=10, max_reset_after=30, backoff=2.0, jitter=0.2, failure_threshold=1
    )
    spans = []
    for _ in range(4):
        spans.append(circuit.record(permit(circuit), "failure", OSError("down"))[-1].open_seconds)
        clock.advance(30)
    assert spans == pytest.approx([9.0, 18.0, 27.0, 27.0])
    circuit.record(permit(circuit), "success")
    circuit.record(permit(circuit), "failure", OSError("down"))
    assert circuit.status()[2] == pytest.approx(9.0)


def test_an_outcome_from_before_a_transition_is_dropped(clock: FakeClock) -> None:
    """A success admitted while closed cannot close the half-open circuit it finishes in."""
    circuit = machine(clock, failure_threshold=1)
    early = permit(circuit)
    trip(circuit)
    clock.advance(RESET)
    probe = permit(circuit)
    assert circuit.record(early, "success") == []
    assert circuit.stale == 1
    assert circuit.status()[0] == "half-open"
    reopened = circuit.record(probe, "failure", OSError("still down"))
    assert [(t.old, t.new) for t in reopened] == [("half-open", "open")]


def test_slow_calls_on_the_clock_open_the_window(clock: FakeClock) -> None:
    """Successes slower than slow_call_duration open it once half of the window was slow."""
    circuit = machine(clock, slow_call_duration=1.0, slow_call_rate_threshold=0.5, minimum_calls=4)
    for seconds in (2.0, 0.5, 2.0):
        call = permit(circuit)
        clock.advance(seconds)
        assert circuit.record(call, "success") == []
    call = permit(circuit)
    clock.advance(0.5)
    assert [(t.old, t.new) for t in circuit.record(call, "success")] == [("closed", "open")]


def test_status_reads_half_open_once_the_open_time_is_up(clock: FakeClock) -> None:
    """No call is needed to see that a probe may go."""
    circuit = machine(clock, failure_threshold=2)
    trip(circuit)
    assert circuit.status() == ("open", 0, RESET)
    clock.advance(RESET - 1)
    assert circuit.status() == ("open", 0, 1.0)
    clock.advance(1)
    assert circuit.status() == ("half-open", 0, 0.0)


def test_a_new_config_changes_thresholds_not_state(clock: FakeClock) -> None:
    """Reconfiguring keeps the failures counted so far and trips at the new threshold."""
    circuit = machine(clock, failure_threshold=5)
    circuit.record(permit(circuit), "failure", OSError("down"))
    circuit.configure(breaker_config(failure_threshold=2))
    assert circuit.status() == ("closed", 1, None)
    circuit.record(permit(circuit), "failure", OSError("down"))
    assert circuit.status()[0] == "open"


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (None, "success"),
        (OSError("down"), "failure"),
        (asyncio.CancelledError(), "neutral"),
        (KeyboardInterrupt(), "neutral"),
        (CircuitOpenError("other", 1.0), "neutral"),
        (KeyError("missing"), "neutral"),  # ignored
        (ValueError("bad request"), "success"),  # proves the dependency answered
    ],
)
def test_classify(exc: BaseException | None, outcome: str) -> None:
    """Only an ``Exception`` outside ``ignore`` and ``success_on`` is a failure."""
    assert classify(exc, ignore=KeyError, success_on=lambda e: isinstance(e, ValueError)) == outcome
