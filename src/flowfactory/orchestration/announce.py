"""Announcing dataset updates and starting the consumers they make ready.

Used in three places: a pipeline's load step (in-process, so consumers start within a second or
two), ``flowfactory emit`` for data that lands outside flowfactory, and the router and
reconciliation flows on the server.
"""

from __future__ import annotations

from collections.abc import Mapping

from flowfactory import scheduling
from flowfactory.config import Project, load_project
from flowfactory.data import DataRoot
from flowfactory.orchestration import events
from flowfactory.scheduling import check_dataset, known_datasets
from flowfactory.settings import Settings, get_settings

__all__ = ["announce_update", "reconcile_project", "route_update"]


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
