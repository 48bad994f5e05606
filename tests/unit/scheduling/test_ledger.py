"""The ledger says, as a value, why a triggered run must be skipped, and claims the state if not."""

from __future__ import annotations

from pathlib import Path

from flowfactory.data import DataRoot
from flowfactory.scheduling import Readiness, Skip, admit, claim, consumed_state, record_consumed

JAN = "year=2013/month=1"


def test_a_ready_unconsumed_state_is_admitted_and_claimed(tmp_path: Path) -> None:
    """Admission claims the state: a second run of the same state is then told it is taken."""
    root = DataRoot(str(tmp_path))
    state = Readiness("join", JAN, {"flights": "1:2", "weather": "3:4"})
    assert admit(root, state, "run-1") is None
    assert admit(root, state, "run-2") == Skip(
        f"input state {state.state} is being consumed by another run"
    )
    assert not claim(root, state, "run-3")


def test_inputs_not_ready_are_a_skip(tmp_path: Path) -> None:
    """A run started before every input has the partition is skipped, naming what is missing."""
    root = DataRoot(str(tmp_path))
    waiting = Readiness("join", JAN, {"flights": "1:2"}, missing=("weather",))
    assert admit(root, waiting, "run-1") == Skip("inputs not ready: waiting for weather")
    assert claim(root, waiting, "run-2")  # nothing was claimed for it


def test_a_consumed_state_is_a_skip(tmp_path: Path) -> None:
    """Once a state is recorded as consumed, a duplicate trigger of it is skipped."""
    root = DataRoot(str(tmp_path))
    state = Readiness("join", JAN, {"flights": "1:2", "weather": "3:4"})
    record_consumed(root, state, "run-1")
    assert consumed_state(root, "join", JAN) == state.state
    assert admit(root, state, "run-2") == Skip(f"input state {state.state} was already consumed")
    moved = Readiness("join", JAN, {"flights": "1:9", "weather": "3:4"})
    assert admit(root, moved, "run-3") is None
