"""A data root on S3 (moto's server on loopback): reads, atomic writes, readiness, the canary's
folders and a pipeline run, all against the bucket."""

from __future__ import annotations

import io
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from prefect import flow
from prefect.states import State
from tests.helpers import load_pipelines
from tests.integration.conftest import project_settings
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

from flowfactory.canary import (
    Verdict,
    canary_area,
    compare_outputs,
    judge,
    live_version,
    next_step,
    prepare_sample,
    prune_runs,
    run_version,
    set_live_version,
)
from flowfactory.canary.decision import NextStep
from flowfactory.config import Destination, FileSource, find_pipeline
from flowfactory.data import (
    MANIFEST_FILE,
    DataRoot,
    Partition,
    read_dataset,
    read_files,
    write_dataset,
)
from flowfactory.orchestration import run_pipeline
from flowfactory.scheduling import (
    input_versions,
    readiness,
    reconcile,
)
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

DEST = Destination(dataset="flights", partition_by=["year", "month"], key=["id"])
FLIGHTS = pl.DataFrame(
    {
        "year": [2013] * 4,
        "month": [1, 1, 2, 2],
        "id": [1, 2, 3, 4],
        "carrier": ["AA", "UA", "DL", "B6"],
        "dep_delay": [3.0, -1.0, 12.5, 0.0],
    }
)


@pytest.fixture
def root(s3: S3Server) -> DataRoot:
    """A data root under a prefix of its own in the bucket."""
    return DataRoot(f"s3://{s3.bucket}/{uuid.uuid4().hex[:12]}")


def prefix_of(root: DataRoot) -> str:
    """The root's key prefix in its bucket."""
    return root.root.split("/", 1)[1]


def objects(s3: S3Server, root: DataRoot) -> dict[str, tuple[str, str]]:
    """Every object under the root: key relative to it -> (ETag, version id)."""
    client: Any = s3.client()
    prefix = prefix_of(root) + "/"
    found: dict[str, tuple[str, str]] = {}
    for page in client.get_paginator("list_object_versions").paginate(
        Bucket=s3.bucket, Prefix=prefix
    ):
        for version in page.get("Versions", []):
            if version["IsLatest"]:
                found[version["Key"][len(prefix) :]] = (version["ETag"], version["VersionId"])
    return found


def put(s3: S3Server, root: DataRoot, relative: str, body: bytes) -> None:
    """Land an object under the root, as a system outside flowfactory would."""
    client: Any = s3.client()
    client.put_object(Bucket=s3.bucket, Key=f"{prefix_of(root)}/{relative}", Body=body)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as the bytes of a Parquet file."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


@pytest.fixture
def versioned(s3: S3Server) -> DataRoot:
    """A data root in a versioned bucket of its own: every PUT makes a new version id."""
    bucket = f"versioned-{uuid.uuid4().hex[:8]}"
    client: Any = s3.client()
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return DataRoot(f"s3://{bucket}/root")


def bucket_objects(s3: S3Server, root: DataRoot) -> dict[str, tuple[str, str]]:
    """``objects`` for a root in its own bucket."""
    return objects(S3Server(s3.endpoint, root.root.split("/", 1)[0]), root)


# ------------------------------------------------------------------------------------------------
# Reads


def test_a_dataset_partition_scan_reads_its_own_files_with_the_projection(root: DataRoot) -> None:
    write_dataset(root, FLIGHTS, DEST)
    february = Partition.parse("year=2013/month=2")
    frame = read_dataset(root, "flights", february)
    plan = frame.select("id", "carrier").explain()
    (january_file,) = root.partition_files("flights", "year=2013/month=1").files  # type: ignore[union-attr]
    (february_file,) = root.partition_files("flights", february).files  # type: ignore[union-attr]
    assert f"s3://{february_file}" in plan
    assert january_file.rsplit("/", 1)[-1] not in plan
    # The two asked for and the two the partition filter needs; dep_delay is never fetched.
    assert "PROJECT 4/5 COLUMNS" in plan
    assert "SELECTION:" in plan
    assert frame.select("id", "carrier").collect().rows() == [(3, "DL"), (4, "B6")]
    assert read_dataset(root, "flights").collect()["id"].sort().to_list() == [1, 2, 3, 4]


def test_csv_and_parquet_file_sources_on_s3(s3: S3Server, root: DataRoot) -> None:
    put(
        s3,
        root,
        "landing/flights/2013-01.csv",
        b"year,month,id,carrier\n2013,1,1,AA\n2013,1,2,UA\n",
    )
    put(s3, root, "landing/flights/2013-02.csv", b"year,month,id,carrier\n2013,2,3,DL\n")
    put(s3, root, "reference/carriers.parquet", parquet_bytes(pl.DataFrame({
        "carrier": ["AA", "UA", "DL"], "name": ["American", "United", "Delta"], "n": [1, 2, 3]
    })))  # fmt: skip
    landing = FileSource(path="landing/flights/*.csv")
    scoped = read_files(root, landing, Partition.parse("year=2013/month=1"))
    assert scoped.select("id").collect()["id"].to_list() == [1, 2]
    # A URL source names the bucket itself; the projection reaches polars' own S3 scan.
    url = FileSource(path=f"s3://{root.root}/reference/*.parquet")
    frame = read_files(root, url).select("name")
    plan = frame.explain()
    assert "Parquet SCAN" in plan
    assert "PROJECT 1/3 COLUMNS" in plan
    assert frame.collect()["name"].to_list() == ["American", "United", "Delta"]


def test_a_file_landed_or_replaced_later_is_seen(s3: S3Server, root: DataRoot) -> None:
    """Listings and file versions are the bucket's now, not what this process saw before."""
    landing = FileSource(path="landing/*.csv")
    put(s3, root, "landing/a.csv", b"x\n1\n")
    fs, first = root.source_files(landing)
    version = root.file_version(first[0], fs)
    put(s3, root, "landing/b.csv", b"x\n2\n")
    put(s3, root, "landing/a.csv", b"x\n3\n4\n")
    fs, now = root.source_files(landing)
    assert [p.rsplit("/", 1)[-1] for p in now] == ["a.csv", "b.csv"]
    assert root.file_version(now[0], fs) != version
    assert sorted(read_files(root, landing).collect()["x"].to_list()) == [2, 3, 4]


def test_the_fsspec_fallback_reads_what_polars_cannot_reach(s3: S3Server, root: DataRoot) -> None:
    """A chained fsspec URL (a local cache in front of S3) is read through fsspec's files."""
    put(s3, root, "landing/a.csv", b"x,y\n1,a\n2,b\n")
    source = FileSource(path=f"simplecache::s3://{root.root}/landing/*.csv")
    fs, files = root.source_files(source)
    assert "simplecache" in fs.protocol
    assert len(files) == 1
    assert read_files(root, source).collect().rows() == [(1, "a"), (2, "b")]


def test_polars_gets_the_store_settings_fsspec_was_given(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no AWS variables set, polars reaches the store through the settings of the root's
    fsspec filesystem (here fsspec's own configuration): endpoint, keys, plain HTTP, region."""
    for name in s3.env:
        monkeypatch.delenv(name)
    monkeypatch.setitem(fsspec.config.conf, "s3", {
        "endpoint_url": s3.endpoint,
        "key": ACCESS_KEY,
        "secret": SECRET_KEY,
        "client_kwargs": {"region_name": REGION},
    })  # fmt: skip
    root = DataRoot(f"s3://{s3.bucket}/{uuid.uuid4().hex[:12]}")
    assert root.storage_options == {
        "aws_endpoint_url": s3.endpoint,
        "aws_allow_http": "true",
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": REGION,
    }
    put(s3, root, "landing/a.csv", b"id,v\n1,x\n2,y\n")
    landed = read_files(root, FileSource(path="landing/*.csv"))
    write_dataset(root, landed, Destination(dataset="copied", key=["id"]))
    assert read_dataset(root, "copied").collect().rows() == [(1, "x"), (2, "y")]


# ------------------------------------------------------------------------------------------------
# Atomic writes


def test_a_commit_replaces_the_partition_files(s3: S3Server, root: DataRoot) -> None:
    write_dataset(root, FLIGHTS, DEST)
    before = objects(s3, root)
    january = "flights/year=2013/month=1"
    old_files = {k for k in before if k.startswith(january) and k.endswith(".parquet")}
    changed = FLIGHTS.with_columns(carrier=pl.lit("ZZ"))
    written = {str(w.partition): w for w in write_dataset(root, changed, DEST)}
    assert all(w.changed for w in written.values())
    after = objects(s3, root)
    new_files = {k for k in after if k.startswith(january) and k.endswith(".parquet")}
    assert new_files
    assert not old_files & new_files  # the old files are gone, the new ones have new names
    assert after[f"{january}/{MANIFEST_FILE}"] != before[f"{january}/{MANIFEST_FILE}"]
    assert read_dataset(root, "flights").collect()["carrier"].unique().to_list() == ["ZZ"]


def test_a_rerun_with_the_same_rows_puts_nothing(s3: S3Server, versioned: DataRoot) -> None:
    first = write_dataset(versioned, FLIGHTS, DEST)
    before = bucket_objects(s3, versioned)
    assert len([k for k in before if k.endswith(".parquet")]) == 2
    again = write_dataset(versioned, FLIGHTS.sample(fraction=1.0, shuffle=True, seed=7), DEST)
    assert [w.changed for w in again] == [False, False]
    assert [w.files for w in again] == [w.files for w in first]
    # Same ETags and the same version ids: not one object was PUT again.
    assert bucket_objects(s3, versioned) == before


def test_a_failing_plan_leaves_the_live_partition_and_the_bucket_as_they_were(
    s3: S3Server, root: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(root, FLIGHTS, DEST)
    before = objects(s3, root)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where remote writes stage
    # The cast fails only while the plan streams, once the first rows reach it.
    failing = FLIGHTS.lazy().with_columns(carrier=pl.col("carrier").cast(pl.Int64, strict=True))
    with pytest.raises(pl.exceptions.InvalidOperationError):
        write_dataset(root, failing, DEST)
    assert objects(s3, root) == before
    assert list(tmp_path.iterdir()) == []  # the local staging folder is gone too
    assert_frame_equal(read_dataset(root, "flights").collect().sort("id"), FLIGHTS)


def test_a_large_partition_is_several_files_read_back_together(
    s3: S3Server, root: DataRoot
) -> None:
    ids = pl.int_range(200_000, dtype=pl.Int64, eager=True)
    big = pl.DataFrame({"id": ids, "x": ids.hash(1), "y": ids.hash(2)})
    destination = Destination(dataset="big", key=["id"], max_file_size=512 * 1024)
    (written,) = write_dataset(root, big, destination)
    assert len(written.files) >= 2
    listed = {k for k in objects(s3, root) if k.endswith(".parquet")}
    assert listed == {f.split("/", 2)[2] for f in written.files}
    back = read_dataset(root, "big").collect()
    assert back.height == 200_000
    assert_frame_equal(back.sort("id"), big)
    manifest = root.read_manifest("big", None)
    assert manifest is not None
    assert sum(f.rows for f in manifest.files) == 200_000


# ------------------------------------------------------------------------------------------------
# Readiness, reconcile and the root's small records


CONSUMERS = {
    "flight_delays": """
        name: flight_delays
        sources:
          flights: {dataset: flights, external: true}
          weather: {dataset: weather, external: true}
        transform:
          sql: SELECT * FROM flights JOIN weather USING (year, month)
        destination: {dataset: flight_delays, partition_by: [year, month]}
        trigger: {on: [flights, weather]}
    """,
    "landing_count": """
        name: landing_count
        source: {path: landing/*.csv, external_dataset: landing}
        destination: {dataset: landing_count}
        trigger: {on: [landing], require: any, partition: all}
    """,
}


def test_readiness_and_reconcile_on_s3(s3: S3Server, root: DataRoot, tmp_path: Path) -> None:
    project = load_pipelines(tmp_path, **CONSUMERS)
    delays = next(p for p in project.pipelines if p.name == "flight_delays")
    january = Partition.parse("year=2013/month=1")
    write_dataset(root, FLIGHTS, DEST)
    assert readiness(delays, root, january).missing == ("weather",)
    assert not any(s.pipeline == "flight_delays" for s in reconcile(project, root))

    weather = pl.DataFrame({"year": [2013, 2013], "month": [1, 2], "wind": [3.0, 4.0]})
    write_dataset(root, weather, Destination(dataset="weather", partition_by=["year", "month"]))
    ready = readiness(delays, root, january)
    assert ready.ready
    versions = input_versions(delays, root, january)
    assert versions["weather"] == root.read_manifest("weather", january).content_hash  # type: ignore[union-attr]
    pending = {(s.pipeline, s.partition) for s in reconcile(project, root)}
    assert pending == {
        ("flight_delays", "year=2013/month=1"),
        ("flight_delays", "year=2013/month=2"),
    }

    # A correction of one input is a new state of January (a new run key; which states were
    # consumed is the Prefect server's to say, not the bucket's).
    write_dataset(root, FLIGHTS.with_columns(dep_delay=pl.lit(1.0)), DEST)
    assert readiness(delays, root, january).state != ready.state
    pending = {(s.pipeline, s.partition) for s in reconcile(project, root)}
    assert ("flight_delays", "year=2013/month=1") in pending

    # Landed files: their version is their ETag, which moves when a file is replaced.
    landing = next(p for p in project.pipelines if p.name == "landing_count")
    put(s3, root, "landing/a.csv", b"x\n1\n")
    first = readiness(landing, root, None, updated="landing")
    put(s3, root, "landing/a.csv", b"x\n2\n")
    second = readiness(landing, root, None, updated="landing")
    assert first.ready
    assert second.ready
    assert first.state != second.state

    root.remove("_flowfactory/x")
    assert root.get("_flowfactory/x") is None
    root.put_atomic("_flowfactory/y.json", b"{}")
    root.put_atomic("_flowfactory/y.json", b'{"a": 1}')
    assert root.get("_flowfactory/y.json") == b'{"a": 1}'


# ------------------------------------------------------------------------------------------------
# The canary's folders

CANARY_PIPELINE = """\
name: fares
description: Ticket prices with tax; the candidate computes the tax another way.
sources:
  fares: {path: landing/fares.csv}
transform: {sql: "SELECT ticket, route, price * 1.1 AS with_tax FROM fares"}
destination: {dataset: fares, key: [ticket]}
canary:
  candidate: {sql: "SELECT ticket, route, price + price / 10 AS with_tax FROM fares"}
  sample: {key: [ticket], fraction: 0.5}
  tolerance: {columns: {with_tax: {abs: 1.0e-9}}}
"""


def test_the_canary_compares_and_promotes_on_s3(
    s3: S3Server, root: DataRoot, tmp_path: Path
) -> None:
    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments/fares.yaml").write_text(CANARY_PIPELINE)
    rows = "".join(f"{i},R{i % 7},{i * 0.37}\n" for i in range(200))
    put(s3, root, "landing/fares.csv", f"ticket,route,price\n{rows}".encode())
    settings = Settings(project_dir=tmp_path, data_root=root.url)
    pipeline = find_pipeline("fares", settings)

    runs = [f"2026010{day}T000000Z-{day}" for day in (1, 2)]
    for run in runs:
        area = canary_area("fares", "runs", run)
        sampled = prepare_sample(pipeline, root, None, area)
        assert 50 < sampled["fares"] < 150
        for version in ("v1", "v2"):
            assert run_version(pipeline, version, root, area, settings) == sampled["fares"]
        report = compare_outputs(pipeline, root, area)
        comparison = judge(sampled_rows=sampled, report=report)
        assert comparison.verdict is Verdict.passed
    assert pipeline.config.canary is not None
    assert next_step(comparison, pipeline.config.canary) is NextStep.promote

    keys = objects(s3, root)
    for run in runs:
        for part in ("input/fares.parquet", "v1/output.parquet", "v2/output.parquet"):
            assert f"_canary/fares/runs/{run}/{part}" in keys

    assert live_version(pipeline, root).version == "v1"
    set_live_version(pipeline, root, "v2", by="test")
    assert live_version(pipeline, root).version == "v2"
    assert "_canary/fares/live.json" in objects(s3, root)

    assert [p.rsplit("/", 1)[-1] for p in prune_runs("fares", root, keep=1)] == [runs[0]]
    left = {k.split("/")[3] for k in objects(s3, root) if k.startswith("_canary/fares/runs/")}
    assert left == {runs[1]}


# ------------------------------------------------------------------------------------------------
# A pipeline run end to end

RUN_PIPELINE = """\
name: delays_by_carrier
sources:
  flights: {path: landing/flights/*.csv}
  carriers: {path: "s3://ROOT/reference/carriers.parquet"}
transform:
  sql: |
    SELECT f.year, f.month, f.carrier, c.name, count(*) AS flights, avg(f.dep_delay) AS delay
    FROM flights f JOIN carriers c USING (carrier)
    GROUP BY ALL
destination: {dataset: delays_by_carrier, partition_by: [year, month], key: [carrier]}
"""


@flow(name="object-store-pipeline")
def pipeline_flow(name: str, project_dir: str, api_url: str, data_root: str) -> Any:
    """Run one pipeline in this process, on the given data root."""
    settings = Settings(
        project_dir=Path(project_dir),
        prefect_api_url=api_url,
        project_name=Path(project_dir).name,
        data_root=data_root,
    )
    return run_pipeline(name, settings=settings)


def test_a_pipeline_run_from_s3_sources_to_an_s3_dataset(
    stack: LocalStack, s3: S3Server, root: DataRoot, tmp_path: Path
) -> None:
    project = tmp_path / "objectstore"
    (project / "deployments").mkdir(parents=True)
    (project / "deployments/delays.yaml").write_text(RUN_PIPELINE.replace("ROOT", root.root))
    settings = project_settings(project, stack)
    put(s3, root, "landing/flights/2013-01.csv", (
        b"year,month,carrier,dep_delay\n2013,1,AA,10\n2013,1,AA,20\n2013,1,UA,5\n"
    ))  # fmt: skip
    put(s3, root, "landing/flights/2013-02.csv", b"year,month,carrier,dep_delay\n2013,2,UA,7\n")
    put(s3, root, "reference/carriers.parquet", parquet_bytes(pl.DataFrame({
        "carrier": ["AA", "UA"], "name": ["American", "United"]
    })))  # fmt: skip

    state: State[Any] = pipeline_flow(
        "delays_by_carrier", str(project), settings.prefect_api_url, root.url, return_state=True
    )
    assert state.is_completed(), state.message
    out = read_dataset(root, "delays_by_carrier").collect().sort("month", "carrier")
    assert out.select("month", "carrier", "name", "flights", "delay").rows() == [
        (1, "AA", "American", 2, 15.0),
        (1, "UA", "United", 1, 5.0),
        (2, "UA", "United", 1, 7.0),
    ]
    keys = objects(s3, root)
    for month in (1, 2):
        assert f"delays_by_carrier/year=2013/month={month}/{MANIFEST_FILE}" in keys
    # The write is recorded beside the data, in the bucket.
    assert any(re.match(r"_flowfactory/written/delays_by_carrier/", k) for k in keys)
