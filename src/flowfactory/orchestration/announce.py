"""Announcing dataset updates and starting the consumers they make ready.

Used in four places: a pipeline's announce task (in-process, so consumer runs exist within
seconds), ``flowfactory emit`` for data that lands outside flowfactory, the router for updates
posted from outside, and reconciliation. Each creates the consumer runs itself, under the key
of their input state (see ``fanout``), so any number of them announcing the same state, on any
host, gives one run. A process that lands one partition after another (a loader, a replay)
announces them through an ``Announcer``, which creates the runs in the background while the
next updates come in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flowfactory import scheduling
from flowfactory.config import Project, load_project
from flowfactory.data import DataRoot
from flowfactory.orchestration import events
from flowfactory.orchestration.fanout import (
    Cause,
    ConsumerRun,
    Outcome,
    RunStarter,
    start_missing_runs,
    start_runs,
)
from flowfactory.scheduling import check_dataset, known_datasets
from flowfactory.settings import Settings, get_settings

__all__ = [
    "Announcer",
    "announce_update",
    "announce_updates",
    "reconcile_project",
    "report_not_started",
    "route_update",
]

RECONCILE_TAG = "trigger:reconcile"


def _update_cause(dataset: str, partition: str, source: str) -> Cause:
    """What the runs an update starts show as their cause (the current run, if any, made it)."""
    where = f"{dataset}[{partition}]" if partition else dataset
    related = [
        {
            **events.dataset_resource(dataset, partition),
            "prefect.resource.role": "updated-dataset",
        }
    ]
    run_id, run_name = flow_run.id, flow_run.name
    if run_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.role": "producer-run",
                "prefect.resource.name": str(run_name),
            }
        )
        source = source or f"by run {run_name}"
    message = " ".join(p for p in (f"{where} updated", source) if p)
    return Cause(
        message=message,
        tag=f"trigger:{dataset}",
        payload={"dataset": dataset, "partition": partition, "flow_run": str(run_id or "")},
        related=tuple(related),
    )


def _warn(message: str) -> None:
    try:
        get_run_logger().warning(message)
    except MissingContextError:
        logging.getLogger(__name__).warning(message)


def report_not_started(started: list[ConsumerRun]) -> None:
    """Log the consumers that got no run (reconciliation creates them later from the data)."""
    missed = [r for r in started if r.outcome in (Outcome.failed, Outcome.not_deployed)]
    if missed:
        reasons = "; ".join(f"{r.label}: {r.error or r.outcome.value}" for r in missed)
        _warn(f"no run for {len(missed)} ready consumer(s), left to reconciliation: {reasons}")


def announce_update(
    project: Project,
    root: DataRoot,
    dataset: str,
    partition: str,
    payload: Mapping[str, object],
    *,
    emit_updated: bool = True,
    source: str = "",
) -> list[ConsumerRun]:
    """Emit ``dataset.updated`` (unless already emitted), then start each ready consumer's run.

    ``source`` says who announced it, for the runs' state message (default: the current run).
    """
    return announce_updates(
        project, root, [(dataset, partition, payload)], emit_updated=emit_updated, source=source
    )


def _requests(
    project: Project,
    root: DataRoot,
    updates: Sequence[tuple[str, str, Mapping[str, object]]],
    *,
    emit_updated: bool,
    source: str,
) -> list[tuple[scheduling.Readiness, Cause]]:
    """``dataset.updated`` for each update (unless emitted already); the runs they make ready."""
    requests: list[tuple[scheduling.Readiness, Cause]] = []
    for dataset, partition, payload in updates:
        if emit_updated:
            events.emit(
                events.DATASET_UPDATED,
                events.dataset_resource(dataset, partition),
                {"dataset": dataset, "partition": partition, **payload},
            )
        cause = _update_cause(dataset, partition, source)
        ready = scheduling.evaluate_update(project, root, dataset, partition)
        requests.extend((inputs, cause) for inputs in ready)
    return requests


def announce_updates(
    project: Project,
    root: DataRoot,
    updates: Sequence[tuple[str, str, Mapping[str, object]]],
    *,
    emit_updated: bool = True,
    source: str = "",
) -> list[ConsumerRun]:
    """``announce_update`` for each (dataset, partition, payload), their runs created together."""
    requests = _requests(project, root, updates, emit_updated=emit_updated, source=source)
    started = start_runs(requests)
    report_not_started(started)
    return started


class Announcer:
    """Announces updates one after another; their consumer runs are created in the background.

    ``update`` emits ``dataset.updated``, works out which consumers it makes ready, and returns:
    the runs are created while the next updates come in, a deployment's several runs in one
    request. Leaving the ``with`` block waits for every run and logs the consumers that got
    none; ``started`` then lists what became of each, in order::

        with Announcer(project, root) as announcer:
            for partition in landed:
                announcer.update("orders", partition)
        print(announcer.started)
    """

    def __init__(
        self,
        project: Project,
        root: DataRoot,
        *,
        emit_updated: bool = True,
        source: str = "",
        concurrency: int | None = None,
    ) -> None:
        self._project, self._root = project, root
        self._emit_updated, self._source = emit_updated, source
        self._starter = RunStarter(concurrency=concurrency)
        self.started: list[ConsumerRun] = []

    def __enter__(self) -> Announcer:
        self._starter.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.started = self._starter.close()
        report_not_started(self.started)

    def update(
        self, dataset: str, partition: str = "", payload: Mapping[str, object] | None = None
    ) -> None:
        """Announce one update; its consumers' runs are queued for creation."""
        updates = [(dataset, partition, payload or {})]
        self._starter.submit(
            _requests(
                self._project,
                self._root,
                updates,
                emit_updated=self._emit_updated,
                source=self._source,
            )
        )


def route_update(dataset: str, partition: str, settings: Settings | None = None) -> list[str]:
    """For an update announced from outside: start the consumers it makes ready."""
    settings = settings or get_settings()
    project = load_project(settings.deployments_dir, settings)
    if dataset not in known_datasets(project):
        # Every project's router on a server sees every routed event; this one is not ours.
        return []
    check_dataset(project, dataset, partition)
    root = DataRoot(settings.data_root_url)
    started = announce_update(
        project,
        root,
        dataset,
        partition,
        {},
        emit_updated=False,
        source=f"(posted from outside, routed by run {flow_run.name})" if flow_run.id else "",
    )
    return [r.label for r in started if r.flow_run is not None]


def reconcile_project(settings: Settings | None = None) -> list[str]:
    """Start the run of every ready input state found in the data that has none, or a failed one."""
    settings = settings or get_settings()
    project = load_project(settings.deployments_dir, settings)
    root = DataRoot(settings.data_root_url)
    cause = Cause(
        message="reconcile: inputs ready in a state that no run consumed",
        tag=RECONCILE_TAG,
        payload={"reconcile": "true"},
    )
    started = start_missing_runs(list(scheduling.reconcile(project, root)), cause)
    report_not_started(started)
    return [r.label for r in started if r.outcome in (Outcome.created, Outcome.restarted)]
