"""The partition view: per dataset, each partition's size, last write, staleness and consumers.

A partition is *stale* when its producer's inputs moved since it was written: the versions the
producer would read for that partition now differ from those recorded with the write (see
``written``). This holds for untriggered producers as much as for triggered ones, and for file
inputs (landing files: any matched file changed, appeared or went away). It is *unknown* when
it cannot be told: the dataset has no producer here, flowfactory kept no record of the write, the
file was replaced since its record, or an input is an HTTP API, whose answers carry no version.
The pending consumers are known only with the keys of the consumed states, which the shell reads
from Prefect; without them (no server) they are unknown.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from flowfactory.config import PipelineFile, Project
from flowfactory.data import DataRoot, Partition, PartitionFiles
from flowfactory.scheduling.inputs import check_dataset, input_versions, known_datasets
from flowfactory.scheduling.pending import dataset_partitions, pending_consumers
from flowfactory.scheduling.written import PartitionRecord, read_written

__all__ = ["PartitionRow", "Staleness", "partition_rows"]


class Staleness(StrEnum):
    """Whether a partition reflects its producer's current inputs."""

    fresh = "fresh"
    stale = "stale"
    unknown = "unknown"


@dataclass(frozen=True)
class PartitionRow:
    """One partition of a dataset as the partition view shows it (None: not known)."""

    dataset: str
    partition: str
    rows: int | None
    bytes: int
    written_at: str | None
    flow_run: str | None
    pipeline: str | None
    staleness: Staleness
    reason: str
    pending: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    pending_known: bool = True


def partition_rows(
    project: Project,
    root: DataRoot,
    dataset: str | None = None,
    consumed: Container[str] | None = None,
) -> list[PartitionRow]:
    """The partitions of ``dataset`` (every dataset when None) with their facts, in order.

    ``consumed`` holds the run keys of the consumed input states (None: not known, and so
    neither are the pending consumers). Raises a UsageError (with a did-you-mean) for a dataset
    the project does not know.
    """
    if dataset is not None:
        check_dataset(project, dataset, "")
    names = [dataset] if dataset is not None else sorted(known_datasets(project))
    return [
        _row(project, root, name, partition, files, consumed=consumed)
        for name in names
        for partition, files in dataset_partitions(root, name).items()
    ]


def _row(
    project: Project,
    root: DataRoot,
    dataset: str,
    partition: str,
    files: PartitionFiles,
    *,
    consumed: Container[str] | None,
) -> PartitionRow:
    record = read_written(root, dataset, partition)
    if record is not None and record.file_version != files.version:
        record = None  # replaced by something else since: the record describes other data
    staleness, reason = _staleness(project.producers.get(dataset), root, record)
    pending, waiting = pending_consumers(project, root, dataset, partition, consumed or ())
    if consumed is None:
        pending = []
    return PartitionRow(
        dataset=dataset,
        partition=partition,
        rows=record.rows if record is not None else _count_rows(root, files),
        bytes=record.bytes if record is not None else files.bytes,
        written_at=record.written_at if record is not None else None,
        flow_run=(record.flow_run or None) if record is not None else None,
        pipeline=record.pipeline if record is not None else None,
        staleness=staleness,
        reason=reason,
        pending=tuple(pending),
        waiting=tuple(waiting),
        pending_known=consumed is not None,
    )


def _staleness(
    producer: PipelineFile | None, root: DataRoot, record: PartitionRecord | None
) -> tuple[Staleness, str]:
    if producer is None:
        return Staleness.unknown, "no pipeline of this project produces it"
    if record is None:
        return Staleness.unknown, "no record of its write (written outside flowfactory?)"
    scope = Partition.parse(record.scope) if record.scope else None
    now = input_versions(producer, root, scope)
    if set(now) != set(record.inputs):
        return Staleness.stale, "the producer's sources changed since it was written"
    changed = [t for t, v in now.items() if v is not None and v != record.inputs[t]]
    if changed:
        return Staleness.stale, f"input(s) changed since it was written: {', '.join(changed)}"
    unversioned = [t for t, v in now.items() if v is None]
    if unversioned:
        return Staleness.unknown, f"HTTP input(s) carry no version: {', '.join(unversioned)}"
    return Staleness.fresh, "inputs unchanged since it was written"


def _count_rows(root: DataRoot, files: PartitionFiles) -> int | None:
    """Rows of a partition: its manifest's count, else its footer's (not on an object store,
    where that would be a download)."""
    if files.rows is not None:
        return files.rows
    if not root.is_local:
        return None
    count: int = pl.scan_parquet(list(files.files)).select(pl.len()).collect().item()
    return count
