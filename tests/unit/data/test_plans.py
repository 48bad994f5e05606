"""The run's plan is lazy from scan to sink: projections and filters reach the scans."""

from __future__ import annotations

import textwrap
from pathlib import Path

import polars as pl

from flowfactory.config import DatasetSource, Destination, FileSource, PipelineFile, load_pipeline
from flowfactory.data import (
    DataRoot,
    Partition,
    apply_transform,
    read_dataset,
    read_source,
    write_dataset,
)
from flowfactory.settings import Settings

WIDE = pl.DataFrame(
    {
        "month": [1, 1, 2],
        "origin": ["JFK", "LGA", "JFK"],
        "dep_delay": [3.0, None, 5.0],
        "arr_delay": [1.0, 2.0, 3.0],
        "carrier": ["AA", "UA", "DL"],
        "tailnum": ["N1", "N2", "N3"],
    }
)


def sql_pipeline(tmp_path: Path, sql: str, source: str) -> PipelineFile:
    """A pipeline file whose one source is ``source`` and whose transform is ``sql``."""
    folder = tmp_path / "deployments"
    folder.mkdir(exist_ok=True)
    path = folder / "p.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: p
            source: {source}
            transform:
              sql: "{sql}"
            destination: {{dataset: out, partition_by: [month]}}
            """
        )
    )
    return load_pipeline(path, Settings(project_dir=tmp_path))


def plan_of(tmp_path: Path, sql: str, partition: str | None = None) -> str:
    """The optimized plan of the SQL over the landed Parquet file, as polars explains it."""
    (tmp_path / "landing").mkdir(exist_ok=True)
    WIDE.write_parquet(tmp_path / "landing" / "flights.parquet")
    pipeline = sql_pipeline(tmp_path, sql, "{path: landing/flights.parquet}")
    root = DataRoot(str(tmp_path))
    scope = Partition.parse(partition) if partition else None
    frames = {"source": read_source(FileSource(path="landing/flights.parquet"), root, scope)}
    return apply_transform(pipeline, frames, None).explain()


def test_the_scan_reads_only_the_columns_the_transform_uses(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "SELECT month, origin, avg(dep_delay) AS d FROM source GROUP BY ALL")
    assert "Parquet SCAN" in plan
    assert "PROJECT 3/6 COLUMNS" in plan


def test_the_partition_filter_reaches_the_scan(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "SELECT month, carrier FROM source", partition="month=2")
    scan = plan[plan.index("Parquet SCAN") :]
    assert 'SELECTION: (col("month").strict_cast(String)) == ("2")' in scan or (
        "SELECTION:" in scan and '"month"' in scan
    )


def test_a_sql_filter_reaches_the_scan(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "SELECT origin FROM source WHERE carrier = 'AA'")
    scan = plan[plan.index("Parquet SCAN") :]
    assert "SELECTION:" in scan
    assert '"carrier"' in scan


def test_a_dataset_partition_is_read_from_its_own_files_only(tmp_path: Path) -> None:
    """Scoped to one partition, a dataset scan lists only that partition's files."""
    root = DataRoot(str(tmp_path))
    write_dataset(root, WIDE, Destination(dataset="flights", partition_by=["month"]))
    plan = read_dataset(root, "flights", Partition.parse("month=2")).explain()
    (january,) = root.partition_files("flights", "month=1").files  # type: ignore[union-attr]
    (february,) = root.partition_files("flights", "month=2").files  # type: ignore[union-attr]
    assert Path(february).name in plan
    assert Path(january).name not in plan
    frame = read_source(DatasetSource(dataset="flights"), root, Partition.parse("month=2"))
    assert frame.collect()["carrier"].to_list() == ["DL"]
