"""What a replayed month's runs amount to: done, failed, blocked behind a failure, still moving,
or stalled. A pure core: the replay observes the runs, this module decides, with the clock passed
in, so that progress, stall and failure are values the unit tier checks.

A pipeline's verdict for the month:

- completed: one of its runs completed (Skipped counts: another run consumed the same inputs);
- up to date: it has no run, and its inputs' current state was already consumed (a month that
  is replayed again starts nothing);
- failed: it has runs, every one ended, none completed;
- blocked: it has no run, and a pipeline it reads from failed or is blocked, so none will come;
- waiting: no run yet, or a run still Scheduled, Pending or Running.

The month is settled when no pipeline is waiting. While some are, the replay waits as long as the
runs move (a run appears or changes state); after ``stall_after`` seconds without any move it
reports the waiting ones as stalled, which is not a failure of theirs.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["MonthProgress", "ObservedRun", "Outcome", "Verdict", "assess"]

_ENDED: Final = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


class Verdict(enum.StrEnum):
    """Where one pipeline stands for the month."""

    COMPLETED = "completed"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    BLOCKED = "blocked"
    WAITING = "waiting"


class Outcome(enum.StrEnum):
    """Where the month stands."""

    SETTLED = "settled"
    WAITING = "waiting"
    STALLED = "stalled"


@dataclass(frozen=True)
class ObservedRun:
    """One flow run of the month as the API showed it."""

    pipeline: str
    run_id: str
    state_type: str  # a Prefect StateType value: COMPLETED, RUNNING, ...
    state_name: str  # what the UI shows: Completed, Skipped, Late, AwaitingRetry, ...
    state_id: str  # changes with every state the run enters

    @property
    def ended(self) -> bool:
        """The run reached a final state."""
        return self.state_type in _ENDED


@dataclass(frozen=True)
class MonthProgress:
    """The month's verdicts after one observation, and when its runs last moved."""

    outcome: Outcome
    verdicts: Mapping[str, Verdict]
    states: Mapping[str, tuple[str, ...]]
    moved_at: float
    blocked_by: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fingerprint: frozenset[tuple[str, str]] = frozenset()

    def named(self, verdict: Verdict) -> list[str]:
        """The pipelines with ``verdict``, in the order they were given."""
        return [name for name, seen in self.verdicts.items() if seen is verdict]


def _verdict(runs: Sequence[ObservedRun], up_to_date: bool) -> Verdict:
    if any(run.state_type == "COMPLETED" for run in runs):
        return Verdict.COMPLETED
    if runs and all(run.ended for run in runs):
        return Verdict.FAILED
    if not runs and up_to_date:
        return Verdict.UP_TO_DATE
    return Verdict.WAITING


def _blocked(
    verdicts: dict[str, Verdict], upstream: Mapping[str, Iterable[str]], runs: Mapping[str, int]
) -> dict[str, tuple[str, ...]]:
    """Pipelines without a run whose inputs' producers failed or are blocked, transitively."""
    blocked: dict[str, tuple[str, ...]] = {}
    changed = True
    while changed:
        changed = False
        for name, verdict in verdicts.items():
            if verdict is not Verdict.WAITING or runs.get(name):
                continue
            causes = tuple(
                u
                for u in upstream.get(name, ())
                if verdicts.get(u) in {Verdict.FAILED, Verdict.BLOCKED}
            )
            if causes:
                verdicts[name] = Verdict.BLOCKED
                blocked[name] = causes
                changed = True
    return blocked


def assess(
    pipelines: Sequence[str],
    upstream: Mapping[str, Iterable[str]],
    runs: Iterable[ObservedRun],
    *,
    now: float,
    stall_after: float,
    previous: MonthProgress | None = None,
    up_to_date: Collection[str] = (),
) -> MonthProgress:
    """The month after observing ``runs`` at ``now``; ``previous`` is the last observation.

    ``upstream`` names, per pipeline, the pipelines it reads from; ``up_to_date`` those whose
    inputs' current state was already consumed.
    """
    by_pipeline: dict[str, list[ObservedRun]] = {name: [] for name in pipelines}
    for run in runs:
        if run.pipeline in by_pipeline:
            by_pipeline[run.pipeline].append(run)
    verdicts = {name: _verdict(seen, name in up_to_date) for name, seen in by_pipeline.items()}
    blocked_by = _blocked(verdicts, upstream, {n: len(s) for n, s in by_pipeline.items()})
    fingerprint = frozenset((r.run_id, r.state_id) for seen in by_pipeline.values() for r in seen)
    moved = previous is None or fingerprint != previous.fingerprint
    moved_at = now if moved or previous is None else previous.moved_at
    if Verdict.WAITING not in verdicts.values():
        outcome = Outcome.SETTLED
    elif now - moved_at >= stall_after:
        outcome = Outcome.STALLED
    else:
        outcome = Outcome.WAITING
    return MonthProgress(
        outcome=outcome,
        verdicts=verdicts,
        states={name: tuple(r.state_name for r in seen) for name, seen in by_pipeline.items()},
        moved_at=moved_at,
        blocked_by=blocked_by,
        fingerprint=fingerprint,
    )
