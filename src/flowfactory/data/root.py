"""Reading sources and writing datasets: partitioned Parquet under the data root.

Each partition is one Parquet file, ``<root>/<dataset>/<col>=<value>/.../part-0.parquet``,
replaced atomically: the new bytes go to a hidden temporary file in the same folder, which is
then renamed over the old one. A crash or kill mid-write leaves the previous file intact, and a
re-run that produces the same bytes leaves the file untouched.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem

from flowfactory.config import Destination, FileSource
from flowfactory.data.files import write_local_atomic
from flowfactory.data.partitions import Partition
from flowfactory.errors import PipelineRunError, WriteError

__all__ = [
    "PART_FILE",
    "DataRoot",
    "WrittenPartition",
]

PART_FILE: Final = "part-0.parquet"


@dataclass(frozen=True)
class WrittenPartition:
    """What one partition write did."""

    dataset: str
    partition: Partition | None
    path: str
    rows: int
    bytes: int
    content_hash: str
    changed: bool


class DataRoot:
    """The data root: a local folder or any fsspec URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)

    def _join(self, *parts: str) -> str:
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def dataset_dir(self, dataset: str) -> str:
        """The folder of a dataset."""
        return self._join(dataset)

    def partition_file(self, dataset: str, partition: Partition | None) -> str:
        """The file holding one partition of a dataset (or the whole of an unpartitioned one)."""
        return self._join(dataset, partition.path if partition else "", PART_FILE)

    # ----------------------------------------------------------------------------------------
    # Reading

    def dataset_files(self, dataset: str, partition: Partition | None = None) -> list[str]:
        """The Parquet files of a dataset, or of one of its partitions when it is laid out so."""
        if partition is not None:
            exact = self.partition_file(dataset, partition)
            if self.fs.exists(exact):
                return [exact]
        base = self.dataset_dir(dataset)
        files = sorted(self.fs.glob(f"{base}/**/{PART_FILE}"))
        # Recent fsspec matches `**` to no folder too, and so may list the top file already.
        top = f"{base}/{PART_FILE}"
        if top not in files and self.fs.exists(top):
            files.append(top)
        return files

    def read_dataset(self, dataset: str, partition: Partition | None = None) -> pl.LazyFrame:
        """A dataset (or one partition of it) as a LazyFrame."""
        files = self.dataset_files(dataset, partition)
        if not files:
            raise PipelineRunError(
                f"dataset {dataset!r} has no data under {self.dataset_dir(dataset)} yet "
                "(has the pipeline that produces it run?)"
            )
        frame = self._scan_parquet(files)
        return _filter_partition(frame, partition)

    def source_fs_and_pattern(self, source: FileSource) -> tuple[fsspec.AbstractFileSystem, str]:
        """The filesystem and path (or glob) of a file source."""
        if source.is_url:
            fs, pattern = fsspec.core.url_to_fs(source.path)
            return fs, pattern
        return self.fs, self._join(source.path)

    def source_files(self, source: FileSource) -> tuple[fsspec.AbstractFileSystem, list[str]]:
        """The filesystem of a file source and the files it names now (its glob's matches)."""
        fs, pattern = self.source_fs_and_pattern(source)
        files = sorted(fs.glob(pattern)) if any(ch in pattern for ch in "*?[") else [pattern]
        return fs, [f for f in files if fs.isfile(f)]

    def read_files(self, source: FileSource, partition: Partition | None = None) -> pl.LazyFrame:
        """The files a file source names, concatenated, filtered to ``partition`` if given."""
        fs, files = self.source_files(source)
        if not files:
            where = source.path if source.is_url else f"{source.path} under {self.url}"
            raise PipelineRunError(f"no files match {where}")
        if isinstance(fs, LocalFileSystem):
            frames = [_scan_local(Path(f), source) for f in files]
        else:
            frames = [_read_remote(fs, f, source) for f in files]
        frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
        return _filter_partition(frame, partition)

    def _scan_parquet(self, files: list[str]) -> pl.LazyFrame:
        if self.is_local:
            return pl.scan_parquet(files, hive_partitioning=False)
        frames = [pl.read_parquet(self.fs.cat_file(f)).lazy() for f in files]
        return pl.concat(frames, how="vertical_relaxed")

    def file_version(self, path: str, fs: fsspec.AbstractFileSystem | None = None) -> str:
        """A cheap version of one file: size and modification time (or the store's ETag).

        Unchanged content is never rewritten (see ``write_dataset``), so the version moves only
        when the data does.
        """
        info = (fs or self.fs).info(path)
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        return f"{info.get('size', 0)}:{stamp}"

    def put_atomic(self, relative: str, data: bytes) -> str:
        """Write a small file under the root whole or not at all; return its path."""
        target = self._join(relative)
        self._replace(target, data)
        return target

    def get(self, relative: str) -> bytes | None:
        """The bytes of a file under the root, or None if it does not exist."""
        try:
            data: bytes = self.fs.cat_file(self._join(relative))
        except FileNotFoundError:
            return None
        return data

    def create_exclusive(self, relative: str, data: bytes) -> bool:
        """Create a file only if it does not exist yet; False if it did."""
        target = self._join(relative)
        if not self.is_local:
            # Object stores have no portable create-if-absent; best effort.
            if self.fs.exists(target):
                return False
            self.fs.pipe_file(target, data)
            return True
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def remove(self, relative: str) -> None:
        """Delete a file under the root if it exists."""
        target = self._join(relative)
        if self.fs.exists(target):
            self.fs.rm_file(target)

    # ----------------------------------------------------------------------------------------
    # Writing

    def write_dataset(
        self,
        frame: pl.DataFrame,
        destination: Destination,
        partition: Partition | None = None,
    ) -> list[WrittenPartition]:
        """Write every partition present in ``frame`` (only ``partition`` if given), atomically."""
        columns = destination.partition_by
        missing = [c for c in [*columns, *destination.key] if c not in frame.columns]
        if missing:
            raise WriteError(
                f"dataset {destination.dataset!r}: the output has no column(s) "
                f"{', '.join(missing)} named in destination.partition_by/key "
                f"(it has {', '.join(frame.columns)})"
            )
        if partition is not None and columns:
            if partition.columns != columns:
                raise WriteError(
                    f"dataset {destination.dataset!r} is partitioned by {'/'.join(columns)}; "
                    f"partition {partition} names {'/'.join(partition.columns)}"
                )
            predicate = partition.predicate(frame.schema)
            if predicate is not None:
                frame = frame.filter(predicate)
        frame = _sorted(frame, destination.key)
        if not columns:
            groups: list[tuple[Partition | None, pl.DataFrame]] = [(None, frame)]
        elif partition is not None:
            groups = [(partition, frame)]
        else:
            groups = [
                (Partition.of(columns, key), part)
                for key, part in frame.partition_by(
                    columns, as_dict=True, maintain_order=True
                ).items()
            ]
        return [self._write_partition(destination.dataset, p, df) for p, df in groups]

    def _write_partition(
        self, dataset: str, partition: Partition | None, frame: pl.DataFrame
    ) -> WrittenPartition:
        target = self.partition_file(dataset, partition)
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        changed = not self._same_content(target, data)
        if changed:
            try:
                self._replace(target, data)
            except OSError as exc:
                raise WriteError(
                    f"cannot write {target}: {exc.strerror or exc}; the previous data is intact"
                ) from exc
        return WrittenPartition(
            dataset=dataset,
            partition=partition,
            path=target,
            rows=frame.height,
            bytes=len(data),
            content_hash=digest,
            changed=changed,
        )

    def _same_content(self, target: str, data: bytes) -> bool:
        try:
            if self.fs.size(target) != len(data):
                return False
            existing: bytes = self.fs.cat_file(target)
        except FileNotFoundError:
            return False
        return existing == data

    def _replace(self, target: str, data: bytes) -> None:
        if not self.is_local:
            # Object stores make a single PUT visible whole or not at all.
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(target, data)
            return
        write_local_atomic(Path(target), data)


def _sorted(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Sort so that the same rows always give the same bytes."""
    columns = key or [
        c
        for c, dtype in frame.schema.items()
        if not isinstance(dtype, pl.List | pl.Struct | pl.Array)
    ]
    return frame.sort(columns, nulls_last=True, maintain_order=True) if columns else frame


def _filter_partition(frame: pl.LazyFrame, partition: Partition | None) -> pl.LazyFrame:
    if partition is None:
        return frame
    predicate = partition.predicate(frame.collect_schema())
    return frame if predicate is None else frame.filter(predicate)


def _scan_local(path: Path, source: FileSource) -> pl.LazyFrame:
    fmt = source.inferred_format
    opts = source.csv
    if fmt == "csv":
        return pl.scan_csv(
            path,
            separator=opts.separator,
            has_header=opts.has_header,
            null_values=opts.null_values or None,
            infer_schema_length=opts.infer_schema_length,
        )
    if fmt == "parquet":
        return pl.scan_parquet(path)
    return pl.scan_ndjson(path)


def _read_remote(fs: fsspec.AbstractFileSystem, path: str, source: FileSource) -> pl.LazyFrame:
    data = fs.cat_file(path)
    fmt = source.inferred_format
    opts = source.csv
    if fmt == "csv":
        return pl.read_csv(
            data,
            separator=opts.separator,
            has_header=opts.has_header,
            null_values=opts.null_values or None,
            infer_schema_length=opts.infer_schema_length,
        ).lazy()
    if fmt == "parquet":
        return pl.read_parquet(data).lazy()
    return pl.read_ndjson(data).lazy()
