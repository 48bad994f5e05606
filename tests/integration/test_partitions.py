"""The partition view and asset lineage on a real Prefect server: runs record each partition write,
`flowfactory partitions` shows it (stale, pending), a table artifact and asset events reach the API.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.helpers import FLOWFACTORY, partition_files, run_in
from tests.integration.conftest import project_settings
from tests.integration.test_data_aware import (
    _artifact,
    _producer_and_consumer,
    _start,
    _wait_for_events,
    _wait_for_runs,
    _write,
)

from flowfactory.config import Destination, load_project
from flowfactory.data import DataRoot, Partition, write_dataset
from flowfactory.deploy import deploy_project
from flowfactory.orchestration import artifact_key
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

MATERIALIZED = "prefect.asset.materialization.succeeded"
REFERENCED = "prefect.asset.referenced"


def _partitions(project: Path, dataset: str, api_url: str | None) -> dict[str, dict[str, Any]]:
    """`flowfactory partitions DATASET` by partition, asking the API at ``api_url`` (None: none
    answers) which input states were consumed."""
    argv = [str(FLOWFACTORY), "partitions", dataset, "--format", "json"]
    result = run_in(project, *argv, api_url=api_url) if api_url else run_in(project, *argv)
    assert result.returncode == 0, result.stderr
    return {row["partition"]: row for row in json.loads(result.stdout)}


def test_runs_record_partitions_report_assets_and_show_stale_and_pending(
    tmp_path: Path, stack: LocalStack
) -> None:
    """After a producer and its consumer ran: the view, its artifact and the asset events."""
    p = "q" + uuid.uuid4().hex[:8]
    # `{p}_load` (untriggered) reads landing CSVs into `{p}_orders`; `{p}_sum` is triggered by it.
    root = _write(tmp_path, _producer_and_consumer(p))
    settings = project_settings(root, stack)
    project = load_project(settings.deployments_dir, settings)
    asyncio.run(deploy_project(project, settings, prune=False))

    producer = asyncio.run(_start(f"{p}_load", {"name": f"{p}_load", "partition": "month=1"}, 120))
    assert producer.state is not None
    assert producer.state.is_completed(), producer.state
    (consumer,) = _wait_for_runs(f"pipeline/{p}_sum", 1)
    assert consumer.state is not None
    assert consumer.state.name == "Completed", consumer.state
    # February lands without flowfactory (no record, no event): its consumer has not run.
    write_dataset(
        DataRoot(settings.data_root_url),
        pl.DataFrame({"id": [3], "month": [2], "amount": [7]}),
        Destination(dataset=f"{p}_orders", partition_by=["month"], key=["id"]),
        Partition.parse("month=2"),
    )

    view = _partitions(root, f"{p}_orders", stack.api_url)
    jan, feb = view["month=1"], view["month=2"]
    assert jan["pending_known"]
    assert (jan["rows"], jan["flow_run"], jan["pipeline"]) == (2, str(producer.id), f"{p}_load")
    assert jan["bytes"] == sum(
        f.stat().st_size for f in partition_files(root / "data", f"{p}_orders", "month=1")
    )
    assert jan["written_at"]
    assert (jan["staleness"], jan["pending"]) == ("fresh", [])
    assert (feb["rows"], feb["flow_run"], feb["staleness"]) == (1, None, "unknown")
    assert feb["pending"] == [f"{p}_sum"]
    sums = _partitions(root, f"{p}_sums", stack.api_url)["month=1"]
    assert (sums["flow_run"], sums["staleness"]) == (str(consumer.id), "fresh")
    # Without a server, what was consumed is not known: the view says so.
    offline = _partitions(root, f"{p}_orders", None)["month=2"]
    assert (offline["pending"], offline["pending_known"]) == ([], False)

    # A new landing file: the untriggered producer's January no longer reflects its inputs.
    (root / "data/landing/orders/2024-02.csv").write_text("id,month,amount\n4,1,1\n")
    assert _partitions(root, f"{p}_orders", None)["month=1"]["staleness"] == "stale"

    table = asyncio.run(_artifact(artifact_key("partitions", f"{p}_sums")))
    assert "month=1" in table
    assert str(consumer.id) in table

    data_uri = (root / "data").resolve().as_uri()
    orders_uri = f"{data_uri}/{p}_orders"
    (load_event,) = _wait_for_events(MATERIALIZED, orders_uri)
    assert load_event.payload["partition"] == "month=1"
    assert load_event.payload["rows"] == 2
    upstream = {r.id for r in load_event.related if r.role == "asset"}
    assert upstream == {f"{data_uri}/landing/orders/*.csv"}
    assert any(r.id == f"prefect.flow-run.{producer.id}" for r in load_event.related)
    (sum_event,) = _wait_for_events(MATERIALIZED, f"{data_uri}/{p}_sums")
    assert {r.id for r in sum_event.related if r.role == "asset"} == {orders_uri}
    assert _wait_for_events(REFERENCED, orders_uri)
