"""The ledger of consumed input states and claims, kept next to the data.

A consumer records the input state it consumed for each partition, so that duplicate triggers
and re-runs find it consumed; a run claims its input state before it starts, so that two
concurrent runs of the same state cannot both consume it. The ledger lives under the data root
(``_flowfactory/``) because it must survive server restarts. ``admit`` returns why a triggered
run must be skipped, as a value; the flow maps it to a Prefect state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from flowfactory.data import DataRoot
from flowfactory.scheduling.inputs import Readiness

__all__ = ["STATE_DIR", "Skip", "admit", "claim", "consumed_state", "record_consumed", "release"]

# flowfactory's own records under the data root: the ledger, claims, partition writes.
STATE_DIR: Final = "_flowfactory"


@dataclass(frozen=True)
class Skip:
    """Why a triggered run ends without touching its output."""

    reason: str


def admit(root: DataRoot, inputs: Readiness, flow_run: str | None) -> Skip | None:
    """Claim ``inputs`` for a triggered run; or say why the run must be skipped instead."""
    if not inputs.ready:
        return Skip(f"inputs not ready: waiting for {', '.join(inputs.missing)}")
    if consumed_state(root, inputs.pipeline, inputs.partition) == inputs.state:
        return Skip(f"input state {inputs.state} was already consumed")
    if not claim(root, inputs, flow_run):
        return Skip(f"input state {inputs.state} is being consumed by another run")
    return None


def _consumed_path(pipeline: str, partition: str) -> str:
    return f"{STATE_DIR}/consumed/{pipeline}/{partition or '_all'}.json"


def consumed_state(root: DataRoot, pipeline: str, partition: str) -> str | None:
    """The input state a consumer last consumed for a partition."""
    data = root.get(_consumed_path(pipeline, partition))
    if data is None:
        return None
    state = json.loads(data).get("state")
    return str(state) if state else None


def record_consumed(root: DataRoot, state: Readiness, flow_run: str | None) -> None:
    """Remember that ``state`` was consumed (after the output was written)."""
    record = {"state": state.state, "versions": state.versions, "flow_run": flow_run}
    root.put_atomic(
        _consumed_path(state.pipeline, state.partition), json.dumps(record, indent=2).encode()
    )


def _claim_path(state: Readiness) -> str:
    return f"{STATE_DIR}/claims/{state.pipeline}/{state.state}"


def claim(root: DataRoot, state: Readiness, flow_run: str | None) -> bool:
    """Take the right to consume ``state``; False when a concurrent run already has it."""
    return root.create_exclusive(_claim_path(state), (flow_run or "").encode())


def release(root: DataRoot, state: Readiness) -> None:
    """Give a claim back (the run failed, so another may try the same state)."""
    root.remove(_claim_path(state))
