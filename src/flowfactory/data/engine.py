"""What a pipeline run does, free of Prefect: find the config, read, transform, write."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from flowfactory.config import (
    DatasetSource,
    FileSource,
    HttpSource,
    PipelineFile,
    PythonTransform,
    SqlTransform,
)
from flowfactory.data.partitions import Partition
from flowfactory.data.reading import (
    ExpectedColumns,
    SourceFiles,
    dataset_files,
    read_dataset,
    read_files,
    scan_dataset,
    scan_files,
    source_files,
)
from flowfactory.data.root import DataRoot
from flowfactory.data.writing import WrittenPartition
from flowfactory.errors import ConfigError, PipelineRunError
from flowfactory.settings import Settings

__all__ = [
    "HttpReader",
    "RunSummary",
    "SourceScan",
    "TransformFn",
    "apply_transform",
    "check_plan",
    "check_run_partition",
    "open_source",
    "plan_schema",
    "read_source",
    "resolve_transform",
]

TransformFn = Callable[..., pl.LazyFrame | pl.DataFrame]
# Reads an `http:` source; supplied by the orchestration layer, which owns the API's block.
HttpReader = Callable[[HttpSource], pl.DataFrame]


def resolve_transform(pipeline: PipelineFile, settings: Settings) -> TransformFn | None:
    """Import a Python transform; a missing module or function is a config error."""
    transform = pipeline.config.transform
    if not isinstance(transform, PythonTransform):
        return None
    loc = ("transform", "python")
    # Transforms live in the project (transforms/ by default), which is not an installed package.
    project = str(settings.project_dir)
    if project not in sys.path:
        sys.path.insert(0, project)
    try:
        module = importlib.import_module(transform.module)
    except ImportError as exc:
        raise ConfigError(
            [pipeline.problem(loc, f"cannot import module {transform.module!r}: {exc}")]
        ) from exc
    function = getattr(module, transform.function, None)
    if not callable(function):
        raise ConfigError(
            [
                pipeline.problem(
                    loc, f"module {transform.module!r} has no function {transform.function!r}"
                )
            ]
        )
    return function  # type: ignore[no-any-return]


def read_source(
    source: DatasetSource | FileSource | HttpSource,
    root: DataRoot,
    partition: Partition | None,
    *,
    read_http: HttpReader | None = None,
    expected: ExpectedColumns | None = None,
) -> pl.LazyFrame:
    """A source as a LazyFrame, narrowed to ``partition`` when its columns allow."""
    if isinstance(source, DatasetSource):
        return read_dataset(root, source.dataset, partition)
    if isinstance(source, HttpSource):
        if read_http is None:
            raise PipelineRunError(
                f"{source.http.block}{source.http.path}: an HTTP source is read inside a run"
            )
        return read_http(source).lazy()
    return read_files(root, source, partition, expected)


@dataclass(frozen=True)
class SourceScan:
    """A source opened for a run: its lazy scan, and its size as far as it is known unread."""

    frame: pl.LazyFrame
    files: SourceFiles | None  # None for an HTTP answer, already in memory
    rows: int | None
    bytes: int | None


def open_source(
    source: DatasetSource | FileSource | HttpSource,
    root: DataRoot,
    partition: Partition | None,
    *,
    read_http: HttpReader | None = None,
    expected: ExpectedColumns | None = None,
) -> SourceScan:
    """A source as a scan with its files, rows and bytes; reads no data but footers and headers.

    Rows come from Parquet footers; text files' rows are left uncounted.
    """
    if isinstance(source, HttpSource):
        answer = read_source(source, root, partition, read_http=read_http)
        return SourceScan(answer, None, answer.select(pl.len()).collect().item(), None)
    # Listed once: the scan is built from the same listing.
    if isinstance(source, DatasetSource):
        files = dataset_files(root, source.dataset, partition)
        frame = scan_dataset(files, partition)
    else:
        files = source_files(root, source, expected)
        frame = scan_files(files, partition)
    # Parquet footers hold row counts; a text file's rows are known only by reading it, which
    # would double the run's reading, so they go uncounted (its bytes are known).
    rows = frame.select(pl.len()).collect().item() if files.format == "parquet" else None
    return SourceScan(frame, files, rows, files.bytes)


def plan_schema(pipeline: PipelineFile, plan: pl.LazyFrame) -> pl.Schema:
    """The output schema of a transform's plan, resolved without running it; a transform that
    cannot run on its sources' columns is a config error at the transform."""
    try:
        return plan.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise _transform_error(pipeline, exc) from exc


def apply_transform(
    pipeline: PipelineFile, frames: Mapping[str, pl.LazyFrame], function: TransformFn | None
) -> pl.LazyFrame:
    """Run the pipeline's transform over its sources (each a table under its name)."""
    transform = pipeline.config.transform
    if transform is None:
        (only,) = frames.values()
        return only
    if isinstance(transform, SqlTransform):
        context = pl.SQLContext(frames=dict(frames), eager=False)
        try:
            return context.execute(transform.sql)
        except pl.exceptions.PolarsError as exc:
            raise _transform_error(pipeline, exc) from exc
    if function is None:  # pragma: no cover - resolve_transform always gives one for python
        raise PipelineRunError(f"pipeline {pipeline.name!r}: transform was not resolved")
    result = function(**frames)
    if isinstance(result, pl.DataFrame):
        return result.lazy()
    if not isinstance(result, pl.LazyFrame):
        raise PipelineRunError(
            f"pipeline {pipeline.name!r}: {transform.python} returned "
            f"{type(result).__name__}, expected a polars LazyFrame"
        )
    return result


def _transform_error(pipeline: PipelineFile, exc: Exception) -> ConfigError:
    """A polars error in a transform, positioned at the transform in the pipeline file."""
    transform = pipeline.config.transform
    key = "sql" if isinstance(transform, SqlTransform) else "python"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError(
        [pipeline.problem(("transform", key), f"the transform fails on its inputs: {first_line}")]
    )


def check_plan(
    pipeline: PipelineFile,
    root: DataRoot,
    partition: Partition | None,
    function: TransformFn | None,
) -> pl.Schema:
    """Resolve the transform's plan against the sources' schemas without computing it.

    A missing column or a bad SQL statement then surfaces as a positioned config error before
    a run starts, instead of as a failure deep inside the run. A pipeline that reads an HTTP
    API is not checked: its columns are known only by calling the API, which the run does.
    """
    if any(isinstance(s, HttpSource) for s in pipeline.config.inputs.values()):
        return pl.Schema()
    frames = {
        table: read_source(source, root, partition)
        for table, source in pipeline.config.inputs.items()
    }
    return plan_schema(pipeline, apply_transform(pipeline, frames, function))


def check_run_partition(pipeline: PipelineFile, root: DataRoot, partition: Partition) -> None:
    """A run for a partition its output cannot hold, or that no input has, fails before it
    starts, with what to give instead; the run itself would only write nothing or fail late."""
    name, columns = pipeline.name, pipeline.config.destination.partition_by
    if columns and partition.columns != columns:
        expected = "/".join(f"{c}=..." for c in columns)
        raise PipelineRunError(
            f"{name} writes {pipeline.config.destination.dataset!r} partitioned by "
            f"{'/'.join(columns)}: give --partition {expected}, or none to process everything"
        )
    if any(isinstance(s, HttpSource) for s in pipeline.config.inputs.values()):
        return
    scoped = {}
    for table, source in pipeline.config.inputs.items():
        frame = read_source(source, root, None)
        if partition.predicate(frame.collect_schema()) is not None:
            scoped[table] = read_source(source, root, partition)
    if scoped and all(f.select(pl.len()).collect().item() == 0 for f in scoped.values()):
        raise PipelineRunError(
            f"no input of {name} has partition {partition} (no rows in {', '.join(scoped)}): "
            f"check the partition, or run {name} without --partition to process everything"
        )


@dataclass
class RunSummary:
    """What one pipeline run read and wrote."""

    pipeline: str
    partition: Partition | None
    rows_in: dict[str, int | None] = field(default_factory=dict)
    bytes_in: dict[str, int | None] = field(default_factory=dict)
    written: list[WrittenPartition] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_out(self) -> int:
        """Rows written across partitions."""
        return sum(w.rows for w in self.written)

    @property
    def total_rows_in(self) -> int | None:
        """Rows read across sources; None when a source's rows were not counted."""
        counts = list(self.rows_in.values())
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    def markdown(self) -> str:
        """The run summary as the markdown shown in the Prefect UI."""
        scope = f"partition `{self.partition}`" if self.partition else "all partitions"
        lines = [
            f"# {self.pipeline}: {scope}",
            "",
            "| measure | value |",
            "|---|---|",
            f"| rows in | {_count(self.total_rows_in)} |",
            f"| rows out | {self.rows_out:,} |",
            f"| bytes written | {sum(w.bytes for w in self.written if w.changed):,} |",
            (
                f"| partitions written | {sum(w.changed for w in self.written)} "
                f"(unchanged {sum(not w.changed for w in self.written)}) |"
            ),
            f"| duration | {self.seconds:.2f} s |",
            "",
            "| source | rows | bytes |",
            "|---|---|---|",
            *(
                f"| {name} | {_count(rows)} | {_count(self.bytes_in.get(name))} |"
                for name, rows in self.rows_in.items()
            ),
            "",
            "| partition | rows | bytes | files | changed | content hash |",
            "|---|---|---|---|---|---|",
            *(
                f"| {w.partition or '(whole dataset)'} | {w.rows:,} | {w.bytes:,} | "
                f"{len(w.files)} | {'yes' if w.changed else 'no'} | `{w.content_hash[:12]}` |"
                for w in self.written
            ),
        ]
        return "\n".join(lines)


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
