"""Crash safety of dataset writes: a writer killed mid-write leaves the previous partition whole."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from flowfactory.config import Destination
from flowfactory.data import MANIFEST_FILE, STAGING_DIR, DataRoot, read_dataset, write_dataset
from flowfactory.data.files import _STALE_TMP_SECONDS

DEST = Destination(dataset="flights", partition_by=["year", "month"], key=["id"])
SCHEMA = {"year": pl.Int64, "month": pl.Int64, "id": pl.Int64, "carrier": pl.String}
STAGING_NAME = re.compile(r"^[0-9a-f]{32}$")

# Overwrites year=2013/month=1 of dataset `flights` under argv[1] with argv[2] rows of
# incompressible data (tens of MB), so that its temporary file lives long enough to be seen.
BIG_WRITER = textwrap.dedent(
    """
    import sys

    import polars as pl

    from flowfactory.config import Destination
    from flowfactory.data import DataRoot, write_dataset

    ids = pl.int_range(int(sys.argv[2]), dtype=pl.Int64)
    frame = pl.select(
        year=pl.lit(2013, pl.Int64),
        month=pl.lit(1, pl.Int64),
        id=ids,
        carrier=pl.lit("ZZ"),
        x=ids.hash(1),
        y=ids.hash(2),
        z=ids.hash(3),
    )
    destination = Destination(dataset="flights", partition_by=["year", "month"], key=["id"])
    write_dataset(DataRoot(sys.argv[1]), frame, destination)
    """
)


def flights(*rows: tuple[int, int, int, str]) -> pl.DataFrame:
    """A frame of (year, month, id, carrier) rows."""
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def test_kill_mid_write_keeps_the_previous_partition(tmp_path: Path) -> None:
    """SIGKILL while the output streams into staging leaves the live partition whole (files
    and manifest); the killed writer's staging folder is removed once it is stale."""
    root = DataRoot(str(tmp_path))
    old = flights((2013, 1, 1, "DL"), (2013, 1, 2, "UA"))
    (first,) = write_dataset(root, old, DEST)
    folder = Path(first.path)
    live_before = {p.name: p.read_bytes() for p in folder.iterdir()}
    staging = tmp_path / STAGING_DIR

    writer = subprocess.Popen(
        [sys.executable, "-c", BIG_WRITER, str(tmp_path), "6000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    leftover = None
    deadline = time.monotonic() + 60
    try:
        while leftover is None and writer.poll() is None and time.monotonic() < deadline:
            leftover = next(staging.glob("*/**/*.parquet"), None) if staging.exists() else None
    finally:
        writer.send_signal(signal.SIGKILL)
        _, stderr = writer.communicate(timeout=30)
    assert leftover is not None, f"no staged file seen: {stderr.decode()}"
    assert writer.returncode == -signal.SIGKILL
    (killed,) = staging.iterdir()
    assert STAGING_NAME.match(killed.name)

    # The live partition is whole: same files, same manifest, same rows.
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == live_before
    assert_frame_equal(read_dataset(root, "flights").collect(), old)

    # A normal write succeeds and leaves a recent staging folder (it may be a live writer's) ...
    (second,) = write_dataset(root, flights((2013, 1, 5, "AA")), DEST)
    assert second.changed
    assert read_dataset(root, "flights").collect()["id"].to_list() == [5]
    assert killed.exists()

    # ... and removes it once it is older than the threshold.
    aged = time.time() - _STALE_TMP_SECONDS - 60
    os.utime(killed, (aged, aged))
    (third,) = write_dataset(root, flights((2013, 1, 6, "B6")), DEST)
    assert third.changed
    assert not killed.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST_FILE, *(Path(f).name for f in third.files)]
    )
    assert read_dataset(root, "flights").collect()["id"].to_list() == [6]
