"""The body of the pipeline flow: one run of a pipeline file, from its trigger's input state to
its summary artifact. A consumer run is created for one input state (under that state's key,
so it is the only run of it); ``scheduling.admit`` decides whether it goes ahead, and this shell
maps a skip to a state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed
from prefect.utilities.annotations import quote

from flowfactory.breaker import source_dependency
from flowfactory.canary import pipeline_at
from flowfactory.config import (
    CircuitBreakerConfig,
    DatasetSource,
    FileSource,
    HttpSource,
    PipelineFile,
    find_pipeline,
)
from flowfactory.data import (
    DataRoot,
    ExpectedColumns,
    Partition,
    RunSummary,
    TransformFn,
    resolve_transform,
)
from flowfactory.errors import ConfigError
from flowfactory.orchestration.artifacts import artifact_key
from flowfactory.orchestration.breakers import retry_condition
from flowfactory.orchestration.fanout import Cause, start_consumer_runs
from flowfactory.orchestration.tasks import (
    announce,
    check_contract,
    commit,
    read,
    transform,
    write,
)
from flowfactory.scheduling import Skip, admit, input_versions, readiness
from flowfactory.schema import input_contract_path, locked_input_schemas, project_relative
from flowfactory.settings import Settings, get_settings

__all__ = ["run_pipeline"]

T = TypeVar("T")


def _skipped(skip: Skip) -> State[Any]:
    get_run_logger().info(skip.reason)
    if skip.hand_off is not None:
        # The run of the newer state may not exist yet (its announcement lost): make sure.
        cause = Cause(
            message=f"inputs moved while run {flow_run.name} waited to start",
            tag="trigger:superseded-run",
            payload={"superseded_run": str(flow_run.id or "")},
        )
        (handed,) = start_consumer_runs([skip.hand_off], cause)
        get_run_logger().info("the run of input state %s: %s", skip.hand_off.state, handed.outcome)
    return Completed(name="Skipped", message=skip.reason)


def run_pipeline(
    name: str,
    partition: str | None = None,
    state: str | None = None,
    settings: Settings | None = None,
    version: str | None = None,
) -> RunSummary | State[Any]:
    """Run one pipeline inside the current flow run and publish its summary artifact.

    ``state`` is set for a consumer run: the input state it was created for. A run whose
    inputs are no longer ready, or moved on to another state before it started, ends as Skipped
    without touching the output. ``version`` (v1 or v2) overrides the live version.
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

    if pipeline.config.trigger is not None and state:
        skip = admit(readiness(pipeline, root, scope), state)
        if skip is not None:
            return _skipped(skip)

    summary = _run_steps(pipeline, function, root, scope, settings)
    summary.seconds = time.perf_counter() - started
    create_markdown_artifact(
        markdown=summary.markdown(),
        key=artifact_key(pipeline.name, "summary"),
        description=f"Run summary of pipeline {pipeline.name}",
    )
    logger.info(
        "%s: %s rows in, %d rows out, %d partition(s) written in %.2f s",
        pipeline.name,
        "?" if summary.total_rows_in is None else f"{summary.total_rows_in:,}",
        summary.rows_out,
        sum(w.changed for w in summary.written),
        summary.seconds,
    )
    return summary


def _guarded_task(
    task: Any,
    sources: Sequence[DatasetSource | FileSource | HttpSource],
    breaker: CircuitBreakerConfig,
) -> Any:
    """A task reading these sources: no retry is spent while a dependency's circuit is open."""
    found = [d for d in (source_dependency(s, breaker) for s in sources) if d is not None]
    if not found:
        return task
    # One dependency's retry budget applies when there is one; else open circuits only.
    dependency = found[0][0] if len(found) == 1 else None
    return task.with_options(retry_condition_fn=retry_condition(dependency))


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
    read_with_retries = read.with_options(**options)  # type: ignore[arg-type]
    write_with_retries = write.with_options(**options)  # type: ignore[arg-type]

    # Measured before reading: an input that moves during the run leaves the output stale.
    consumed = input_versions(pipeline, root, scope)
    breaker = pipeline.config.circuit_breaker
    expected = _expected_columns(pipeline, settings)
    readers = {
        table: _guarded_task(read_with_retries, [source], breaker)
        for table, source in pipeline.config.inputs.items()
    }
    arguments = {
        table: ((table, source, root, scope), {"breaker": breaker, "expected": expected.get(table)})
        for table, source in pipeline.config.inputs.items()
    }
    if len(readers) == 1:  # nothing to wait for in parallel: no thread hand-off
        ((table, reader),) = readers.items()
        args, kwargs = arguments[table]
        scans = {table: reader(*args, **kwargs)}
    else:
        futures = {t: r.submit(*arguments[t][0], **arguments[t][1]) for t, r in readers.items()}
        scans = {table: future.result() for table, future in futures.items()}
    file, config = _as_is(pipeline), _as_is(settings)
    plan = transform(file, _as_is(scans), function)
    check_contract(file, _as_is(plan), config)
    remote = [s for s in pipeline.config.inputs.values() if not isinstance(s, HttpSource)]
    staged = _guarded_task(write_with_retries, remote, breaker)(
        file, _as_is(plan), _as_is(scans), root, partition=scope, settings=config
    )
    written = commit(file, _as_is(staged), root, config)
    announce(file, written, staged.schema, root, config, scope=scope, inputs=consumed)
    return RunSummary(
        pipeline=pipeline.name,
        partition=scope,
        rows_in={table: scan.rows for table, scan in scans.items()},
        bytes_in={table: scan.bytes for table, scan in scans.items()},
        written=written,
    )


def _as_is(value: T) -> T:
    """``value`` handed to a task untouched. Prefect walks every task argument for futures to
    resolve; on a parsed pipeline file, the settings and a plan that is tens of milliseconds per
    task, and none of them holds a future."""
    return cast("T", quote(value))


def _expected_columns(pipeline: PipelineFile, settings: Settings) -> dict[str, ExpectedColumns]:
    """The locked input contracts of the pipeline's file sources, checked on every file read."""
    schemas = locked_input_schemas(pipeline, settings)
    return {
        table: ExpectedColumns(
            schemas[table],
            project_relative(input_contract_path(pipeline, table, source, settings), settings),
        )
        for table, source in pipeline.config.inputs.items()
        if table in schemas and isinstance(source, FileSource)
    }
