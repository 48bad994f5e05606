"""The run-time check of one output: the rows against their contract, before the write."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from tests.helpers import write_project

from flowfactory.config import find_pipeline, load_project
from flowfactory.schema import (
    ChangeKind,
    Impact,
    TableSchema,
    check_output,
    frame_violations,
    lock_project,
)
from flowfactory.settings import Settings

B = Impact.breaking
UTC_US = pl.Datetime("us", "UTC")


def table(
    columns: dict[str, pl.DataType], *, key: tuple[str, ...] = (), unique: bool = False
) -> TableSchema:
    return TableSchema.of(pl.Schema(columns), key=list(key), key_unique=unique)


def test_frame_violations_name_nulls_and_duplicate_keys() -> None:
    """Data against its contract: NOT NULL and key uniqueness are checked on the rows."""
    contract = table({"id": pl.Int64(), "v": pl.String()}, key=("id",), unique=True)
    assert contract.not_null == ["id"]  # key columns are NOT NULL
    frame = pl.DataFrame({"id": [1, 1, None], "v": ["a", "b", "c"]})
    changes = frame_violations(frame, contract, "none")
    kinds = {c.kind: c for c in changes}
    assert kinds[ChangeKind.null_values].column == "id"
    assert kinds[ChangeKind.null_values].verdict is B
    assert kinds[ChangeKind.duplicate_keys].verdict is B
    assert "1 duplicate" in kinds[ChangeKind.duplicate_keys].after


def test_frame_violations_accept_matching_data() -> None:
    """Data that fits its contract has no violations."""
    contract = table({"id": pl.Int64(), "t": UTC_US}, key=("id",), unique=True)
    frame = pl.DataFrame({"id": [1, 2], "t": [None, None]}, schema={"id": pl.Int64(), "t": UTC_US})
    assert frame_violations(frame, contract, "forward") == []


def test_frame_violations_catch_a_naive_time_zone() -> None:
    """The trap of a strict scan: UTC -> naive is a breaking change at run time too."""
    contract = table({"t": UTC_US})
    frame = pl.DataFrame({"t": [None]}, schema={"t": pl.Datetime("us")})
    (change,) = frame_violations(frame, contract, "forward")
    assert change.kind is ChangeKind.time_zone_changed
    assert change.verdict is B


def test_check_output_reports_what_the_run_refuses(tmp_path: Path) -> None:
    """No contract, no report; with one, the breaking changes name their columns once each."""
    pipeline_file = (
        "name: orders\nsource: {path: landing/orders.csv}\n"
        "transform: {sql: 'SELECT CAST(id AS BIGINT) AS id, amount FROM source'}\n"
        "destination: {dataset: orders, key: [id]}\n"
    )
    root = write_project(
        tmp_path,
        {
            "deployments/orders.yaml": pipeline_file,
            "data/landing/orders.csv": "id,amount\n1,2.5\n",
        },
    )
    settings = Settings(project_dir=root)
    pipeline = find_pipeline("orders", settings)
    dropped = pl.DataFrame({"id": [1, 1]})
    assert check_output(pipeline, dropped, settings) is None
    assert lock_project(load_project(settings.deployments_dir, settings), settings).ok
    report = check_output(pipeline, dropped, settings)
    assert report is not None
    assert report.columns == ["amount", "id"]
    assert report.payload()["contract"] == "contracts/orders.json"
    assert [c["kind"] for c in report.payload()["changes"]] == ["column_dropped", "duplicate_keys"]
    assert "Nothing was written" in report.message()
