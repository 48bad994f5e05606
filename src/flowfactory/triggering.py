"""Announcing dataset updates and starting the consumers they make ready.

Used in three places: a pipeline's load step (in-process, so consumers start within a second or
two), ``flowfactory emit`` for data that lands outside flowfactory, and the router and
reconciliation flows on the server.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from flowfactory import events, scheduling
from flowfactory.datasets import DataRoot, Partition
from flowfactory.errors import FlowfactoryError
from flowfactory.loader import Project, load_project
from flowfactory.settings import Settings, get_settings

__all__ = ["announce_update", "known_datasets", "reconcile_project", "route_update"]


def known_datasets(project: Project) -> set[str]:
    """Every dataset a pipeline produces or reads (external ones included)."""
    names = set(project.producers)
    for pipeline in project.pipelines:
        names.update(pipeline.config.input_dataset_names)
    return names


def announce_update(
    project: Project,
    root: DataRoot,
    dataset: str,
    partition: str,
    payload: Mapping[str, object],
    *,
    emit_updated: bool = True,
) -> list[scheduling.Readiness]:
    """Emit ``dataset.updated`` (unless already emitted), then ``pipeline.ready`` per consumer."""
    if emit_updated:
        events.emit(
            events.DATASET_UPDATED,
            events.dataset_resource(dataset, partition),
            {"dataset": dataset, "partition": partition, **payload},
        )
    ready = scheduling.evaluate_update(project, root, dataset, partition)
    for state in ready:
        events.announce_ready(state, {"dataset": dataset, "partition": partition})
    return ready


def _names(ready: list[scheduling.Readiness]) -> list[str]:
    return [f"{r.pipeline}[{r.partition}]" if r.partition else r.pipeline for r in ready]


def check_dataset(project: Project, dataset: str, partition: str) -> None:
    """Raise a FlowfactoryError for an unknown dataset or a malformed partition."""
    known = known_datasets(project)
    if dataset not in known:
        close = difflib.get_close_matches(dataset, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise FlowfactoryError(f"no pipeline reads or produces dataset {dataset!r}{hint}")
    if partition:
        try:
            Partition.parse(partition)
        except ValueError as exc:
            raise FlowfactoryError(str(exc)) from None


def route_update(dataset: str, partition: str, settings: Settings | None = None) -> list[str]:
    """For an update announced from outside: start the consumers it makes ready."""
    settings = settings or get_settings()
    project = load_project(settings.deployments_dir, settings)
    if dataset not in known_datasets(project):
        # Every project's router on a server sees every routed event; this one is not ours.
        return []
    check_dataset(project, dataset, partition)
    root = DataRoot(settings.data_root_url)
    ready = announce_update(project, root, dataset, partition, {}, emit_updated=False)
    return _names(ready)


def reconcile_project(settings: Settings | None = None) -> list[str]:
    """Announce every ready, unconsumed input state found in the data itself."""
    settings = settings or get_settings()
    project = load_project(settings.deployments_dir, settings)
    root = DataRoot(settings.data_root_url)
    ready = list(scheduling.reconcile(project, root))
    for state in ready:
        events.announce_ready(state, {"reconcile": "true"})
    return _names(ready)
