"""The Prefect tasks of a pipeline run (extract each source, transform, load) and their wiring."""

from __future__ import annotations

import re
import time
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed

from flowfactory import events, scheduling
from flowfactory.breaker.integration import (
    guarded,
    retry_condition,
    source_breaker,
    source_dependency,
)
from flowfactory.canary import pipeline_at
from flowfactory.config import CircuitBreakerConfig, DatasetSource, FileSource, HttpSource
from flowfactory.datasets import DataRoot, Partition, WrittenPartition
from flowfactory.engine import (
    RunSummary,
    TransformFn,
    apply_transform,
    find_pipeline,
    read_source,
    resolve_transform,
)
from flowfactory.errors import ConfigError, SchemaIncompatibleError
from flowfactory.http_source import read_http
from flowfactory.loader import PipelineFile, Project, load_project
from flowfactory.settings import Settings, get_settings
from flowfactory.triggering import announce_update

__all__ = ["announce", "check_contract", "extract", "load", "run_pipeline", "transform"]


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
    from flowfactory.schema_check import check_output  # noqa: PLC0415

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
    return root.write_dataset(frame, pipeline.config.destination, partition)


@task(name="announce", cache_policy=NO_CACHE)
def announce(
    pipeline: PipelineFile,
    written: list[WrittenPartition],
    schema: dict[str, pl.DataType],
    root: DataRoot,
    settings: Settings,
) -> list[str]:
    """Emit dataset.updated for each partition written, then pipeline.ready for consumers."""
    destination = pipeline.config.destination
    fingerprint = events.schema_fingerprint(schema)
    run_id = str(flow_run.id) if flow_run.id else ""
    project = _project_or_none(settings)
    started: list[str] = []
    for part in written:
        if not part.changed and destination.announce == "changed":
            continue
        partition = str(part.partition) if part.partition else ""
        payload = {
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
            continue
        ready = announce_update(project, root, part.dataset, partition, payload)
        started.extend(f"{r.pipeline}[{r.partition}]" for r in ready)
    if started:
        get_run_logger().info("inputs ready for %s", ", ".join(started))
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


def _artifact_key(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"{name}-summary".lower())


def _skipped(message: str) -> State[Any]:
    get_run_logger().info(message)
    return Completed(name="Skipped", message=message)


def run_pipeline(
    name: str,
    partition: str | None = None,
    state: str | None = None,
    settings: Settings | None = None,
    version: str | None = None,
) -> RunSummary | State[Any]:
    """Run one pipeline inside the current flow run and publish its summary artifact.

    ``state`` is set by data-aware triggers: the input state the run was started for. A run
    whose inputs were already consumed, or are being consumed by a concurrent run, ends as
    Skipped without touching the output. ``version`` (v1 or v2) overrides the live version.
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    logger = get_run_logger()
    root = DataRoot(settings.data_root_url)
    try:
        # The version asked for, else the one a canary promoted, else the file's transform.
        pipeline = pipeline_at(find_pipeline(name, settings), root, version)
        function = resolve_transform(pipeline, settings)
    except ConfigError as exc:
        for problem in exc.problems:
            logger.error(problem.format())
        raise
    scope = Partition.parse(partition) if partition else None
    run_id = str(flow_run.id) if flow_run.id else None

    inputs: scheduling.Readiness | None = None
    if pipeline.config.trigger is not None:
        inputs = scheduling.readiness(pipeline, root, scope)
        if state:
            if not inputs.ready:
                return _skipped(f"inputs not ready: waiting for {', '.join(inputs.missing)}")
            if scheduling.consumed_state(root, name, inputs.partition) == inputs.state:
                return _skipped(f"input state {inputs.state} was already consumed")
            if not scheduling.claim(root, inputs, run_id):
                return _skipped(f"input state {inputs.state} is being consumed by another run")

    try:
        summary = _run_steps(pipeline, function, root, scope, settings)
    except BaseException:
        if inputs is not None and state:
            scheduling.release(root, inputs)
        raise
    if inputs is not None and inputs.ready:
        scheduling.record_consumed(root, inputs, run_id)
        if state:
            scheduling.release(root, inputs)
    summary.seconds = time.perf_counter() - started
    create_markdown_artifact(
        markdown=summary.markdown(),
        key=_artifact_key(pipeline.name),
        description=f"Run summary of pipeline {pipeline.name}",
    )
    logger.info(
        "%s: %d rows in, %d rows out, %d partition(s) written in %.2f s",
        pipeline.name,
        sum(summary.rows_in.values()),
        summary.rows_out,
        sum(w.changed for w in summary.written),
        summary.seconds,
    )
    return summary


def _extract_for(
    extract_task: Any,
    source: DatasetSource | FileSource | HttpSource,
    breaker: CircuitBreakerConfig,
) -> Any:
    """The extract task of a source: no retry is spent while its dependency's circuit is open."""
    found = source_dependency(source, breaker)
    if found is None:
        return extract_task
    return extract_task.with_options(retry_condition_fn=retry_condition(found[0]))


def _run_steps(
    pipeline: PipelineFile,
    function: TransformFn | None,
    root: DataRoot,
    scope: Partition | None,
    settings: Settings,
) -> RunSummary:
    retries = pipeline.config.retries
    options = {
        "retries": retries.attempts,
        "retry_delay_seconds": retries.delays_seconds() or 0,
        "retry_jitter_factor": retries.jitter or None,
    }
    extract_with_retries = extract.with_options(**options)  # type: ignore[arg-type]
    load_with_retries = load.with_options(**options)  # type: ignore[arg-type]

    breaker = pipeline.config.circuit_breaker
    futures = {
        table: _extract_for(extract_with_retries, source, breaker).submit(
            table, source, root, scope, breaker
        )
        for table, source in pipeline.config.inputs.items()
    }
    frames = {table: future.result() for table, future in futures.items()}
    output = transform(pipeline, frames, function)
    check_contract(pipeline, output, settings)
    written = load_with_retries(pipeline, output, root, scope)
    announce(pipeline, written, dict(output.schema), root, settings)
    return RunSummary(
        pipeline=pipeline.name,
        partition=scope,
        rows_in={table: frame.height for table, frame in frames.items()},
        written=written,
    )
