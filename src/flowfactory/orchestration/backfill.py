"""The shell of a backfill: create the plan's runs through the pipeline's deployment, at most a
given number in flight, and watch them to the end.

Runs are created only as others finish, so an interrupt leaves few behind: on Ctrl-C the runs
created but not started yet are cancelled, no more are created, and those already running go on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import AwaitingRetry, Cancelled

from flowfactory.errors import FlowfactoryError
from flowfactory.orchestration.entrypoints import PIPELINE_FLOW
from flowfactory.scheduling import BackfillItem, BackfillPlan

__all__ = ["BACKFILL_TAG", "BackfillOutcome", "BackfillRun", "RunStatus", "run_backfill"]

_NOT_STARTED: Final = (StateType.SCHEDULED, StateType.PENDING)
# A run of the state that ended so is started again, as the UI's Retry does.
_RESTARTABLE: Final = (StateType.FAILED, StateType.CRASHED)
BACKFILL_TAG: Final = "backfill"


class RunStatus(StrEnum):
    """Where one partition of a backfill ended."""

    completed = "completed"
    skipped = "skipped"
    failed = "failed"
    cancelled = "cancelled"
    running = "running"  # still running when the backfill was interrupted
    not_created = "not created"  # the backfill was interrupted before its turn


@dataclass
class BackfillRun:
    """One partition of a backfill and its run, if it got one."""

    partition: str
    status: RunStatus
    flow_run_id: UUID | None = None
    state_name: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class BackfillOutcome:
    """Every partition of the plan, in its order, and whether the backfill was interrupted."""

    runs: list[BackfillRun]
    interrupted: bool = False

    def count(self, status: RunStatus) -> int:
        """How many partitions ended in ``status``."""
        return sum(run.status is status for run in self.runs)

    @property
    def failed(self) -> bool:
        """True unless every partition completed or was skipped."""
        done = (RunStatus.completed, RunStatus.skipped)
        return self.interrupted or any(run.status not in done for run in self.runs)


def _final_status(flow_run: FlowRun) -> RunStatus:
    state = flow_run.state
    if state is None or not state.is_final():
        return RunStatus.running
    if state.is_completed():
        # The flow ends a run whose input state was consumed meanwhile as Completed "Skipped".
        return RunStatus.skipped if state.name == "Skipped" else RunStatus.completed
    return RunStatus.cancelled if state.is_cancelled() else RunStatus.failed


def _deployment_id(client: SyncPrefectClient, pipeline: str) -> UUID:
    name = f"{PIPELINE_FLOW}/{pipeline}"
    try:
        return client.read_deployment_by_name(name).id
    except ObjectNotFound:
        raise FlowfactoryError(
            f"no deployment {name} on the Prefect API; register it with `flowfactory deploy`"
        ) from None


class _Watch:
    """The runs of one backfill: created up to the limit, then polled until they end."""

    def __init__(
        self,
        client: SyncPrefectClient,
        plan: BackfillPlan,
        on_finished: Callable[[BackfillRun], None],
    ) -> None:
        self.client = client
        self.plan = plan
        self.on_finished = on_finished
        self.deployment_id = _deployment_id(client, plan.pipeline)
        self.by_partition = {
            item.partition: BackfillRun(
                item.partition,
                RunStatus.skipped if item.skip else RunStatus.not_created,
                message=item.skip,
            )
            for item in plan.items
        }
        self.waiting = deque(plan.to_run)
        self.in_flight: dict[UUID, BackfillRun] = {}

    def create(self, item: BackfillItem) -> None:
        # Under the input state's key, the run is the one run of that state: one the state's
        # producer created meanwhile is returned instead of a second.
        flow_run = self.client.create_flow_run_from_deployment(
            self.deployment_id,
            parameters={
                "name": self.plan.pipeline,
                "partition": item.partition,
                "state": item.state,
            },
            tags=[BACKFILL_TAG],
            idempotency_key=item.key,
        )
        state = flow_run.state
        if item.key is not None and state is not None and state.type in _RESTARTABLE:
            self.client.set_flow_run_state(flow_run.id, AwaitingRetry(message="backfill"))
        run = self.by_partition[item.partition]
        run.flow_run_id, run.status = flow_run.id, RunStatus.running
        self.in_flight[flow_run.id] = run

    def fill(self, concurrency: int) -> None:
        while self.waiting and len(self.in_flight) < concurrency:
            self.create(self.waiting.popleft())

    def poll(self) -> list[FlowRun]:
        if not self.in_flight:
            return []
        return self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(self.in_flight)))
        )

    def collect(self) -> None:
        for flow_run in self.poll():
            status = _final_status(flow_run)
            if status is RunStatus.running:
                continue
            run = self.in_flight.pop(flow_run.id)
            run.status = status
            if flow_run.state is not None:
                run.state_name, run.message = flow_run.state.name, flow_run.state.message
            self.on_finished(run)

    def cancel_not_started(self) -> None:
        self.waiting.clear()
        for flow_run in self.poll():
            if flow_run.state is not None and flow_run.state.type in _NOT_STARTED:
                self.client.set_flow_run_state(
                    flow_run.id, Cancelled(message="backfill interrupted"), force=True
                )
                run = self.in_flight.pop(flow_run.id)
                run.status, run.state_name = RunStatus.cancelled, "Cancelled"
                self.on_finished(run)


def run_backfill(
    plan: BackfillPlan,
    *,
    concurrency: int,
    poll_seconds: float = 1.0,
    on_finished: Callable[[BackfillRun], None] = lambda _: None,
) -> BackfillOutcome:
    """Run ``plan`` through the pipeline's deployment on the workers; wait for every run.

    ``on_finished`` hears of each run as it ends. Ctrl-C cancels the runs not started yet and
    returns an interrupted outcome instead of raising.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    with get_client(sync_client=True) as client:
        watch = _Watch(client, plan, on_finished)
        interrupted = False
        try:
            while watch.waiting or watch.in_flight:
                watch.fill(concurrency)
                time.sleep(poll_seconds)
                watch.collect()
        except KeyboardInterrupt:
            interrupted = True
            watch.cancel_not_started()
    return BackfillOutcome(list(watch.by_partition.values()), interrupted)
