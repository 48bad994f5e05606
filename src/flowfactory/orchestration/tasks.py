"""The Prefect tasks of a pipeline run: extract each source, transform, check, load, announce."""

from __future__ import annotations

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flowfactory.breaker import guarded
from flowfactory.config import (
    CircuitBreakerConfig,
    DatasetSource,
    FileSource,
    HttpSource,
    PipelineFile,
    Project,
    load_project,
)
from flowfactory.data import (
    DataRoot,
    Partition,
    TransformFn,
    WrittenPartition,
    apply_transform,
    read_source,
    write_dataset,
)
from flowfactory.errors import ConfigError, SchemaIncompatibleError
from flowfactory.orchestration import events
from flowfactory.orchestration.announce import announce_updates
from flowfactory.orchestration.breakers import source_breaker
from flowfactory.orchestration.http import read_http
from flowfactory.orchestration.partitions import (
    publish_partitions,
    record_writes,
    report_materializations,
)
from flowfactory.schema import check_output
from flowfactory.settings import Settings

__all__ = ["announce", "check_contract", "extract", "load", "transform"]


@task(name="extract", task_run_name="extract-{table}", cache_policy=NO_CACHE)
def extract(
    table: str,  # noqa: ARG001 - names the task run in the UI
    source: DatasetSource | FileSource | HttpSource,
    root: DataRoot,
    partition: Partition | None,
    breaker: CircuitBreakerConfig | None = None,
) -> pl.DataFrame:
    """Read one source (narrowed to the partition) into memory, through its breaker if remote."""
    guard = source_breaker(source, breaker) if breaker is not None else None
    if isinstance(source, HttpSource):
        return read_http(source, guard)
    return guarded(guard, lambda: read_source(source, root, partition).collect())


@task(name="transform", cache_policy=NO_CACHE)
def transform(
    pipeline: PipelineFile, frames: dict[str, pl.DataFrame], function: TransformFn | None
) -> pl.DataFrame:
    """Run the pipeline's SQL or Python transform."""
    lazy = {name: frame.lazy() for name, frame in frames.items()}
    return apply_transform(pipeline, lazy, function).collect()


@task(name="check-contract", cache_policy=NO_CACHE)
def check_contract(pipeline: PipelineFile, frame: pl.DataFrame, settings: Settings) -> None:
    """Refuse the write when the output breaks its locked contract; emit schema.incompatible."""
    report = check_output(pipeline, frame, settings)
    if report is None:
        return
    for change in report.warnings:
        get_run_logger().warning("schema warning: %s", change.describe())
    if report.breaking:
        events.emit(
            events.SCHEMA_INCOMPATIBLE,
            events.dataset_resource(report.dataset),
            report.payload(),
        )
        raise SchemaIncompatibleError(report.message(), report.columns)


@task(name="load", task_run_name="load-{pipeline.name}", cache_policy=NO_CACHE)
def load(
    pipeline: PipelineFile, frame: pl.DataFrame, root: DataRoot, partition: Partition | None
) -> list[WrittenPartition]:
    """Write the output's partitions atomically."""
    return write_dataset(root, frame, pipeline.config.destination, partition)


@task(name="announce", cache_policy=NO_CACHE)
def announce(
    pipeline: PipelineFile,
    written: list[WrittenPartition],
    schema: dict[str, pl.DataType],
    root: DataRoot,
    settings: Settings,
    *,
    scope: Partition | None = None,
    inputs: dict[str, str | None] | None = None,
) -> list[str]:
    """Record each partition written (with the ``inputs`` versions read for ``scope``), emit
    dataset.updated and its asset materialization, then create the runs of the consumers it
    makes ready (each with its pipeline.ready); publish the output's partition view.
    """
    destination = pipeline.config.destination
    fingerprint = events.schema_fingerprint(schema)
    run_id = str(flow_run.id) if flow_run.id else ""
    project = _project_or_none(settings)
    record_writes(pipeline, written, root, scope=scope, inputs=inputs or {}, flow_run=run_id)
    announced = [p for p in written if p.changed or destination.announce != "changed"]
    report_materializations(pipeline, announced, root, run_id)
    updates: list[tuple[str, str, dict[str, object]]] = []
    for part in announced:
        partition = str(part.partition) if part.partition else ""
        payload: dict[str, object] = {
            "rows": part.rows,
            "bytes": part.bytes,
            "schema_fingerprint": fingerprint,
            "content_hash": part.content_hash,
            "pipeline": pipeline.name,
            "flow_run": run_id,
        }
        if project is None:
            events.emit(
                events.DATASET_UPDATED,
                events.dataset_resource(part.dataset, partition),
                {"dataset": part.dataset, "partition": partition, **payload},
            )
        else:
            updates.append((part.dataset, partition, payload))
    # Every partition's consumers at once: their runs are created concurrently.
    runs = announce_updates(project, root, updates) if project is not None and updates else []
    for run in runs:
        get_run_logger().info("inputs ready for %s: run %s", run.label, run.outcome.value)
    started = [r.label for r in runs]
    if project is not None:
        publish_partitions(project, root, destination.dataset)
    return started


def _project_or_none(settings: Settings) -> Project | None:
    try:
        return load_project(settings.deployments_dir, settings)
    except ConfigError as exc:
        get_run_logger().warning(
            "consumers not evaluated: the pipeline files have %d problem(s); first: %s",
            len(exc.problems),
            exc.problems[0].format(),
        )
        return None
