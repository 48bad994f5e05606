"""What staging measures of each partition it writes: rows, nulls, repeated keys and a content
hash that does not depend on row order."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flowfactory.config import Destination
from flowfactory.data import DataRoot, Partition, discard_staged, stage_output

DEST = Destination(dataset="orders", partition_by=["month"], key=["id"])


def _staged_by_partition(
    tmp_path: Path,
    frame: pl.DataFrame,
    not_null: tuple[str, ...] = (),
    unique_key: tuple[str, ...] = (),
) -> dict[str, tuple[int, dict[str, int], int, str]]:
    root = DataRoot(str(tmp_path))
    staged = stage_output(root, frame.lazy(), DEST, not_null=not_null, unique_key=unique_key)
    try:
        return {
            str(p.partition): (p.rows, p.nulls, p.duplicate_keys, p.content_hash)
            for p in staged.partitions
        }
    finally:
        discard_staged(staged)


FRAME = pl.DataFrame(
    {
        "month": [1, 1, 1, 2, 2],
        "id": [3, 1, 3, 7, 8],
        "amount": [10, None, 30, None, None],
    }
)


@pytest.mark.parametrize("unique_key", [("id",), ("id", "amount")])
def test_rows_nulls_and_repeated_keys_per_partition(
    tmp_path: Path, unique_key: tuple[str, ...]
) -> None:
    measured = _staged_by_partition(tmp_path, FRAME, not_null=("amount",), unique_key=unique_key)
    jan, feb = measured["month=1"], measured["month=2"]
    assert (jan[0], jan[1], feb[0], feb[1]) == (3, {"amount": 1}, 2, {"amount": 2})
    # id 3 twice in January; with the amount in the key the two rows differ.
    assert (jan[2], feb[2]) == ((1, 0) if unique_key == ("id",) else (0, 0))


def test_the_content_hash_does_not_depend_on_row_order(tmp_path: Path) -> None:
    forward = _staged_by_partition(tmp_path / "a", FRAME)
    backward = _staged_by_partition(tmp_path / "b", FRAME.reverse())
    assert forward == backward
    changed = _staged_by_partition(tmp_path / "c", FRAME.with_columns(pl.col("amount") + 1))
    assert changed["month=1"][3] != forward["month=1"][3]
    assert changed["month=2"][3] == forward["month=2"][3]  # all nulls: still null


def test_one_partition_is_measured_and_written_in_key_order(tmp_path: Path) -> None:
    root = DataRoot(str(tmp_path))
    staged = stage_output(root, FRAME.lazy(), DEST, Partition.parse("month=1"), unique_key=["id"])
    try:
        (part,) = staged.partitions
        assert (str(part.partition), part.rows, part.duplicate_keys) == ("month=1", 3, 1)
        assert pl.read_parquet(list(part.files))["id"].to_list() == [1, 3, 3]
    finally:
        discard_staged(staged)
