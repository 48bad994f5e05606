"""Claims on input states, held by Prefect flow runs: the decisions, as values.

A consumer's run for an input state is created with an idempotency key derived from (consumer
deployment, partition, input state). Prefect's database keeps at most one flow run per (flow,
idempotency key), a unique index checked in the transaction that inserts the run, so the run
*is* the claim: whichever host creates it first wins, every other creation of the same key gets
that run back, and a Completed run for the key means the state was consumed.

Why flow runs rather than a table in PostgreSQL or keys in Redis: the claim and the run are one
row written in one transaction, so they cannot disagree (no claim left behind by a crash before
its run was created, no run without a claim); it needs no store besides the Prefect server every
worker already talks to; it does not depend on the data root, so it holds on object stores; and
the UI shows each claim as the run itself, with its state. A file under the data root cannot
give this on an object store, which has no exclusive create and no atomic rename.

The shell (``flowfactory.orchestration.fanout``) reads and creates the runs; this module says,
without Prefect, which run a state needs and whether a started run goes ahead.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from flowfactory.scheduling.inputs import Readiness

__all__ = [
    "KEY_PREFIX",
    "KeyedRun",
    "RunPhase",
    "Skip",
    "admit",
    "is_consumed",
    "run_key",
    "runs_to_start",
]

KEY_PREFIX: Final = "flowfactory.input-state"


def run_key(inputs: Readiness) -> str:
    """The idempotency key of the run that consumes ``inputs``.

    Every deployment of a project runs the one ``pipeline`` flow, and Prefect's uniqueness is per
    flow, so the key names the consumer (its deployment is ``pipeline/<name>``).
    """
    return f"{KEY_PREFIX}:{inputs.pipeline}:{inputs.partition}:{inputs.state}"


class RunPhase(StrEnum):
    """Where the run that holds a claim is, as far as claims are concerned."""

    in_flight = "in flight"  # scheduled, pending, running, paused: it will consume the state
    completed = "completed"  # the state was consumed (or the run found it superseded)
    failed = "failed"  # failed or crashed: the state is not consumed; the run is started again
    cancelled = "cancelled"  # someone cancelled it: left alone, to be retried by hand


@dataclass(frozen=True)
class KeyedRun:
    """A flow run created for an input state, as read from Prefect."""

    key: str
    flow_run: str
    name: str
    phase: RunPhase


def is_consumed(inputs: Readiness, consumed: Container[str]) -> bool:
    """True when the run for ``inputs`` completed (``consumed`` holds the keys of those runs)."""
    return run_key(inputs) in consumed


def runs_to_start(wanted: Iterable[Readiness], existing: Mapping[str, KeyedRun]) -> list[Readiness]:
    """The states among ``wanted`` whose run must be created, or started again after a failure."""
    found = []
    for inputs in wanted:
        run = existing.get(run_key(inputs))
        if run is None or run.phase is RunPhase.failed:
            found.append(inputs)
    return found


@dataclass(frozen=True)
class Skip:
    """Why a triggered run ends without touching its output.

    ``hand_off`` is the input state the data is in now, when it is not the one the run was
    created for: the run of that state does the work (the shell makes sure it exists).
    """

    reason: str
    hand_off: Readiness | None = None


def admit(inputs: Readiness, started_for: str) -> Skip | None:
    """Whether a run created for input state ``started_for`` goes ahead, given ``inputs`` now.

    Exactly one run exists per state (the key), so a run of the state it was created for goes
    ahead; one whose inputs moved since leaves the work to the run of the newer state.
    """
    if not inputs.ready:
        return Skip(f"inputs not ready: waiting for {', '.join(inputs.missing)}")
    if inputs.state != started_for:
        return Skip(
            f"input state {started_for} was superseded by {inputs.state} before this run "
            "started; the run of the newer state consumes it",
            hand_off=inputs,
        )
    return None
