"""The body of the pipeline flow: one run of a pipeline file, from its trigger's input state to
its summary artifact. A consumer run is created for one input state (under that state's key,
so it is the only run of it); ``scheduling.admit`` decides whether it goes ahead, and this shell
maps a skip to a state.
"""

from __future__ import annotations

import time
from typing import Any

from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed

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
from flowfactory.data import DataRoot, Partition, RunSummary, TransformFn, resolve_transform
from flowfactory.errors import ConfigError
from flowfactory.orchestration.artifacts import artifact_key
from flowfactory.orchestration.breakers import retry_condition
from flowfactory.orchestration.fanout import Cause, start_consumer_runs
from flowfactory.orchestration.tasks import announce, check_contract, extract, load, transform
from flowfactory.scheduling import Skip, admit, input_versions, readiness
from flowfactory.settings import Settings, get_settings

__all__ = ["run_pipeline"]


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

    # Measured before reading: an input that moves during the run leaves the output stale.
    consumed = input_versions(pipeline, root, scope)
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
    announce(pipeline, written, dict(output.schema), root, settings, scope=scope, inputs=consumed)
    return RunSummary(
        pipeline=pipeline.name,
        partition=scope,
        rows_in={table: frame.height for table, frame in frames.items()},
        written=written,
    )
