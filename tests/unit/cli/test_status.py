"""`flowfactory status`: live versions, breakers and datasets as typed rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from tests.helpers import write_project

from flowfactory.canary import set_live_version
from flowfactory.cli.status_rows import dataset_rows, status_rows, version_rows
from flowfactory.config import load_project
from flowfactory.data import DataRoot, write_dataset
from flowfactory.settings import Settings

PIPELINES = {
    "deployments/orders.yaml": (
        "name: orders\nsource: {path: landing/o.csv}\n"
        "destination: {dataset: orders, partition_by: [month], key: [id]}\n"
        "canary:\n  candidate: {sql: SELECT * FROM source}\n  sample: {key: [id], fraction: 0.5}\n"
    ),
    "deployments/totals.yaml": (
        "name: totals\nsource: {dataset: orders}\ndestination: {dataset: totals}\n"
    ),
}


def test_rows_show_live_version_and_each_dataset_update(tmp_path: Path) -> None:
    root_dir = write_project(tmp_path, PIPELINES)
    settings = Settings(project_dir=root_dir)
    project = load_project(settings.deployments_dir, settings)
    root = DataRoot(settings.data_root_url)

    (version,) = version_rows(project, root)
    assert (version.name, version.state, version.detail) == ("orders", "v1", "never promoted")
    by_name = {row.name: row for row in dataset_rows(project, root)}
    assert by_name["orders"].state == "empty"
    assert by_name["totals"].state == "empty"

    orders = next(p for p in project.pipelines if p.name == "orders")
    write_dataset(
        root, pl.DataFrame({"id": [1, 2, 3], "month": [1, 1, 2]}), orders.config.destination
    )
    set_live_version(orders, root, "v2", by="test")

    rows = status_rows(project, root)
    assert [row.kind for row in rows] == ["version", "dataset", "dataset"]
    assert rows[0].state == "v2"
    assert "by test" in rows[0].detail
    updated = next(row for row in rows if (row.kind, row.name) == ("dataset", "orders"))
    assert updated.state == "updated"
    assert updated.detail.startswith("2 partition(s), last ")
    assert "produced by orders" in updated.detail
