"""The partition view: each partition's last write, staleness and pending consumers, from files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from tests.helpers import write_project

from flowfactory.config import Project, load_project
from flowfactory.data import DataRoot, Partition, write_dataset
from flowfactory.errors import UsageError
from flowfactory.scheduling import (
    PartitionRow,
    Staleness,
    input_versions,
    partition_rows,
    readiness,
    record_written,
    run_key,
)
from flowfactory.settings import Settings

JAN = "month=1"
FEB = "month=2"
LANDING = "data/landing/orders.csv"
PIPELINES = {
    # An untriggered producer reading landing files, and a consumer triggered by its output.
    "deployments/orders.yaml": (
        "name: orders\nsource: {path: landing/orders.csv}\n"
        "destination: {dataset: orders, partition_by: [month], key: [id]}\n"
    ),
    "deployments/sums.yaml": (
        "name: sums\nsource: {dataset: orders}\n"
        'transform: {sql: "SELECT month, sum(amount) AS total FROM source GROUP BY month"}\n'
        "destination: {dataset: sums, partition_by: [month], key: [month]}\n"
        "trigger: {on: [orders]}\n"
    ),
    # A producer whose only input is an API: its answers carry no version.
    "deployments/rates.yaml": (
        "name: rates\nsource: {http: {block: rates-api, path: /rates}}\n"
        "destination: {dataset: rates}\n"
    ),
    LANDING: "id,month,amount\n1,1,10\n2,1,5\n3,2,7\n",
}
ORDERS = pl.DataFrame({"id": [1, 2, 3], "month": [1, 1, 2], "amount": [10, 5, 7]})


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The three pipelines above, with the landing file in place."""
    settings = Settings(project_dir=write_project(tmp_path, PIPELINES))
    return load_project(settings.deployments_dir, settings)


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    """The project's data root."""
    return DataRoot(str(tmp_path / "data"))


def produce(
    project: Project, root: DataRoot, name: str, frame: pl.DataFrame, run: str = "run-1"
) -> None:
    """What a run of ``name`` does to the data: measure its inputs, write, record each write."""
    pipeline = project.get(name)
    inputs = input_versions(pipeline, root, None)
    for part in write_dataset(root, frame, pipeline.config.destination):
        record_written(
            root,
            part,
            pipeline=name,
            flow_run=run,
            scope="",
            inputs=inputs,
            now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        )


def rows_of(
    project: Project, root: DataRoot, dataset: str, consumed: frozenset[str] = frozenset()
) -> dict[str, PartitionRow]:
    """The rows by partition, ``consumed`` holding the run keys of the consumed states."""
    return {row.partition: row for row in partition_rows(project, root, dataset, consumed)}


def test_a_recorded_write_shows_its_rows_bytes_time_and_run(
    project: Project, root: DataRoot
) -> None:
    produce(project, root, "orders", ORDERS)
    rows = rows_of(project, root, "orders")
    assert list(rows) == [JAN, FEB]
    jan = rows[JAN]
    assert (jan.rows, jan.pipeline, jan.flow_run) == (2, "orders", "run-1")
    live = root.partition_files("orders", Partition.parse(JAN))
    assert live is not None
    assert jan.bytes == sum(Path(f).stat().st_size for f in live.files)
    assert jan.written_at == "2024-01-02T03:04:05+00:00"
    assert jan.staleness is Staleness.fresh


def test_a_changed_landing_file_makes_the_untriggered_producers_partitions_stale(
    project: Project, root: DataRoot, tmp_path: Path
) -> None:
    produce(project, root, "orders", ORDERS)
    (tmp_path / LANDING).write_text("id,month,amount\n1,1,10\n2,1,5\n3,2,7\n4,2,1\n")
    rows = rows_of(project, root, "orders")
    assert {row.staleness for row in rows.values()} == {Staleness.stale}
    assert rows[JAN].reason == "input(s) changed since it was written: source"


def test_a_rerun_on_the_new_input_clears_staleness_and_keeps_the_unchanged_write(
    project: Project, root: DataRoot, tmp_path: Path
) -> None:
    produce(project, root, "orders", ORDERS)
    (tmp_path / LANDING).write_text("id,month,amount\n1,1,10\n2,1,5\n3,2,7\n4,2,1\n")
    produce(
        project,
        root,
        "orders",
        pl.concat([ORDERS, pl.DataFrame([[4], [2], [1]], ORDERS.schema)]),
        "run-2",
    )
    rows = rows_of(project, root, "orders")
    assert {row.staleness for row in rows.values()} == {Staleness.fresh}
    # January's bytes did not change: its last write is still the first run's.
    assert (rows[JAN].flow_run, rows[FEB].flow_run) == ("run-1", "run-2")
    assert (rows[JAN].rows, rows[FEB].rows) == (2, 2)


def test_a_consumer_is_pending_until_it_consumed_the_partitions_state(
    project: Project, root: DataRoot
) -> None:
    produce(project, root, "orders", ORDERS)
    assert rows_of(project, root, "orders")[JAN].pending == ("sums",)
    consumed = frozenset({run_key(readiness(project.get("sums"), root, Partition.parse(JAN)))})
    rows = rows_of(project, root, "orders", consumed)
    assert (rows[JAN].pending, rows[FEB].pending) == ((), ("sums",))
    assert rows[JAN].pending_known


def test_pending_consumers_are_unknown_without_the_consumed_states(
    project: Project, root: DataRoot
) -> None:
    """No answer from Prefect: the view says it does not know rather than listing everyone."""
    produce(project, root, "orders", ORDERS)
    (jan, _) = partition_rows(project, root, "orders", None)
    assert (jan.pending, jan.pending_known, jan.waiting) == ((), False, ())


def test_a_write_without_a_record_is_unknown_but_still_counted(
    project: Project, root: DataRoot
) -> None:
    write_dataset(root, ORDERS, project.get("orders").config.destination)
    jan = rows_of(project, root, "orders")[JAN]
    assert (jan.rows, jan.written_at, jan.flow_run, jan.pipeline) == (2, None, None, None)
    assert jan.staleness is Staleness.unknown
    assert jan.pending == ("sums",)


def test_a_file_replaced_since_its_record_is_unknown(project: Project, root: DataRoot) -> None:
    produce(project, root, "orders", ORDERS)
    destination = project.get("orders").config.destination
    write_dataset(root, ORDERS.with_columns(amount=pl.col("amount") * 2), destination)
    jan = rows_of(project, root, "orders")[JAN]
    assert (jan.staleness, jan.flow_run) == (Staleness.unknown, None)


def test_an_http_input_makes_staleness_unknown(project: Project, root: DataRoot) -> None:
    produce(project, root, "rates", pl.DataFrame({"currency": ["EUR"], "rate": [1.1]}))
    (row,) = partition_rows(project, root, "rates")
    assert (row.partition, row.rows, row.flow_run) == ("", 1, "run-1")
    assert row.staleness is Staleness.unknown
    assert row.reason == "HTTP input(s) carry no version: source"


def test_every_dataset_when_none_is_named(project: Project, root: DataRoot) -> None:
    produce(project, root, "orders", ORDERS)
    produce(project, root, "rates", pl.DataFrame({"currency": ["EUR"], "rate": [1.1]}))
    assert [(r.dataset, r.partition) for r in partition_rows(project, root)] == [
        ("orders", JAN),
        ("orders", FEB),
        ("rates", ""),
    ]


def test_an_unknown_dataset_is_a_usage_error_with_a_suggestion(
    project: Project, root: DataRoot
) -> None:
    with pytest.raises(UsageError, match="did you mean 'orders'"):
        partition_rows(project, root, "ordres")
