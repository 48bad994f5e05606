"""Writing: a frame into partitioned Parquet under the data root, one file per partition.

Each partition is one Parquet file, ``<root>/<dataset>/<col>=<value>/.../part-0.parquet``,
replaced atomically: the new bytes go to a hidden temporary file in the same folder, which is
then renamed over the old one. A crash or kill mid-write leaves the previous file intact, and a
re-run that produces the same bytes leaves the file untouched.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import polars as pl

from flowfactory.config import Destination
from flowfactory.data.partitions import Partition
from flowfactory.data.root import DataRoot
from flowfactory.errors import WriteError

__all__ = ["WrittenPartition", "write_dataset"]


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


def write_dataset(
    root: DataRoot,
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
            for key, part in frame.partition_by(columns, as_dict=True, maintain_order=True).items()
        ]
    return [_write_partition(root, destination.dataset, p, df) for p, df in groups]


def _write_partition(
    root: DataRoot, dataset: str, partition: Partition | None, frame: pl.DataFrame
) -> WrittenPartition:
    target = root.partition_file(dataset, partition)
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    changed = not _same_content(root, target, data)
    if changed:
        try:
            root.replace_file(target, data)
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


def _same_content(root: DataRoot, target: str, data: bytes) -> bool:
    try:
        if root.fs.size(target) != len(data):
            return False
        existing: bytes = root.fs.cat_file(target)
    except FileNotFoundError:
        return False
    return existing == data


def _sorted(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Sort so that the same rows always give the same bytes."""
    columns = key or [
        c
        for c, dtype in frame.schema.items()
        if not isinstance(dtype, pl.List | pl.Struct | pl.Array)
    ]
    return frame.sort(columns, nulls_last=True, maintain_order=True) if columns else frame
