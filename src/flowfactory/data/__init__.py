"""Data at rest and in motion: the data root (a folder or an fsspec URL), partitions and their
manifests, lazy scans of sources, running a transform over them, and streamed writes of
partitioned Parquet datasets, staged, measured and committed one partition at a time.
"""

from __future__ import annotations

from flowfactory.data.engine import (
    HttpReader,
    RunSummary,
    SourceScan,
    TransformFn,
    apply_transform,
    check_plan,
    check_run_partition,
    open_source,
    plan_schema,
    read_source,
    resolve_transform,
)
from flowfactory.data.files import (
    write_local_atomic,
)
from flowfactory.data.manifest import (
    MANIFEST_FILE,
    Manifest,
    ManifestFile,
)
from flowfactory.data.partitions import (
    Partition,
)
from flowfactory.data.reading import (
    ExpectedColumns,
    SourceFiles,
    dataset_files,
    explain_failure,
    read_dataset,
    read_files,
    source_files,
)
from flowfactory.data.root import (
    LEGACY_PART_FILE,
    STAGING_DIR,
    DataRoot,
    PartitionFiles,
    polars_location,
    polars_storage_options,
)
from flowfactory.data.writing import (
    StagedOutput,
    StagedPartition,
    WrittenPartition,
    commit_output,
    discard_staged,
    stage_output,
    write_dataset,
)

__all__ = [
    "LEGACY_PART_FILE",
    "MANIFEST_FILE",
    "STAGING_DIR",
    "DataRoot",
    "ExpectedColumns",
    "HttpReader",
    "Manifest",
    "ManifestFile",
    "Partition",
    "PartitionFiles",
    "RunSummary",
    "SourceFiles",
    "SourceScan",
    "StagedOutput",
    "StagedPartition",
    "TransformFn",
    "WrittenPartition",
    "apply_transform",
    "check_plan",
    "check_run_partition",
    "commit_output",
    "dataset_files",
    "discard_staged",
    "explain_failure",
    "open_source",
    "plan_schema",
    "polars_location",
    "polars_storage_options",
    "read_dataset",
    "read_files",
    "read_source",
    "resolve_transform",
    "source_files",
    "stage_output",
    "write_dataset",
    "write_local_atomic",
]
