"""The record of each partition write, kept under the data root in ``_flowfactory/written/``.

A run records, per partition it produced, what it wrote (rows, bytes, content hash, which is
also the partition's version), when and by which run, and the versions of the inputs it read.
The partition view reads it back: the version tells whether the record still describes the
partition on disk (something else may have replaced it), the input versions whether the
producer's inputs moved since. A re-run that produced the same rows leaves the files alone; it
keeps the first write's time and run and records the input versions it read, which are then
consumed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Final

from flowfactory.data import DataRoot, WrittenPartition

__all__ = ["STATE_DIR", "PartitionRecord", "read_written", "record_written"]

# flowfactory's own records under the data root.
STATE_DIR: Final = "_flowfactory"


@dataclass(frozen=True)
class PartitionRecord:
    """One partition's last write: its facts, its run, and the input versions it reflects."""

    dataset: str
    partition: str
    rows: int
    bytes: int
    content_hash: str
    file_version: str
    written_at: str
    flow_run: str
    pipeline: str
    # The partition the run was for ("" for all): input versions are measured on that scope.
    scope: str = ""
    inputs: dict[str, str | None] = field(default_factory=dict)


def _record_path(dataset: str, partition: str) -> str:
    return f"{STATE_DIR}/written/{dataset}/{partition or '_all'}.json"


def read_written(root: DataRoot, dataset: str, partition: str) -> PartitionRecord | None:
    """The record of a partition's last write, or None when flowfactory has none."""
    data = root.get(_record_path(dataset, partition))
    if data is None:
        return None
    try:
        return PartitionRecord(**json.loads(data))
    except (TypeError, ValueError):
        return None  # an older or damaged record tells nothing reliable


def record_written(
    root: DataRoot,
    written: WrittenPartition,
    *,
    pipeline: str,
    flow_run: str,
    scope: str,
    inputs: dict[str, str | None],
    now: datetime,
) -> PartitionRecord:
    """Record one partition write (after the file is in place); return the record."""
    partition = str(written.partition) if written.partition else ""
    record = PartitionRecord(
        dataset=written.dataset,
        partition=partition,
        rows=written.rows,
        bytes=written.bytes,
        content_hash=written.content_hash,
        # A committed partition's version is its content hash (see flowfactory.data.manifest).
        file_version=written.content_hash,
        written_at=now.isoformat(),
        flow_run=flow_run,
        pipeline=pipeline,
        scope=scope,
        inputs=dict(inputs),
    )
    previous = read_written(root, written.dataset, partition)
    if (
        not written.changed
        and previous is not None
        and previous.file_version == record.file_version
    ):
        record = replace(previous, scope=scope, inputs=dict(inputs))
    root.put_atomic(
        _record_path(written.dataset, partition), json.dumps(asdict(record), indent=2).encode()
    )
    return record
