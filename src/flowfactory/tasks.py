"""The Prefect tasks of a pipeline run (extract each source, transform, load) and their wiring."""

from __future__ import annotations

import re
import time

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from flowfactory.config import DatasetSource, FileSource
from flowfactory.datasets import DataRoot, Partition, WrittenPartition
from flowfactory.engine import (
    RunSummary,
    TransformFn,
    apply_transform,
    find_pipeline,
    read_source,
    resolve_transform,
)
from flowfactory.errors import ConfigError
from flowfactory.loader import PipelineFile
from flowfactory.settings import Settings, get_settings

__all__ = ["extract", "load", "run_pipeline", "transform"]


@task(name="extract", task_run_name="extract-{table}", cache_policy=NO_CACHE)
def extract(
    table: str,  # noqa: ARG001 - names the task run in the UI
    source: DatasetSource | FileSource,
    root: DataRoot,
    partition: Partition | None,
) -> pl.DataFrame:
    """Read one source (narrowed to the partition) into memory."""
    return read_source(source, root, partition).collect()


@task(name="transform", cache_policy=NO_CACHE)
def transform(
    pipeline: PipelineFile, frames: dict[str, pl.DataFrame], function: TransformFn | None
) -> pl.DataFrame:
    """Run the pipeline's SQL or Python transform."""
    lazy = {name: frame.lazy() for name, frame in frames.items()}
    return apply_transform(pipeline, lazy, function).collect()


@task(name="load", task_run_name="load-{pipeline.name}", cache_policy=NO_CACHE)
def load(
    pipeline: PipelineFile, frame: pl.DataFrame, root: DataRoot, partition: Partition | None
) -> list[WrittenPartition]:
    """Write the output's partitions atomically."""
    return root.write_dataset(frame, pipeline.config.destination, partition)


def _artifact_key(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"{name}-summary".lower())


def run_pipeline(
    name: str, partition: str | None = None, settings: Settings | None = None
) -> RunSummary:
    """Run one pipeline inside the current flow run and publish its summary artifact."""
    started = time.perf_counter()
    settings = settings or get_settings()
    logger = get_run_logger()
    try:
        pipeline = find_pipeline(name, settings)
        function = resolve_transform(pipeline, settings)
    except ConfigError as exc:
        for problem in exc.problems:
            logger.error(problem.format())
        raise
    scope = Partition.parse(partition) if partition else None
    root = DataRoot(settings.data_root_url)
    retries = pipeline.config.retries
    options = {
        "retries": retries.attempts,
        "retry_delay_seconds": retries.delays_seconds() or 0,
        "retry_jitter_factor": retries.jitter or None,
    }
    extract_with_retries = extract.with_options(**options)  # type: ignore[arg-type]
    load_with_retries = load.with_options(**options)  # type: ignore[arg-type]

    futures = {
        table: extract_with_retries.submit(table, source, root, scope)
        for table, source in pipeline.config.inputs.items()
    }
    frames = {table: future.result() for table, future in futures.items()}
    output = transform(pipeline, frames, function)
    written = load_with_retries(pipeline, output, root, scope)

    summary = RunSummary(
        pipeline=pipeline.name,
        partition=scope,
        rows_in={table: frame.height for table, frame in frames.items()},
        written=written,
        seconds=time.perf_counter() - started,
    )
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
        sum(w.changed for w in written),
        summary.seconds,
    )
    return summary
