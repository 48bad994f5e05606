"""Claims on input states: the run key, whether a run goes ahead, which states need a run."""

from __future__ import annotations

from flowfactory.scheduling import (
    KeyedRun,
    Readiness,
    RunPhase,
    Skip,
    admit,
    is_consumed,
    run_key,
    runs_to_start,
)

JAN = "year=2013/month=1"
STATE = Readiness("join", JAN, {"flights": "1:2", "weather": "3:4"})
MOVED = Readiness("join", JAN, {"flights": "1:9", "weather": "3:4"})


def test_the_run_key_names_consumer_partition_and_state() -> None:
    """One key per (consumer, partition, input state): another of any of the three differs."""
    assert run_key(STATE) == f"flowfactory.input-state:join:{JAN}:{STATE.state}"
    others = [
        Readiness("other", JAN, STATE.versions),
        Readiness("join", "year=2013/month=2", STATE.versions),
        MOVED,
    ]
    assert len({run_key(STATE), *(run_key(r) for r in others)}) == 4
    assert run_key(Readiness("join", JAN, dict(STATE.versions))) == run_key(STATE)


def test_a_run_of_the_state_it_was_created_for_goes_ahead() -> None:
    """The key makes it the only run of its state: nothing more to check."""
    assert admit(STATE, STATE.state) is None


def test_inputs_not_ready_are_a_skip() -> None:
    """A run whose inputs are gone is skipped, naming what is missing, and hands off nothing."""
    waiting = Readiness("join", JAN, {"flights": "1:2"}, missing=("weather",))
    assert admit(waiting, STATE.state) == Skip("inputs not ready: waiting for weather")


def test_inputs_that_moved_hand_the_work_to_the_newer_state() -> None:
    """A run created for a state the inputs left is skipped; the newer state's run does it."""
    skip = admit(MOVED, STATE.state)
    assert skip is not None
    assert skip.hand_off == MOVED
    assert f"input state {STATE.state} was superseded by {MOVED.state}" in skip.reason


def _run(inputs: Readiness, phase: RunPhase) -> KeyedRun:
    return KeyedRun(run_key(inputs), "run-id", "join[x]", phase)


def test_runs_to_start_are_the_missing_and_the_failed() -> None:
    """No run, or a failed one: start it; in flight, completed or cancelled: leave it."""
    states = [Readiness("join", f"month={m}", {"a": str(m)}) for m in range(5)]
    existing = {
        run.key: run
        for run in (
            _run(states[1], RunPhase.in_flight),
            _run(states[2], RunPhase.completed),
            _run(states[3], RunPhase.failed),
            _run(states[4], RunPhase.cancelled),
        )
    }
    assert runs_to_start(states, existing) == [states[0], states[3]]
    assert runs_to_start(states, {}) == states


def test_a_state_is_consumed_when_its_run_key_is_among_the_completed() -> None:
    """is_consumed looks the state's key up; another state of the same partition is not."""
    consumed = {run_key(STATE)}
    assert is_consumed(STATE, consumed)
    assert not is_consumed(MOVED, consumed)
