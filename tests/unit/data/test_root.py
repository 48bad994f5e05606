"""Unit tests for reading sources and writing partitioned datasets (flowfactory.data.root)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flowfactory.config import CsvOptions, Destination, FileSource
from flowfactory.data import (
    MANIFEST_FILE,
    DataRoot,
    Partition,
    read_dataset,
    read_files,
    write_dataset,
)
from flowfactory.errors import PipelineRunError, WriteError

DEST = Destination(dataset="flights", partition_by=["year", "month"], key=["id"])
SCHEMA = {"year": pl.Int64, "month": pl.Int64, "id": pl.Int64, "carrier": pl.String}
BAD_PARTITION = "partition {!r} is not of the form column=value[/column=value...]"
NAIVE_HOUR = dt.datetime(2013, 1, 1, 5, 30)  # noqa: DTZ001 - CSV sources give naive datetimes
PART_NAME = re.compile(r"^part-[0-9a-f]{16}-[0-9]{5}\.parquet$")


def flights(*rows: tuple[int, int, int, str]) -> pl.DataFrame:
    """A frame of (year, month, id, carrier) rows."""
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def part(root: Path, partition: str, dataset: str = "flights") -> Path:
    """The one live file of a partition of a local dataset (as its manifest lists it)."""
    live = DataRoot(str(root)).partition_files(dataset, partition)
    assert live is not None, f"{dataset}/{partition} has no manifest"
    (only,) = live.files
    return Path(only)


@pytest.fixture
def memory_root() -> Iterator[DataRoot]:
    """A data root on fsspec's in-memory filesystem, unique to the test and removed after it."""
    root = DataRoot(f"memory://flowfactory-test-{uuid.uuid4().hex}")
    yield root
    if root.fs.exists(root.root):
        root.fs.rm(root.root, recursive=True)


# ------------------------------------------------------------------------------------------------
# Partition


@pytest.mark.parametrize(
    ("columns", "values", "path"),
    [
        (["year", "month"], [2013, 1], "year=2013/month=1"),
        (["origin"], ["a/b"], "origin=a%2Fb"),
        (["origin"], [None], "origin=__HIVE_DEFAULT_PARTITION__"),
        (["origin", "month"], [None, 12], "origin=__HIVE_DEFAULT_PARTITION__/month=12"),
        (["label"], ["50% off=yes"], "label=50%25%20off%3Dyes"),
        (["cancelled"], [True], "cancelled=true"),
        (["day"], [dt.date(2013, 1, 2)], "day=2013-01-02"),
        (["at"], [NAIVE_HOUR], "at=2013-01-01T05%3A30%3A00"),
        (["at"], [NAIVE_HOUR.replace(tzinfo=dt.UTC)], "at=2013-01-01T05%3A30%3A00%2B00%3A00"),
    ],
)
def test_partition_of_path_parse_round_trip(
    columns: list[str], values: list[object], path: str
) -> None:
    """Partition.of names the hive folder, and parsing that folder gives the same partition."""
    partition = Partition.of(columns, values)
    assert partition.path == path
    assert str(partition) == path
    assert partition.columns == columns
    assert Partition.parse(path) == partition


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("year=2013/month=1", (("year", "2013"), ("month", "1"))),
        ("/year=2013/month=1/", (("year", "2013"), ("month", "1"))),
        ("  year=2013  ", (("year", "2013"),)),
        ("origin=a%2Fb", (("origin", "a/b"),)),
        ("expr=a=b", (("expr", "a=b"),)),
    ],
)
def test_partition_parse(text: str, values: tuple[tuple[str, str], ...]) -> None:
    """Partition text parses into (column, unquoted value) pairs, in order."""
    assert Partition.parse(text).values == values


@pytest.mark.parametrize(
    "text", ["", "/", "year", "year=", "=2013", "year=2013//month=1", "year=2013/month"]
)
def test_partition_parse_rejects_bad_text(text: str) -> None:
    """Text that is not column=value[/column=value...] is a ValueError naming the form."""
    with pytest.raises(ValueError, match="^" + re.escape(BAD_PARTITION.format(text)) + "$"):
        Partition.parse(text)


# ------------------------------------------------------------------------------------------------
# Writing


def test_write_dataset_writes_one_sorted_file_per_partition(tmp_path: Path) -> None:
    """Each partition is a folder year=Y/month=M with its manifest and one file, sorted by key."""
    root = DataRoot(str(tmp_path))
    frame = flights((2013, 2, 5, "AA"), (2013, 1, 3, "UA"), (2013, 1, 1, "DL"), (2013, 2, 4, "B6"))
    written = write_dataset(root, frame, DEST)
    assert [(str(w.partition), w.rows, w.changed) for w in written] == [
        ("year=2013/month=1", 2, True),
        ("year=2013/month=2", 2, True),
    ]
    for month in (1, 2):
        folder = tmp_path / "flights" / "year=2013" / f"month={month}"
        names = sorted(p.name for p in folder.iterdir())
        assert names[0] == MANIFEST_FILE
        assert len(names) == 2
        assert PART_NAME.match(names[1]), names
    assert not list(tmp_path.rglob("*.tmp"))
    assert not (tmp_path / "_flowfactory" / "staging").exists() or not any(
        (tmp_path / "_flowfactory" / "staging").iterdir()
    )
    assert [w.path for w in written] == [
        str(tmp_path / "flights" / "year=2013" / "month=1"),
        str(tmp_path / "flights" / "year=2013" / "month=2"),
    ]
    january = pl.read_parquet(part(tmp_path, "year=2013/month=1"))
    assert january.rows() == [(2013, 1, 1, "DL"), (2013, 1, 3, "UA")]
    february = pl.read_parquet(part(tmp_path, "year=2013/month=2"))
    assert february.rows() == [(2013, 2, 4, "B6"), (2013, 2, 5, "AA")]
    assert written[0].bytes == part(tmp_path, "year=2013/month=1").stat().st_size
    assert written[0].files == (str(part(tmp_path, "year=2013/month=1")),)


def test_unpartitioned_dataset_is_one_folder(tmp_path: Path) -> None:
    """A destination without partition_by writes <root>/<dataset>/ with its manifest."""
    root = DataRoot(str(tmp_path))
    (written,) = write_dataset(
        root, flights((2013, 1, 2, "AA"), (2013, 1, 1, "UA")), Destination(dataset="all_flights")
    )
    assert written.partition is None
    assert written.path == str(tmp_path / "all_flights")
    (only,) = written.files
    # Without a key, rows keep the order the transform gives them.
    assert pl.read_parquet(only)["id"].to_list() == [2, 1]


def test_rewriting_identical_data_leaves_the_files_untouched(tmp_path: Path) -> None:
    """The same rows (in any order) give the same content hash: changed=False, files and
    manifest untouched (same mtime and inode)."""
    root = DataRoot(str(tmp_path))
    rows = [(2013, 1, 1, "DL"), (2013, 1, 2, "UA"), (2013, 1, 3, "AA")]
    (first,) = write_dataset(root, flights(*rows), DEST)
    targets = [Path(first.files[0]), Path(first.path) / MANIFEST_FILE]
    before = [t.stat() for t in targets]
    (again,) = write_dataset(root, flights(*reversed(rows)), DEST)
    after = [t.stat() for t in targets]
    assert first.changed
    assert not again.changed
    assert again.content_hash == first.content_hash
    assert [(a.st_mtime_ns, a.st_ino) for a in after] == [(b.st_mtime_ns, b.st_ino) for b in before]


def test_changed_rows_replace_the_files_of_their_partition(tmp_path: Path) -> None:
    """New content gets new file names; the old files are gone once the manifest switched."""
    root = DataRoot(str(tmp_path))
    (first,) = write_dataset(root, flights((2013, 1, 1, "DL")), DEST)
    (second,) = write_dataset(root, flights((2013, 1, 1, "UA")), DEST)
    assert second.changed
    assert second.content_hash != first.content_hash
    assert second.files != first.files
    assert not Path(first.files[0]).exists()
    assert sorted(p.name for p in Path(second.path).iterdir()) == sorted(
        [MANIFEST_FILE, Path(second.files[0]).name]
    )


def test_a_large_partition_is_written_as_several_files(tmp_path: Path) -> None:
    """Over max_file_size, a partition is several files, read back together, still sorted."""
    root = DataRoot(str(tmp_path))
    destination = Destination(
        dataset="big", partition_by=["year"], key=["id"], max_file_size=64 * 1024
    )
    ids = list(range(400_000, 0, -1))
    frame = pl.DataFrame({"year": [2013] * len(ids), "id": ids, "v": [float(i) for i in ids]})
    (written,) = write_dataset(root, frame, destination)
    assert len(written.files) > 1
    assert written.rows == len(ids)
    back = read_dataset(root, "big").collect()
    assert back["id"].to_list() == sorted(ids)
    manifest = root.read_manifest("big", written.partition)
    assert manifest is not None
    assert sum(f.rows for f in manifest.files) == len(ids)
    (again,) = write_dataset(root, frame.sample(fraction=1.0, shuffle=True, seed=1), destination)
    assert not again.changed


def test_writing_a_partition_leaves_the_others(tmp_path: Path) -> None:
    """Output holding only January replaces January's files and leaves February's alone."""
    root = DataRoot(str(tmp_path))
    write_dataset(root, flights((2013, 1, 1, "DL"), (2013, 2, 2, "UA")), DEST)
    february = part(tmp_path, "year=2013/month=2")
    february_before = (february.read_bytes(), february.stat().st_mtime_ns)
    (written,) = write_dataset(root, flights((2013, 1, 7, "AA"), (2013, 1, 8, "B6")), DEST)
    assert str(written.partition) == "year=2013/month=1"
    assert written.changed
    assert pl.read_parquet(written.files[0])["id"].to_list() == [7, 8]
    assert (february.read_bytes(), february.stat().st_mtime_ns) == february_before


def test_a_folder_written_before_manifests_is_read_and_then_replaced(tmp_path: Path) -> None:
    """A partition folder holding only part-0.parquet reads as that partition; the next write
    replaces it with a manifest and its own files."""
    folder = tmp_path / "flights" / "year=2013" / "month=1"
    folder.mkdir(parents=True)
    flights((2013, 1, 1, "DL")).write_parquet(folder / "part-0.parquet")
    root = DataRoot(str(tmp_path))
    assert read_dataset(root, "flights").collect()["id"].to_list() == [1]
    (written,) = write_dataset(root, flights((2013, 1, 2, "UA")), DEST)
    assert written.changed
    assert not (folder / "part-0.parquet").exists()
    assert read_dataset(root, "flights").collect()["id"].to_list() == [2]


def test_partition_argument_restricts_the_write(tmp_path: Path) -> None:
    """With partition=, only that partition's rows are written, even if the output has more."""
    root = DataRoot(str(tmp_path))
    frame = flights((2013, 1, 1, "DL"), (2013, 2, 2, "UA"), (2013, 1, 3, "AA"))
    written = write_dataset(root, frame, DEST, Partition.parse("year=2013/month=1"))
    assert [(str(w.partition), w.rows) for w in written] == [("year=2013/month=1", 2)]
    assert not (tmp_path / "flights" / "year=2013" / "month=2").exists()
    assert pl.read_parquet(part(tmp_path, "year=2013/month=1"))["id"].to_list() == [1, 3]


def test_partition_argument_must_name_the_partition_columns(tmp_path: Path) -> None:
    """A partition of other columns than destination.partition_by is a WriteError."""
    root = DataRoot(str(tmp_path))
    with pytest.raises(WriteError) as caught:
        write_dataset(root, flights((2013, 1, 1, "DL")), DEST, Partition.parse("month=1"))
    assert str(caught.value) == (
        "dataset 'flights' is partitioned by year/month; partition month=1 names month"
    )
    assert not (tmp_path / "flights").exists()


@pytest.mark.parametrize(
    ("drop", "named"),
    [(["month"], "month"), (["id"], "id"), (["year", "id"], "year, id")],
)
def test_missing_partition_or_key_columns(tmp_path: Path, drop: list[str], named: str) -> None:
    """Output without a partition or key column is a WriteError naming the missing columns."""
    frame = flights((2013, 1, 1, "DL")).drop(drop)
    with pytest.raises(WriteError) as caught:
        write_dataset(DataRoot(str(tmp_path)), frame, DEST)
    assert str(caught.value) == (
        f"dataset 'flights': the output has no column(s) {named} named in "
        f"destination.partition_by/key (it has {', '.join(frame.columns)})"
    )


@pytest.mark.parametrize(
    ("time_zone", "folder"),
    [
        (None, "hour=2013-01-01T05%3A00%3A00"),
        ("UTC", "hour=2013-01-01T05%3A00%3A00%2B00%3A00"),
        ("America/New_York", "hour=2013-01-01T05%3A00%3A00-05%3A00"),
    ],
)
def test_datetime_partition_round_trip(tmp_path: Path, time_zone: str | None, folder: str) -> None:
    """A datetime partition names its folder in ISO form and selects its own rows again."""
    root = DataRoot(str(tmp_path))
    frame = pl.DataFrame(
        {"hour": [NAIVE_HOUR, NAIVE_HOUR, NAIVE_HOUR + dt.timedelta(hours=1)], "n": [1, 2, 3]}
    ).with_columns(pl.col("hour").dt.truncate("1h").dt.replace_time_zone(time_zone))
    destination = Destination(dataset="hourly", partition_by=["hour"], key=["n"])
    first, _ = write_dataset(root, frame, destination)
    assert first.partition is not None
    assert first.partition.path == folder
    # Re-writing just that partition keeps its rows (it once matched none and wrote it empty).
    (again,) = write_dataset(root, frame, destination, Partition.parse(folder))
    assert (again.rows, again.changed) == (2, False)
    assert Path(again.files[0]) == part(tmp_path, folder, "hourly")
    assert read_dataset(root, "hourly", Partition.parse(folder)).collect()["n"].to_list() == [1, 2]


def test_time_partition_round_trip(tmp_path: Path) -> None:
    """A time-of-day partition with microseconds selects its own rows again."""
    root = DataRoot(str(tmp_path))
    at = dt.time(5, 0, 0, 250)
    frame = pl.DataFrame({"at": [at, dt.time(6)], "n": [1, 2]})
    destination = Destination(dataset="timed", partition_by=["at"], key=["n"])
    written = write_dataset(root, frame, destination)
    assert [str(w.partition) for w in written] == ["at=05%3A00%3A00.000250", "at=06%3A00%3A00"]
    (again,) = write_dataset(root, frame, destination, Partition.of(["at"], [at]))
    assert (again.rows, again.changed) == (1, False)


@pytest.mark.parametrize("origin", ["JFK/T4", None, "50% off"])
def test_partition_values_round_trip_through_files(tmp_path: Path, origin: str | None) -> None:
    """Values with `/`, `%` or null get one folder each and read back as their own rows."""
    root = DataRoot(str(tmp_path))
    frame = pl.DataFrame({"origin": [origin, "LGA", origin], "n": [1, 2, 3]})
    destination = Destination(dataset="by_origin", partition_by=["origin"], key=["n"])
    written = write_dataset(root, frame, destination)
    partition = Partition.of(["origin"], [origin])
    assert partition in [w.partition for w in written]
    assert part(tmp_path, partition.path, "by_origin").is_file()
    assert len(list((tmp_path / "by_origin").iterdir())) == 2
    back = read_dataset(root, "by_origin", Partition.parse(partition.path)).collect()
    assert back.rows() == [(origin, 1), (origin, 3)]


# ------------------------------------------------------------------------------------------------
# Reading


@pytest.mark.parametrize(
    ("partition", "ids"),
    [
        (None, [1, 2, 3]),
        ("year=2013/month=2", [3]),
        ("year=2013", [1, 2, 3]),
        ("month=1", [1, 2]),
        ("year=2014/month=1", []),
    ],
)
def test_read_dataset(tmp_path: Path, partition: str | None, ids: list[int]) -> None:
    """A dataset reads back whole, or narrowed to a full or partial partition."""
    root = DataRoot(str(tmp_path))
    write_dataset(root, flights((2013, 1, 1, "DL"), (2013, 1, 2, "UA"), (2013, 2, 3, "AA")), DEST)
    scope = Partition.parse(partition) if partition else None
    frame = read_dataset(root, "flights", scope).collect()
    assert frame.schema == pl.Schema(SCHEMA)
    assert sorted(frame["id"].to_list()) == ids


def test_read_dataset_without_data(tmp_path: Path) -> None:
    """Reading a dataset nothing has written is a PipelineRunError saying where it looked."""
    with pytest.raises(PipelineRunError) as caught:
        read_dataset(DataRoot(str(tmp_path)), "nope")
    assert str(caught.value) == (
        f"dataset 'nope' has no data under {tmp_path}/nope yet "
        "(has the pipeline that produces it run?)"
    )


def write_landing(base: Path) -> None:
    """Two monthly CSV files (NA for missing) and an unrelated file under landing/flights."""
    folder = base / "landing" / "flights"
    folder.mkdir(parents=True)
    (folder / "2013-01.csv").write_text("year,month,id,dep_delay\n2013,1,1,4\n2013,1,2,NA\n")
    (folder / "2013-02.csv").write_text("year,month,id,dep_delay\n2013,2,3,-2\n")
    (folder / "notes.txt").write_text("not a csv\n")


@pytest.mark.parametrize(
    ("path", "partition", "rows"),
    [
        ("landing/flights/*.csv", None, [(2013, 1, 1, 4), (2013, 1, 2, None), (2013, 2, 3, -2)]),
        ("landing/flights/2013-0[2-9].csv", None, [(2013, 2, 3, -2)]),
        ("landing/flights/2013-01.csv", None, [(2013, 1, 1, 4), (2013, 1, 2, None)]),
        ("landing/flights/*.csv", "year=2013/month=2", [(2013, 2, 3, -2)]),
        ("landing/flights/*.csv", "month=1/carrier=AA", [(2013, 1, 1, 4), (2013, 1, 2, None)]),
    ],
)
def test_read_csv_files(
    tmp_path: Path, path: str, partition: str | None, rows: list[tuple[int, ...]]
) -> None:
    """A CSV source reads every matching file with its null values, narrowed to a partition."""
    write_landing(tmp_path)
    source = FileSource(path=path, csv=CsvOptions(null_values=["NA"]))
    scope = Partition.parse(partition) if partition else None
    frame = read_files(DataRoot(str(tmp_path)), source, scope).collect()
    assert frame.columns == ["year", "month", "id", "dep_delay"]
    assert frame.sort("id").rows() == rows


@pytest.mark.parametrize("path", ["landing/none/*.csv", "landing/flights/2014-01.csv"])
def test_read_files_without_matches(tmp_path: Path, path: str) -> None:
    """A pattern matching no file is a PipelineRunError naming the pattern and the data root."""
    write_landing(tmp_path)
    with pytest.raises(PipelineRunError) as caught:
        read_files(DataRoot(str(tmp_path)), FileSource(path=path))
    assert str(caught.value) == f"no files match {path} under {tmp_path}"


def test_memory_root_write_and_read(memory_root: DataRoot) -> None:
    """An fsspec memory:// data root writes, skips unchanged writes, and reads back."""
    frame = flights((2013, 2, 3, "AA"), (2013, 1, 2, "UA"), (2013, 1, 1, "DL"))
    written = write_dataset(memory_root, frame, DEST)
    assert [(str(w.partition), w.changed) for w in written] == [
        ("year=2013/month=1", True),
        ("year=2013/month=2", True),
    ]
    files = memory_root.dataset_files("flights")
    assert [f.rsplit("/", 1)[0] for f in files] == [
        f"{memory_root.root}/flights/year=2013/month=1",
        f"{memory_root.root}/flights/year=2013/month=2",
    ]
    assert all(PART_NAME.match(f.rsplit("/", 1)[1]) for f in files)
    assert not any(w.changed for w in write_dataset(memory_root, frame, DEST))
    assert_frame_equal(read_dataset(memory_root, "flights").collect(), frame.sort("id"))
    january = read_dataset(memory_root, "flights", Partition.parse("year=2013/month=1"))
    assert january.collect()["id"].to_list() == [1, 2]


def test_memory_root_reads_csv(memory_root: DataRoot) -> None:
    """File sources under a memory:// data root, and memory:// URLs, read like local ones."""
    base = memory_root.root
    memory_root.fs.pipe_file(f"{base}/landing/a.csv", b"id;v\n1;x\n2;-\n")
    memory_root.fs.pipe_file(f"{base}/landing/b.csv", b"id;v\n3;y\n")
    options = CsvOptions(separator=";", null_values=["-"])
    relative = read_files(memory_root, FileSource(path="landing/*.csv", csv=options))
    assert relative.collect().rows() == [(1, "x"), (2, None), (3, "y")]
    url = FileSource(path=f"memory://{base}/landing/b.csv", csv=options)
    assert read_files(memory_root, url).collect().rows() == [(3, "y")]
    with pytest.raises(PipelineRunError) as caught:
        read_files(memory_root, FileSource(path="landing/*.parquet"))
    assert str(caught.value) == f"no files match landing/*.parquet under {memory_root.url}"


@pytest.mark.parametrize(
    "ids",
    [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [3, None, 1, 2, None, 6]],
    ids=["in-key-order", "reversed", "with-nulls"],
)
def test_every_partition_ends_sorted_by_key(tmp_path: Path, ids: list[int | None]) -> None:
    """Whatever order rows stream in, each partition's file is in key order, nulls last."""
    root = DataRoot(str(tmp_path))
    frame = pl.DataFrame(
        {"year": [2013] * 6, "month": [1, 2, 1, 2, 1, 2], "id": ids, "carrier": ["x"] * 6}
    )
    for part in write_dataset(root, frame, DEST):
        (only,) = part.files
        got = pl.read_parquet(only)["id"].to_list()
        assert got == sorted(got, key=lambda v: (v is None, v or 0))


def test_the_content_hash_knows_which_values_share_a_row(tmp_path: Path) -> None:
    """Two outputs with the same values per column but paired differently are different."""
    root = DataRoot(str(tmp_path))
    destination = Destination(dataset="pairs")
    (first,) = write_dataset(root, pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}), destination)
    (second,) = write_dataset(root, pl.DataFrame({"a": [1, 2], "b": ["y", "x"]}), destination)
    assert second.changed
    assert second.content_hash != first.content_hash
