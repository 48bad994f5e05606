"""Reading: a dataset's Parquet files, or the CSV, Parquet or NDJSON files a file source names,
as LazyFrames narrowed to one partition where their columns allow."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem

from flowfactory.config import CsvOptions, FileSource
from flowfactory.data.partitions import Partition
from flowfactory.data.root import DataRoot
from flowfactory.errors import PipelineRunError

__all__ = ["read_dataset", "read_files"]


def read_dataset(root: DataRoot, dataset: str, partition: Partition | None = None) -> pl.LazyFrame:
    """A dataset (or one partition of it) as a LazyFrame."""
    files = root.dataset_files(dataset, partition)
    if not files:
        raise PipelineRunError(
            f"dataset {dataset!r} has no data under {root.dataset_dir(dataset)} yet "
            "(has the pipeline that produces it run?)"
        )
    frame = _scan_parquet(root, files)
    return _filter_partition(frame, partition)


def read_files(
    root: DataRoot, source: FileSource, partition: Partition | None = None
) -> pl.LazyFrame:
    """The files a file source names, concatenated, filtered to ``partition`` if given."""
    fs, files = root.source_files(source)
    if not files:
        where = source.path if source.is_url else f"{source.path} under {root.url}"
        raise PipelineRunError(f"no files match {where}")
    if isinstance(fs, LocalFileSystem):
        frames = [_scan_local(Path(f), source) for f in files]
    else:
        frames = [_read_remote(fs, f, source) for f in files]
    frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    return _filter_partition(frame, partition)


def _scan_parquet(root: DataRoot, files: list[str]) -> pl.LazyFrame:
    if root.is_local:
        return pl.scan_parquet(files, hive_partitioning=False)
    frames = [pl.read_parquet(root.fs.cat_file(f)).lazy() for f in files]
    return pl.concat(frames, how="vertical_relaxed")


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
    """A source's `csv:` section as the keywords polars' scan_csv and read_csv share."""
    return _CsvOptions(
        separator=options.separator,
        has_header=options.has_header,
        null_values=options.null_values or None,
        infer_schema_length=options.infer_schema_length,
    )


def _scan_local(path: Path, source: FileSource) -> pl.LazyFrame:
    fmt = source.inferred_format
    if fmt == "csv":
        return pl.scan_csv(path, **_csv_options(source.csv))
    if fmt == "parquet":
        return pl.scan_parquet(path)
    return pl.scan_ndjson(path)


def _read_remote(fs: fsspec.AbstractFileSystem, path: str, source: FileSource) -> pl.LazyFrame:
    data = fs.cat_file(path)
    fmt = source.inferred_format
    if fmt == "csv":
        return pl.read_csv(data, **_csv_options(source.csv)).lazy()
    if fmt == "parquet":
        return pl.read_parquet(data).lazy()
    return pl.read_ndjson(data).lazy()
