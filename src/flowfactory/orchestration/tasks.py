"""The Prefect tasks of a pipeline run, in the order the UI shows them: read each source,
transform, check the contract's dtypes, write (stream into staging), commit (after checking the
staged rows), announce.

Data never passes through a task's result: ``read`` and ``transform`` return lazy plans, and
``write`` returns what it staged, measured. The plan runs once, inside ``write``, which is where
remote sources are really read, so that is where their breakers guard.
"""

from __future__ import annotations

from contextlib import ExitStack

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flowfactory.breaker import Breaker, guarded
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
    ExpectedColumns,
    Partition,
    SourceScan,
    StagedOutput,
    TransformFn,
    WrittenPartition,
    apply_transform,
    commit_output,
    discard_staged,
    open_source,
    plan_schema,
    stage_output,
)
from flowfactory.errors import ConfigError, PipelineRunError, SchemaIncompatibleError
from flowfactory.orchestration import events
from flowfactory.orchestration.announce import announce_updates
from flowfactory.orchestration.breakers import source_breaker
from flowfactory.orchestration.http import read_http
from flowfactory.orchestration.partitions import (
    publish_partitions,
    record_writes,
    report_materializations,
)
from flowfactory.schema import OutputCheck, OutputFacts, check_output, data_requirements
from flowfactory.settings import Settings

__all__ = ["announce", "check_contract", "commit", "read", "transform", "write"]


@task(name="read", task_run_name="read-{table}", cache_policy=NO_CACHE)
def read(
    table: str,  # noqa: ARG001 - names the task run in the UI
    source: DatasetSource | FileSource | HttpSource,
    root: DataRoot,
    partition: Partition | None,
    *,
    breaker: CircuitBreakerConfig | None = None,
    expected: ExpectedColumns | None = None,
) -> SourceScan:
    """Open one source as a scan (narrowed to the partition): list its files and read their
    footers or headers, through its breaker if remote. An HTTP answer is fetched whole here."""
    guard = source_breaker(source, breaker) if breaker is not None else None
    if isinstance(source, HttpSource):
        answer = read_http(source, guard)
        return SourceScan(answer.lazy(), None, answer.height, None)
    return guarded(guard, lambda: open_source(source, root, partition, expected=expected))


@task(name="transform", cache_policy=NO_CACHE)
def transform(
    pipeline: PipelineFile, scans: dict[str, SourceScan], function: TransformFn | None
) -> pl.LazyFrame:
    """Apply the pipeline's SQL or Python transform to the scans: a plan, resolved, not run."""
    plan = apply_transform(pipeline, {name: scan.frame for name, scan in scans.items()}, function)
    plan_schema(pipeline, plan)
    return plan


def _refuse(report: OutputCheck) -> None:
    for change in report.warnings:
        get_run_logger().warning("schema warning: %s", change.describe())
    if report.breaking:
        events.emit(
            events.SCHEMA_INCOMPATIBLE,
            events.dataset_resource(report.dataset),
            report.payload(),
        )
        raise SchemaIncompatibleError(report.message(), report.columns)


@task(name="check-contract", cache_policy=NO_CACHE)
def check_contract(pipeline: PipelineFile, plan: pl.LazyFrame, settings: Settings) -> None:
    """Refuse the run when the plan's schema breaks the locked contract, before data moves."""
    report = check_output(pipeline, dict(plan.collect_schema()), settings)
    if report is not None:
        _refuse(report)


@task(name="write", cache_policy=NO_CACHE)
def write(
    pipeline: PipelineFile,
    plan: pl.LazyFrame,
    scans: dict[str, SourceScan],
    root: DataRoot,
    *,
    partition: Partition | None,
    settings: Settings,
) -> StagedOutput:
    """Run the plan on the streaming engine into staging, and measure each staged partition.

    Remote sources are read here, inside their breakers: a read that fails midway counts
    against its dependency. Bad data is named by its file and counts against none.
    """
    not_null, unique_key = data_requirements(pipeline, settings)
    with ExitStack() as guards:
        for guard in _remote_breakers(pipeline):
            guards.enter_context(guard.guard(ignore=PipelineRunError))
        return stage_output(
            root,
            plan,
            pipeline.config.destination,
            partition,
            not_null=not_null,
            unique_key=unique_key,
            sources=[scan.files for scan in scans.values() if scan.files is not None],
        )


def _remote_breakers(pipeline: PipelineFile) -> list[Breaker]:
    found = (
        source_breaker(source, pipeline.config.circuit_breaker)
        for source in pipeline.config.inputs.values()
        if not isinstance(source, HttpSource)  # already read whole, in its own breaker
    )
    return [guard for guard in found if guard is not None]


@task(name="commit", cache_policy=NO_CACHE)
def commit(
    pipeline: PipelineFile, staged: StagedOutput, root: DataRoot, settings: Settings
) -> list[WrittenPartition]:
    """Check the staged rows (NOT NULL, key uniqueness), then make each staged partition live,
    at once; a partition whose rows did not change stays. A violation commits nothing."""
    report = check_output(
        pipeline, staged.schema, settings, OutputFacts(staged.nulls, staged.duplicate_keys)
    )
    if report is not None:
        try:
            _refuse(report)
        except SchemaIncompatibleError:
            discard_staged(staged)
            raise
    written = commit_output(root, staged)
    get_run_logger().info(
        "%s: %d partition(s) committed, %d unchanged",
        pipeline.config.destination.dataset,
        sum(w.changed for w in written),
        sum(not w.changed for w in written),
    )
    return written


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
    makes ready (each with its pipeline.ready); publish the output's partition view when a
    partition changed.
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
    if project is not None and any(p.changed for p in written):
        # A run that changed no partition leaves the view as the last write published it.
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
