"""Reading: a dataset's Parquet files, or the CSV, Parquet or NDJSON files a file source names,
as lazy scans narrowed to one partition where their columns allow.

Scans are polars' own, for local paths and the object stores polars reaches itself (with
storage options taken from the root's fsspec settings); fsspec serves only the stores polars
cannot read. Nothing is read here but what a plan needs to know its schema: each file's footer
or header, checked against the source's input contract when it has one, so that a landed file
that changed shape, an empty file or a truncated Parquet file fails naming the file before any
data moves. ``explain_failure`` names the file behind an error raised later, while the data
streams.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import fsspec
import polars as pl

from flowfactory.config import CsvOptions, FileSource
from flowfactory.data.partitions import Partition
from flowfactory.data.root import DataRoot, polars_location, polars_storage_options
from flowfactory.errors import BadDataError, PipelineRunError

__all__ = [
    "ExpectedColumns",
    "SourceFiles",
    "dataset_files",
    "explain_failure",
    "read_dataset",
    "read_files",
    "scan_dataset",
    "scan_files",
    "source_files",
]


@dataclass(frozen=True)
class ExpectedColumns:
    """The columns a source's files must have: its locked input contract."""

    schema: pl.Schema
    contract: str  # where the contract is written, for messages


@dataclass(frozen=True)
class SourceFiles:
    """The files a scan reads, and how to read each of them alone."""

    fs: fsspec.AbstractFileSystem
    paths: tuple[str, ...]
    bytes: int
    format: str
    csv: CsvOptions | None = None
    expected: ExpectedColumns | None = None


def dataset_files(root: DataRoot, dataset: str, partition: Partition | None = None) -> SourceFiles:
    """The live files of a dataset (of one partition when it is laid out so), from manifests."""
    exact = root.partition_files(dataset, partition) if partition is not None else None
    parts = [exact] if exact is not None else list(root.dataset_partitions(dataset).values())
    paths = tuple(f for p in parts for f in p.files)
    if not paths:
        raise PipelineRunError(
            f"dataset {dataset!r} has no data under {root.dataset_dir(dataset)} yet "
            "(has the pipeline that produces it run?)"
        )
    return SourceFiles(root.fs, paths, sum(p.bytes for p in parts), "parquet")


def read_dataset(root: DataRoot, dataset: str, partition: Partition | None = None) -> pl.LazyFrame:
    """A dataset (or one partition of it) as a lazy scan."""
    return scan_dataset(dataset_files(root, dataset, partition), partition)


def scan_dataset(files: SourceFiles, partition: Partition | None = None) -> pl.LazyFrame:
    """A dataset's listed files (flowfactory's own Parquet) as one scan, narrowed to
    ``partition`` if given."""
    return _filter_partition(_scan_all(files, [None] * len(files.paths)), partition)


def read_files(
    root: DataRoot,
    source: FileSource,
    partition: Partition | None = None,
    expected: ExpectedColumns | None = None,
) -> pl.LazyFrame:
    """The files a file source names, as one scan, filtered to ``partition`` if given."""
    return scan_files(source_files(root, source, expected), partition)


def scan_files(files: SourceFiles, partition: Partition | None = None) -> pl.LazyFrame:
    """A file source's listed files as one scan, each file's footer or header read (and checked
    against ``files.expected``), narrowed to ``partition`` if given."""
    # Each file's scan is built once: its schema (for text files, an inference pass) is then
    # known to the plan, and no later step reads the file again to learn it.
    scans = [_scan_one(files, path) for path in files.paths]
    schemas = [
        _file_schema(files, path, scan) for path, scan in zip(files.paths, scans, strict=True)
    ]
    if files.expected is not None:
        for path, schema in zip(files.paths, schemas, strict=True):
            _check_expected(path, schema, files.expected, files.format)
    return _filter_partition(_scan_all(files, schemas, scans), partition)


def source_files(
    root: DataRoot, source: FileSource, expected: ExpectedColumns | None = None
) -> SourceFiles:
    """The files a file source names now; an empty file is bad data, named."""
    fs, paths = root.source_files(source)
    if not paths:
        where = source.path if source.is_url else f"{source.path} under {root.url}"
        raise PipelineRunError(f"no files match {where}")
    total = 0
    for path in paths:
        size = int(fs.info(path).get("size") or 0)
        if size == 0:
            raise BadDataError(f"{path}: the file is empty")
        total += size
    return SourceFiles(
        fs, tuple(paths), total, source.inferred_format or "csv", source.csv, expected=expected
    )


def explain_failure(sources: Iterable[SourceFiles], error: BaseException) -> BadDataError | None:
    """The file whose data caused ``error`` (raised while a plan ran), read alone to find it.

    None when every file reads on its own: the error is not the data's.
    """
    for files in sources:
        for path in files.paths:
            try:
                frame = _scan_one(files, path)
                frame.select(pl.all().null_count()).collect(engine="streaming")
            except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
                explained = BadDataError(f"{path}: {_first_line(exc)}")
                explained.__cause__ = error
                return explained
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _filter_partition(frame: pl.LazyFrame, partition: Partition | None) -> pl.LazyFrame:
    if partition is None:
        return frame
    predicate = partition.predicate(frame.collect_schema())
    return frame if predicate is None else frame.filter(predicate)


class _CsvOptions(TypedDict):
    separator: str
    has_header: bool
    null_values: list[str] | None
    infer_schema_length: int | None


def _csv_options(options: CsvOptions) -> _CsvOptions:
    """A source's `csv:` section as the keywords polars' CSV scan takes."""
    return _CsvOptions(
        separator=options.separator,
        has_header=options.has_header,
        null_values=options.null_values or None,
        infer_schema_length=options.infer_schema_length,
    )


def _overrides(files: SourceFiles) -> Mapping[str, pl.DataType] | None:
    """A CSV's dtypes from its contract: a value that does not parse as its contract's dtype is
    then an error, not a silently different column."""
    if files.expected is None or files.format != "csv":
        return None
    return dict(files.expected.schema.items())


def _scan_one(files: SourceFiles, path: str) -> pl.LazyFrame:
    location = polars_location(files.fs, path)
    options = polars_storage_options(files.fs)
    target: str | fsspec.core.OpenFile = location or files.fs.open(path, "rb")
    if files.format == "parquet":
        return pl.scan_parquet(target, storage_options=options, hive_partitioning=False)
    if files.format == "csv":
        csv = _csv_options(files.csv or CsvOptions())
        overrides = _overrides(files)
        if overrides is not None and location is not None:
            # The contract types every column the header names: no inference pass is needed
            # (with none, polars reads the header alone and parses by the overrides).
            header_only = _CsvOptions(**{**csv, "infer_schema_length": 0})
            typed = pl.scan_csv(
                location, storage_options=options, schema_overrides=overrides, **header_only
            )
            with contextlib.suppress(pl.exceptions.PolarsError, OSError, ValueError):
                if set(typed.collect_schema().names()) <= set(overrides):
                    return typed
        return pl.scan_csv(target, storage_options=options, schema_overrides=overrides, **csv)
    return pl.scan_ndjson(target, storage_options=options)


def _file_schema(files: SourceFiles, path: str, scan: pl.LazyFrame) -> pl.Schema:
    """A file's columns from its footer or header; a file that has none is bad data, named."""
    try:
        return scan.collect_schema()
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise BadDataError(f"{path}: cannot read it as {files.format}: {_first_line(exc)}") from exc


def _check_expected(path: str, schema: pl.Schema, expected: ExpectedColumns, fmt: str) -> None:
    missing = [c for c in expected.schema.names() if c not in schema]
    # CSV and NDJSON carry no dtypes of their own: their values are parsed as the contract says.
    retyped = (
        [
            f"{c} is {schema[c]}, the contract says {t}"
            for c, t in expected.schema.items()
            if c in schema and schema[c] != t
        ]
        if fmt == "parquet"
        else []
    )
    if missing or retyped:
        what = "; ".join(
            [*([f"missing column(s) {', '.join(missing)}"] if missing else []), *retyped]
        )
        raise BadDataError(
            f"{path}: its columns no longer match the input contract {expected.contract}: {what}"
        )


def _scan_all(
    files: SourceFiles,
    schemas: Sequence[pl.Schema | None],
    scans: Sequence[pl.LazyFrame] | None = None,
) -> pl.LazyFrame:
    """One scan over every file; files whose schemas differ are concatenated relaxed."""
    same = all(s == schemas[0] for s in schemas)
    if files.format == "parquet" and same and len(files.paths) > 1:
        locations = [polars_location(files.fs, p) for p in files.paths]
        if all(loc is not None for loc in locations):
            return pl.scan_parquet(
                [loc for loc in locations if loc is not None],
                storage_options=polars_storage_options(files.fs),
                hive_partitioning=False,
            )
    frames = list(scans) if scans is not None else [_scan_one(files, path) for path in files.paths]
    return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
