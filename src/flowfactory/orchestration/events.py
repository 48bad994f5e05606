"""Event names and resources (public contracts), and the one place that emits them to Prefect."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final
from uuid import UUID

import polars as pl

if TYPE_CHECKING:
    from prefect.assets import Asset
    from prefect.events import Event

    from flowfactory.canary import CanaryOutcome, LiveVersion
    from flowfactory.scheduling import Readiness

__all__ = [
    "ASSET_MATERIALIZED",
    "ASSET_REFERENCED",
    "CANARY_FAILED",
    "CANARY_INCONCLUSIVE",
    "CANARY_PASSED",
    "CIRCUIT_BREAKER_CLOSED",
    "CIRCUIT_BREAKER_HALF_OPENED",
    "CIRCUIT_BREAKER_OPENED",
    "DATASET_UPDATED",
    "PARTITION_LABEL",
    "PIPELINE_PROMOTED",
    "PIPELINE_READY",
    "PIPELINE_ROLLED_BACK",
    "ROUTE_LABEL",
    "SCHEMA_INCOMPATIBLE",
    "SLA_MISSED",
    "STATE_LABEL",
    "announce_ready",
    "breaker_resource",
    "dataset_resource",
    "emit",
    "emit_materialization",
    "emit_verdict",
    "emit_version_change",
    "pipeline_resource",
    "schema_fingerprint",
]

DATASET_UPDATED: Final = "dataset.updated"
PIPELINE_READY: Final = "pipeline.ready"
SLA_MISSED: Final = "sla.missed"
SCHEMA_INCOMPATIBLE: Final = "schema.incompatible"
CIRCUIT_BREAKER_OPENED: Final = "circuit-breaker.opened"
CIRCUIT_BREAKER_HALF_OPENED: Final = "circuit-breaker.half-opened"
CIRCUIT_BREAKER_CLOSED: Final = "circuit-breaker.closed"
CANARY_PASSED: Final = "canary.passed"
CANARY_FAILED: Final = "canary.failed"
CANARY_INCONCLUSIVE: Final = "canary.inconclusive"
PIPELINE_PROMOTED: Final = "pipeline.promoted"
PIPELINE_ROLLED_BACK: Final = "pipeline.rolled-back"
# Prefect's own asset events, emitted as a materializing task would (prefect.context.AssetContext).
ASSET_REFERENCED: Final = "prefect.asset.referenced"
ASSET_MATERIALIZED: Final = "prefect.asset.materialization.succeeded"
PARTITION_LABEL: Final = "dataset.partition"
STATE_LABEL: Final = "flowfactory.state"
# Plain HTTP producers add this label so that the dataset router evaluates their update;
# flowfactory's own producers evaluate readiness in-process and leave it out.
ROUTE_LABEL: Final = "flowfactory.route"


def dataset_resource(dataset: str, partition: str = "") -> dict[str, str]:
    """The resource of a dataset event: ``dataset.<name>``, partition as a label."""
    return {
        "prefect.resource.id": f"dataset.{dataset}",
        "prefect.resource.name": dataset,
        PARTITION_LABEL: partition,
    }


def pipeline_resource(pipeline: str) -> dict[str, str]:
    """The resource of a pipeline event: ``pipeline.<name>``."""
    return {"prefect.resource.id": f"pipeline.{pipeline}", "prefect.resource.name": pipeline}


def breaker_resource(dependency: str) -> dict[str, str]:
    """The resource of a circuit breaker event: ``circuit-breaker.<dependency>``."""
    return {
        "prefect.resource.id": f"circuit-breaker.{dependency}",
        "prefect.resource.name": dependency,
    }


def schema_fingerprint(schema: Mapping[str, pl.DataType]) -> str:
    """A short hash of column names and dtypes (time zones and precision included)."""
    text = "\n".join(f"{name}\t{dtype!r}" for name, dtype in schema.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def emit(
    event: str,
    resource: dict[str, str],
    payload: Mapping[str, object],
    *,
    event_id: str | None = None,
    related: list[dict[str, str]] | None = None,
) -> Event | None:
    """Emit one event; inside a run Prefect relates it to the flow run and deployment."""
    # deploy and `flowfactory render` read the event names here without importing Prefect.
    from prefect.events import emit_event  # noqa: PLC0415

    return emit_event(
        event=event,
        resource=resource,
        payload=dict(payload),
        id=UUID(event_id) if event_id else None,
        related=related,
    )


def emit_materialization(
    asset: Asset, upstream: list[Asset], payload: Mapping[str, object]
) -> Event | None:
    """Report a materialization of ``asset`` from ``upstream`` the way Prefect's assets do.

    A materializing task reports once per task run; a run writes several partitions, so each
    write is reported here with its partition in the payload.
    """
    from prefect.context import AssetContext  # noqa: PLC0415 - loads Prefect

    for source in upstream:
        emit(ASSET_REFERENCED, AssetContext.asset_as_resource(source), {}, related=[])
    return emit(
        ASSET_MATERIALIZED,
        AssetContext.asset_as_resource(asset),
        payload,
        related=[AssetContext.asset_as_related(source) for source in upstream],
    )


def announce_ready(
    ready: Readiness, cause: Mapping[str, str], related: list[dict[str, str]] | None = None
) -> Event | None:
    """Emit ``pipeline.ready``; its id is derived from the input state, so repeats collapse.

    ``related`` names the run that consumes the state and what caused it (the updated dataset,
    the producer run), so that the event links them in the UI.
    """
    resource = {
        **pipeline_resource(ready.pipeline),
        PARTITION_LABEL: ready.partition,
        STATE_LABEL: ready.state,
    }
    payload = {"versions": ready.versions, "cause": dict(cause)}
    return emit(PIPELINE_READY, resource, payload, event_id=ready.event_id, related=related)


def emit_verdict(outcome: CanaryOutcome, versions: list[str]) -> Event | None:
    """Emit ``canary.passed``, ``.failed`` or ``.inconclusive`` with the diff counts."""
    report = outcome.report
    payload: dict[str, object] = {
        "versions": versions,
        "sample": outcome.sample,
        "sample_rows": dict(outcome.rows_in),
        "message": outcome.message,
    }
    if report is not None:
        payload.update(
            rows_v1=report.rows_v1,
            rows_v2=report.rows_v2,
            rows_in_both=report.rows_in_both,
            rows_only_v1=report.rows_only_v1,
            rows_only_v2=report.rows_only_v2,
            rows_changed=report.rows_changed,
            unequal_values={c.column: c.unequal for c in report.differing_columns},
            schema_changes=[str(s) for s in report.schema_changes],
            duplicate_keys=[report.duplicate_keys_v1, report.duplicate_keys_v2],
            certifies=report.certifies(),
        )
    name = f"canary.{outcome.verdict.value}"
    return emit(name, pipeline_resource(outcome.pipeline), payload)


def emit_version_change(before: LiveVersion, after: LiveVersion, canary_run: str) -> Event | None:
    """Emit ``pipeline.promoted`` or ``pipeline.rolled-back`` when the live version moved."""
    if before.version == after.version:
        return None
    event = PIPELINE_PROMOTED if after.version == "v2" else PIPELINE_ROLLED_BACK
    return emit(
        event,
        pipeline_resource(after.pipeline),
        {"from_version": before.version, "to_version": after.version, "canary_run": canary_run},
    )
