"""What a run reports about the partitions it wrote, besides ``dataset.updated``: the record of
each write (for the partition view), the view itself as a table artifact, and each write as a
Prefect asset materialization keyed by the dataset's URI, its inputs as upstream assets.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from prefect.artifacts import create_table_artifact
from prefect.assets import Asset, AssetProperties
from prefect.logging import get_run_logger
from pydantic import ValidationError

from flowfactory.blocks import HttpJsonApi
from flowfactory.config import DatasetSource, FileSource, HttpSource, PipelineFile, Project
from flowfactory.data import DataRoot, Partition, WrittenPartition
from flowfactory.orchestration import events
from flowfactory.orchestration.artifacts import artifact_key
from flowfactory.orchestration.fanout import consumed_keys
from flowfactory.orchestration.prefect_api import api_is_healthy
from flowfactory.scheduling import (
    PartitionRow,
    check_dataset,
    consumer_states,
    partition_rows,
    record_written,
)

__all__ = [
    "dataset_uri",
    "partition_view",
    "publish_partitions",
    "record_writes",
    "report_materializations",
    "source_uri",
]


def record_writes(
    pipeline: PipelineFile,
    written: list[WrittenPartition],
    root: DataRoot,
    *,
    scope: Partition | None,
    inputs: dict[str, str | None],
    flow_run: str,
) -> None:
    """Record each partition write with the input versions the run read."""
    now = datetime.now(UTC)
    for part in written:
        record_written(
            root,
            part,
            pipeline=pipeline.name,
            flow_run=flow_run,
            scope=str(scope) if scope else "",
            inputs=inputs,
            now=now,
        )


def partition_view(
    project: Project, root: DataRoot, dataset: str | None, *, api_url: str | None = None
) -> list[PartitionRow]:
    """The partition view, its pending consumers told by the runs on the Prefect API.

    With ``api_url``, an API that does not answer leaves the pending consumers unknown instead
    of waiting for it.
    """
    if dataset is not None:
        check_dataset(project, dataset, "")
    consumed = None
    if api_url is None or api_is_healthy(api_url):
        consumed = consumed_keys(consumer_states(project, root, [dataset] if dataset else []))
    return partition_rows(project, root, dataset, consumed)


def publish_partitions(project: Project, root: DataRoot, dataset: str) -> None:
    """Publish the partition view of ``dataset`` as the table artifact ``partitions-<dataset>``."""
    rows = partition_view(project, root, dataset)
    create_table_artifact(
        table=[{**asdict(row), "pending": ", ".join(row.pending)} for row in rows],
        key=artifact_key("partitions", dataset),
        description=f"Partitions of dataset {dataset}: last write, staleness, pending consumers",
    )


def dataset_uri(root: DataRoot, dataset: str) -> str:
    """The URI of a dataset: ``file:///abs/data/flights``, ``s3://bucket/root/flights``."""
    if root.is_local:
        return Path(root.dataset_dir(dataset)).resolve().as_uri()
    protocol = root.fs.protocol
    scheme = protocol[0] if isinstance(protocol, tuple | list) else protocol
    return f"{scheme}://{root.dataset_dir(dataset)}"


def source_uri(source: DatasetSource | FileSource | HttpSource, root: DataRoot) -> str | None:
    """The URI of an input: a dataset's, a file source's path, an API's URL (None if unknown)."""
    if isinstance(source, DatasetSource):
        return dataset_uri(root, source.dataset)
    if isinstance(source, FileSource):
        if source.is_url:
            return source.path
        if root.is_local:
            return f"{Path(root.root).resolve().as_uri()}/{source.path}"
        return f"{dataset_uri(root, '')}/{source.path}"
    try:
        api = HttpJsonApi.load(source.http.block, _sync=True)  # type: ignore[call-arg] # sync
    except Exception:  # noqa: BLE001 - the URL only names the upstream asset
        return None  # the block is gone or the API unreachable: no URL to name
    assert isinstance(api, HttpJsonApi)  # noqa: S101 - narrows Prefect's dispatching type
    return f"{api.base_url.rstrip('/')}{source.http.path}"


def _asset(uri: str | None, name: str | None = None) -> Asset | None:
    """An asset for ``uri``; its name is set only by its producer (properties overwrite)."""
    if uri is None:
        return None
    try:
        return Asset(key=uri, properties=AssetProperties(name=name) if name else None)
    except ValidationError:
        # Prefect's keys allow no spaces, %, ?, brackets and the like (globs, encoded paths).
        get_run_logger().warning("not reported as an asset: %s is no valid asset key", uri)
        return None


def report_materializations(
    pipeline: PipelineFile, written: list[WrittenPartition], root: DataRoot, flow_run: str
) -> None:
    """Report each partition written as a materialization of the dataset's asset."""
    dataset = pipeline.config.destination.dataset
    asset = _asset(dataset_uri(root, dataset), dataset) if written else None
    if asset is None:
        return
    upstream = [
        found
        for source in pipeline.config.inputs.values()
        if (found := _asset(source_uri(source, root))) is not None
    ]
    for part in written:
        payload = {
            "dataset": part.dataset,
            "partition": str(part.partition) if part.partition else "",
            "rows": part.rows,
            "bytes": part.bytes,
            "content_hash": part.content_hash,
            "pipeline": pipeline.name,
            "flow_run": flow_run,
        }
        events.emit_materialization(asset, upstream, payload)
