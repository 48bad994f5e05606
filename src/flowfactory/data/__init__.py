"""Data at rest and in motion: the data root (a folder or an fsspec URL), partitions, reading
sources, running a transform over them, and atomic writes of partitioned Parquet datasets.
"""

from __future__ import annotations

from flowfactory.data.engine import (
    HttpReader,
    RunSummary,
    TransformFn,
    apply_transform,
    check_plan,
    check_run_partition,
    read_source,
    resolve_transform,
)
from flowfactory.data.files import (
    write_local_atomic,
)
from flowfactory.data.partitions import (
    Partition,
)
from flowfactory.data.reading import (
    read_dataset,
    read_files,
)
from flowfactory.data.root import (
    PART_FILE,
    DataRoot,
)
from flowfactory.data.writing import (
    WrittenPartition,
    write_dataset,
)

__all__ = [
    "PART_FILE",
    "DataRoot",
    "HttpReader",
    "Partition",
    "RunSummary",
    "TransformFn",
    "WrittenPartition",
    "apply_transform",
    "check_plan",
    "check_run_partition",
    "read_dataset",
    "read_files",
    "read_source",
    "resolve_transform",
    "write_dataset",
    "write_local_atomic",
]
