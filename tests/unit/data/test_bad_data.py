"""Bad input data: each case fails with one line naming the file, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flowfactory.config import Destination, FileSource
from flowfactory.data import (
    DataRoot,
    ExpectedColumns,
    read_dataset,
    read_files,
    source_files,
    stage_output,
)
from flowfactory.errors import BadDataError

DEST = Destination(dataset="out", partition_by=["month"])
CONTRACT = "contracts/inputs/orders.json"
EXPECTED = ExpectedColumns(
    pl.Schema({"month": pl.Int64, "id": pl.Int64, "amount": pl.Float64}), CONTRACT
)


def landing(root: Path, **files: str | bytes) -> Path:
    """Files under <root>/landing, given as name=content."""
    folder = root / "landing"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = folder / name.replace("_", ".", 1)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return folder


def run(root: Path, source: FileSource, expected: ExpectedColumns | None = None) -> None:
    """Read the source and stream it into a dataset, as a run's read and write do."""
    data = DataRoot(str(root))
    frame = read_files(data, source, expected=expected)
    stage_output(data, frame, DEST, sources=[source_files(data, source, expected)])


def assert_nothing_written(root: Path) -> None:
    """No dataset folder, and no staging folder left behind."""
    assert not (root / "out").exists()
    staging = root / "_flowfactory" / "staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_ragged_csv_row_names_the_file(tmp_path: Path) -> None:
    """A CSV row with more fields than the header fails naming that file (not the good one)."""
    folder = landing(
        tmp_path,
        a_csv="month,id,amount\n1,1,2.5\n1,2,3.0\n",
        b_csv="month,id,amount\n2,3,1.0\n2,4,1.0,oops\n",
    )
    with pytest.raises(BadDataError) as caught:
        run(tmp_path, FileSource(path="landing/*.csv"))
    message = str(caught.value)
    assert message.startswith(f"{folder / 'b.csv'}: ")
    assert "\n" not in message
    assert_nothing_written(tmp_path)


def test_csv_value_that_does_not_parse_as_its_contract_dtype(tmp_path: Path) -> None:
    """With an input contract, a CSV value that is not its column's dtype names the file."""
    folder = landing(
        tmp_path,
        a_csv="month,id,amount\n1,1,2.5\n",
        b_csv="month,id,amount\n2,3,1.0\n2,x7,1.0\n",
    )
    with pytest.raises(BadDataError) as caught:
        run(tmp_path, FileSource(path="landing/*.csv"), EXPECTED)
    assert str(caught.value).startswith(f"{folder / 'b.csv'}: ")
    assert "x7" in str(caught.value)
    assert_nothing_written(tmp_path)


def test_the_same_csv_without_its_contract_is_read_as_text(tmp_path: Path) -> None:
    """Without a contract the column is inferred per file, so the same files do run."""
    landing(tmp_path, a_csv="month,id,amount\n1,1,2.5\n", b_csv="month,id,amount\n2,x7,1.0\n")
    run(tmp_path, FileSource(path="landing/*.csv"))


def test_empty_file_is_named(tmp_path: Path) -> None:
    """A zero-byte file fails before any data moves."""
    folder = landing(tmp_path, a_csv="month,id,amount\n1,1,2.5\n", b_csv="")
    with pytest.raises(BadDataError) as caught:
        run(tmp_path, FileSource(path="landing/*.csv"))
    assert str(caught.value) == f"{folder / 'b.csv'}: the file is empty"
    assert_nothing_written(tmp_path)


def parquet_bytes(frame: pl.DataFrame, tmp_path: Path) -> bytes:
    """A frame's Parquet file, as bytes."""
    path = tmp_path / "frame.parquet"
    frame.write_parquet(path)
    data = path.read_bytes()
    path.unlink()
    return data


GOOD = pl.DataFrame({"month": [1, 1], "id": [1, 2], "amount": [2.5, 3.0]})


def test_truncated_parquet_is_named(tmp_path: Path) -> None:
    """A Parquet file cut short has no footer: it fails naming the file, before data moves."""
    whole = parquet_bytes(GOOD, tmp_path)
    folder = landing(tmp_path, a_parquet=whole, b_parquet=whole[: len(whole) // 2])
    with pytest.raises(BadDataError) as caught:
        run(tmp_path, FileSource(path="landing/*.parquet"))
    assert str(caught.value).startswith(f"{folder / 'b.parquet'}: cannot read it as parquet: ")
    assert_nothing_written(tmp_path)


def test_corrupt_parquet_pages_are_named(tmp_path: Path) -> None:
    """A Parquet file whose footer reads but whose data is garbage fails naming the file."""
    frame = pl.DataFrame({"month": [1] * 5000, "id": range(5000), "amount": [1.5] * 5000})
    whole = bytearray(parquet_bytes(frame, tmp_path))
    for index in range(8, len(whole) // 2):
        whole[index] = 0xFF
    folder = landing(tmp_path, a_parquet=parquet_bytes(GOOD, tmp_path), b_parquet=bytes(whole))
    with pytest.raises(BadDataError) as caught:
        run(tmp_path, FileSource(path="landing/*.parquet"))
    assert str(caught.value).startswith(f"{folder / 'b.parquet'}: ")
    assert_nothing_written(tmp_path)


def test_landed_file_that_left_its_input_contract(tmp_path: Path) -> None:
    """A landed Parquet file with a renamed and a retyped column fails naming both."""
    renamed = GOOD.rename({"amount": "total"}).with_columns(pl.col("id").cast(pl.String))
    folder = landing(
        tmp_path,
        a_parquet=parquet_bytes(GOOD, tmp_path),
        b_parquet=parquet_bytes(renamed, tmp_path),
    )
    with pytest.raises(BadDataError) as caught:
        run(tmp_path, FileSource(path="landing/*.parquet"), EXPECTED)
    assert str(caught.value) == (
        f"{folder / 'b.parquet'}: its columns no longer match the input contract {CONTRACT}: "
        "missing column(s) amount; id is String, the contract says Int64"
    )
    assert_nothing_written(tmp_path)


def test_landed_csv_missing_a_contract_column(tmp_path: Path) -> None:
    """A CSV whose header lost a contract column fails naming the file and the column."""
    folder = landing(tmp_path, a_csv="month,id\n1,1\n")
    with pytest.raises(BadDataError) as caught:
        run(tmp_path, FileSource(path="landing/*.csv"), EXPECTED)
    assert str(caught.value) == (
        f"{folder / 'a.csv'}: its columns no longer match the input contract {CONTRACT}: "
        "missing column(s) amount"
    )


def test_good_files_run_and_read_back(tmp_path: Path) -> None:
    """The same path with good files stages and commits (the cases above are the data's)."""
    landing(tmp_path, a_csv="month,id,amount\n1,1,2.5\n", b_csv="month,id,amount\n2,3,1.0\n")
    data = DataRoot(str(tmp_path))
    source = FileSource(path="landing/*.csv")
    staged = stage_output(data, read_files(data, source, expected=EXPECTED), DEST)
    assert staged.rows == 2
    assert len(staged.partitions) == 2
    assert not (tmp_path / "out").exists()  # staged only: readers see nothing yet
    with pytest.raises(Exception, match="no data"):
        read_dataset(data, "out")
