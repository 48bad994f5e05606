"""flowfactory's own flows: the dataset router, reconciliation and SLA checks."""

from __future__ import annotations

from prefect import flow

from flowfactory.orchestration import check_sla, reconcile_project, route_update


@flow(name="flowfactory-router", log_prints=True)
def dataset_router(dataset: str, partition: str = "") -> list[str]:
    """Start the consumers that an update of DATASET, posted from outside, makes ready."""
    return route_update(dataset, partition)


@flow(name="flowfactory-reconcile", log_prints=True)
def reconcile() -> list[str]:
    """Start every consumer whose inputs changed without a run, e.g. after a server restart."""
    return reconcile_project()


@flow(name="flowfactory-sla", log_prints=True)
async def sla_check(pipeline: str, sla: str, expected: str, subject: str = "") -> bool:
    """Emit sla.missed (and notify) when PIPELINE misses its SLA; True when it was missed."""
    return await check_sla(pipeline, sla, expected, subject)
