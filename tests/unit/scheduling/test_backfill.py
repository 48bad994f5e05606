"""Unit tests of a backfill's plan: which partitions exist, their order, ranges, skip and force."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tests.helpers import load_pipelines

from flowfactory.config import Destination, PipelineFile
from flowfactory.data import DataRoot, Partition, write_dataset
from flowfactory.errors import UsageError
from flowfactory.scheduling import (
    BackfillItem,
    known_partitions,
    partition_order,
    plan_backfill,
    readiness,
    run_key,
    select_partitions,
)

pytestmark = pytest.mark.usefixtures("project_dir")

MONTHS = [f"month={m}" for m in range(1, 13)]

TRIGGERED = """\
source: {dataset: orders, external: true}
transform: {sql: "SELECT * FROM source"}
destination: {dataset: sums, partition_by: [month], key: [id]}
trigger: {on: [orders]}
"""

FROM_FILES = """\
source: {path: "landing/*.csv"}
destination: {dataset: loaded, partition_by: [month], key: [id]}
"""


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    """The project's data root, tmp_path/data."""
    return DataRoot(str(tmp_path / "data"))


def pipeline(tmp_path: Path, text: str) -> PipelineFile:
    return load_pipelines(tmp_path, job=text).get("job")


def land(root: DataRoot, *months: int, ids: tuple[int, ...] = (1,)) -> None:
    """Write the external dataset ``orders`` with one row per (month, id)."""
    frame = pl.DataFrame({"month": [m for m in months for _ in ids], "id": list(ids) * len(months)})
    write_dataset(root, frame, Destination(dataset="orders", partition_by=["month"], key=["id"]))


def consumed(job: PipelineFile, root: DataRoot, month: int) -> set[str]:
    """The run key of the current input state of ``month``, as its completed run has it."""
    return {run_key(readiness(job, root, Partition.parse(f"month={month}")))}


# --------------------------------------------------------------------------------------------
# Ordering and selection


def test_partitions_order_by_value_numbers_numerically() -> None:
    """month=10 comes after month=9; text values sort as text; columns in their order."""
    texts = ["year=2013/month=10", "year=2013/month=9", "year=2012/month=12", "year=2013/month=1"]
    ordered = sorted(texts, key=lambda t: partition_order(Partition.parse(t)))
    assert ordered == [
        "year=2012/month=12",
        "year=2013/month=1",
        "year=2013/month=9",
        "year=2013/month=10",
    ]
    origins = sorted(
        ["origin=LGA", "origin=EWR", "origin=JFK"],
        key=lambda t: partition_order(Partition.parse(t)),
    )
    assert origins == ["origin=EWR", "origin=JFK", "origin=LGA"]


def test_a_range_covers_the_known_partitions_between_its_ends() -> None:
    """Inclusive on both ends, in value order, whatever order the partitions were found in."""
    known = sorted(MONTHS)  # text order: month=1, month=10, month=11, month=12, month=2, ...
    assert select_partitions("job", known, first="month=9", last="month=11") == [
        "month=9",
        "month=10",
        "month=11",
    ]
    assert select_partitions("job", known, first="month=3", last="month=3") == ["month=3"]


def test_listed_partitions_come_back_in_order_once_each() -> None:
    """--partitions in any order, repeated or with blanks: each once, ordered by value."""
    listed = ["month=10", "month=2", "", "month=2 "]
    assert select_partitions("job", MONTHS, listed=listed) == ["month=2", "month=10"]


def test_a_partition_outside_the_inputs_names_the_first_that_exist() -> None:
    """One line naming the unknown partition and the first few that exist."""
    with pytest.raises(UsageError) as raised:
        select_partitions("job", MONTHS, listed=["month=1", "month=13"])
    assert str(raised.value) == (
        "partition 'month=13' is not among the partitions of job's inputs: "
        "month=1, month=2, month=3, month=4, month=5, ... (12 in all)"
    )
    with pytest.raises(UsageError, match="'month=0' is not among"):
        select_partitions("job", MONTHS, first="month=0", last="month=3")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give either --from and --to, or --partitions"),
        ({"first": "month=1", "listed": ["month=2"]}, "give either"),
        ({"first": "month=1"}, "a range needs both --from and --to"),
        ({"first": "month=3", "last": "month=1"}, "--from month=3 comes after --to month=1"),
        ({"first": "month=1", "last": "year=2013"}, "different partition columns"),
        ({"first": "month", "last": "month=2"}, "is not of the form column=value"),
        ({"listed": [" "]}, "--partitions names no partition"),
    ],
)
def test_malformed_selections_are_usage_errors(options: dict[str, object], message: str) -> None:
    """Each mistake is one UsageError saying what to give instead."""
    with pytest.raises(UsageError, match=message):
        select_partitions("job", MONTHS, **options)  # type: ignore[arg-type]


def test_without_known_partitions_values_are_taken_as_given() -> None:
    """Inputs without partition folders: listed values as given, a whole-number range expanded."""
    assert select_partitions("job", [], listed=["month=2", "month=1"]) == ["month=1", "month=2"]
    assert select_partitions("job", [], first="year=2013/month=8", last="year=2013/month=11") == [
        "year=2013/month=8",
        "year=2013/month=9",
        "year=2013/month=10",
        "year=2013/month=11",
    ]
    with pytest.raises(UsageError, match="no partition folders to take the range"):
        select_partitions("job", [], first="year=2012/month=11", last="year=2013/month=2")
    with pytest.raises(UsageError, match="list the partitions with --partitions"):
        select_partitions("job", [], first="origin=EWR", last="origin=LGA")


# --------------------------------------------------------------------------------------------
# The plan against the data and the ledger


def test_known_partitions_are_those_of_the_input_datasets(tmp_path: Path, root: DataRoot) -> None:
    """The trigger's input partitions, ordered by value; files without folders have none."""
    land(root, 10, 2, 9)
    assert known_partitions(pipeline(tmp_path, TRIGGERED), root) == [
        "month=2",
        "month=9",
        "month=10",
    ]
    assert known_partitions(pipeline(tmp_path, FROM_FILES), root) == []


def test_consumed_input_states_are_skipped_unless_forced(tmp_path: Path, root: DataRoot) -> None:
    """A consumed state is skipped with its reason; the others run with their input state."""
    job = pipeline(tmp_path, TRIGGERED)
    land(root, 1, 2, 3)
    plan = plan_backfill(job, root, first="month=1", last="month=3")
    plan = plan.without_consumed(consumed(job, root, 2))
    inputs = {m: readiness(job, root, Partition.parse(f"month={m}")) for m in (1, 2, 3)}
    assert plan.items == (
        BackfillItem("month=1", state=inputs[1].state, key=run_key(inputs[1])),
        BackfillItem("month=2", skip=f"input state {inputs[2].state} was already consumed"),
        BackfillItem("month=3", state=inputs[3].state, key=run_key(inputs[3])),
    )
    assert [i.partition for i in plan.to_run] == ["month=1", "month=3"]
    assert [i.partition for i in plan.skipped] == ["month=2"]

    forced = plan_backfill(job, root, first="month=1", last="month=3", force=True)
    assert forced.items == tuple(BackfillItem(f"month={m}") for m in (1, 2, 3))


def test_a_changed_input_runs_again(tmp_path: Path, root: DataRoot) -> None:
    """New data in a consumed partition is a new input state: it runs without --force."""
    job = pipeline(tmp_path, TRIGGERED)
    land(root, 1)
    before = consumed(job, root, 1)
    assert plan_backfill(job, root, listed=["month=1"]).without_consumed(before).to_run == []
    land(root, 1, ids=(1, 2))
    (item,) = plan_backfill(job, root, listed=["month=1"]).without_consumed(before).to_run
    assert item.state == readiness(job, root, Partition.parse("month=1")).state


def test_a_pipeline_without_a_ledger_runs_every_partition(tmp_path: Path, root: DataRoot) -> None:
    """No trigger: nothing is recorded per partition, so each runs, without a state."""
    plan = plan_backfill(pipeline(tmp_path, FROM_FILES), root, first="month=1", last="month=2")
    assert plan.items == (BackfillItem("month=1"), BackfillItem("month=2"))
