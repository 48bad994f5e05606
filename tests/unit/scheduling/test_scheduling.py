"""Unit tests for data-aware scheduling: readiness, input states, ready consumers, reconcile."""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pytest
from tests.helpers import load_pipelines as load

from flowfactory.config import Destination, PipelineFile, Project
from flowfactory.data import DataRoot, Partition, read_dataset, write_dataset
from flowfactory.scheduling import (
    KeyedRun,
    Readiness,
    RunPhase,
    consumers_of,
    evaluate_update,
    readiness,
    reconcile,
    run_key,
    runs_to_start,
)

JAN = "year=2013/month=1"
FEB = "year=2013/month=2"
SCHEMA = {"year": pl.Int64, "month": pl.Int64, "id": pl.Int64}


# Each test runs in its own project folder, without FLOWFACTORY_* from the shell.
pytestmark = pytest.mark.usefixtures("project_dir")


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    """The project's data root, tmp_path/data."""
    return DataRoot(str(tmp_path / "data"))


def consumer(
    on: list[str],
    *,
    require: str = "all",
    partition: str = "same",
    reads: tuple[str, ...] = ("flights", "weather"),
) -> str:
    """A pipeline reading the external datasets ``reads`` and triggered on ``on``."""
    sources = "".join(f"  {d}:\n    dataset: {d}\n    external: true\n" for d in reads)
    return (
        f"sources:\n{sources}transform:\n  python: transforms.x:{reads[0]}\n"
        "destination:\n  dataset: out_${NAME}\n"
        f"trigger:\n  on: [{', '.join(on)}]\n  require: {require}\n  partition: {partition}\n"
    )


def project_of(tmp_path: Path, **pipelines: str) -> Project:
    """Load pipelines given as name=text, each writing dataset out_<name>."""
    return load(tmp_path, **{n: t.replace("${NAME}", n) for n, t in pipelines.items()})


def write(root: DataRoot, dataset: str, *rows: tuple[int, int, int]) -> bool:
    """Write (year, month, id) rows as ``dataset`` partitioned by year/month; True if changed."""
    frame = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    destination = Destination(dataset=dataset, partition_by=["year", "month"], key=["id"])
    return any(w.changed for w in write_dataset(root, frame, destination))


def ready(pipeline: PipelineFile, root: DataRoot, partition: str, updated: str) -> Readiness:
    """Readiness of ``pipeline`` for a partition given as text ("" for all the data)."""
    return readiness(pipeline, root, Partition.parse(partition) if partition else None, updated)


# --------------------------------------------------------------------------------------------
# require: all, partition: same


@pytest.mark.parametrize(("first", "second"), [("flights", "weather"), ("weather", "flights")])
def test_all_inputs_ready_in_either_order(
    tmp_path: Path, root: DataRoot, first: str, second: str
) -> None:
    """Not ready, naming the absent input, until both inputs have the partition."""
    join = project_of(tmp_path, join=consumer(["flights", "weather"])).get("join")
    before = ready(join, root, JAN, first)
    assert (before.ready, before.missing, before.versions) == (False, ("flights", "weather"), {})
    write(root, first, (2013, 1, 1))
    half = ready(join, root, JAN, first)
    assert (half.ready, half.missing, list(half.versions)) == (False, (second,), [first])
    write(root, second, (2013, 1, 2))
    both = ready(join, root, JAN, second)
    assert (both.ready, both.missing) == (True, ())
    assert (both.pipeline, both.partition) == ("join", JAN)
    assert sorted(both.versions) == ["flights", "weather"]


def test_ready_state_is_stable(tmp_path: Path, root: DataRoot) -> None:
    """Recomputing readiness gives the same state and event id, whichever input moved."""
    join = project_of(tmp_path, join=consumer(["flights", "weather"])).get("join")
    write(root, "flights", (2013, 1, 1))
    write(root, "weather", (2013, 1, 2))
    one, two = ready(join, root, JAN, "flights"), ready(join, root, JAN, "weather")
    assert one == two
    assert (one.state, one.event_id) == (two.state, two.event_id)
    assert len(one.state) == 24
    assert uuid.UUID(one.event_id).version == 5


def test_state_changes_with_the_content_of_an_input(tmp_path: Path, root: DataRoot) -> None:
    """New bytes in an input partition give a new state and a new event id."""
    join = project_of(tmp_path, join=consumer(["flights", "weather"])).get("join")
    write(root, "flights", (2013, 1, 1))
    write(root, "weather", (2013, 1, 2))
    before = ready(join, root, JAN, "flights")
    assert write(root, "flights", (2013, 1, 1), (2013, 1, 3))
    after = ready(join, root, JAN, "flights")
    assert after.ready
    assert after.state != before.state
    assert after.event_id != before.event_id
    assert after.versions["weather"] == before.versions["weather"]
    assert after.versions["flights"] != before.versions["flights"]


def test_identical_rewrite_keeps_the_state(tmp_path: Path, root: DataRoot) -> None:
    """An input rewritten with the same rows leaves its file, and so the state, unchanged."""
    join = project_of(tmp_path, join=consumer(["flights", "weather"])).get("join")
    write(root, "flights", (2013, 1, 1), (2013, 1, 2))
    write(root, "weather", (2013, 1, 2))
    before = ready(join, root, JAN, "flights")
    assert not write(root, "flights", (2013, 1, 2), (2013, 1, 1))
    assert ready(join, root, JAN, "flights") == before


def test_other_partitions_do_not_affect_the_state(tmp_path: Path, root: DataRoot) -> None:
    """Writing February leaves January's state alone; February waits for its own inputs."""
    join = project_of(tmp_path, join=consumer(["flights", "weather"])).get("join")
    write(root, "flights", (2013, 1, 1))
    write(root, "weather", (2013, 1, 2))
    january = ready(join, root, JAN, "flights")
    write(root, "flights", (2013, 1, 1), (2013, 2, 5))
    assert ready(join, root, JAN, "flights") == january
    february = ready(join, root, FEB, "flights")
    assert (february.ready, february.missing) == (False, ("weather",))
    write(root, "weather", (2013, 2, 6))
    assert ready(join, root, FEB, "weather").ready
    assert ready(join, root, FEB, "weather").state != january.state
    assert ready(join, root, JAN, "weather") == january


def test_readiness_without_trigger_is_an_error(tmp_path: Path, root: DataRoot) -> None:
    """Only triggered pipelines have a readiness."""
    text = "source:\n  dataset: flights\n  external: true\ndestination:\n  dataset: copy\n"
    pipeline = load(tmp_path, copy=text).get("copy")
    with pytest.raises(ValueError, match=r"^pipeline 'copy' has no trigger$"):
        readiness(pipeline, root, None)


# --------------------------------------------------------------------------------------------
# require: any, partition: all


@pytest.mark.parametrize(
    ("updated", "is_ready", "missing"),
    [("flights", True, ()), ("weather", False, ("weather",))],
)
def test_require_any_needs_the_updated_input(
    tmp_path: Path,
    root: DataRoot,
    updated: str,
    is_ready: bool,
    missing: tuple[str, ...],
) -> None:
    """With `require: any`, the input that moved must have the partition; the others may not."""
    either = project_of(tmp_path, either=consumer(["flights", "weather"], require="any"))
    write(root, "flights", (2013, 1, 1))
    state = ready(either.get("either"), root, JAN, updated)
    assert (state.ready, state.missing, list(state.versions)) == (is_ready, missing, ["flights"])


def test_require_any_state_covers_every_present_input(tmp_path: Path, root: DataRoot) -> None:
    """An `any` consumer's state moves with every input that has the partition."""
    either = project_of(tmp_path, either=consumer(["flights", "weather"], require="any"))
    pipeline = either.get("either")
    write(root, "flights", (2013, 1, 1))
    alone = ready(pipeline, root, JAN, "flights")
    write(root, "weather", (2013, 1, 2))
    both = ready(pipeline, root, JAN, "weather")
    assert both.ready
    assert sorted(both.versions) == ["flights", "weather"]
    assert both.state != alone.state


def test_partition_all_is_one_state_over_all_files(tmp_path: Path, root: DataRoot) -> None:
    """With `partition: all`, the partition is "" and any partition of an input moves the state."""
    whole = project_of(tmp_path, whole=consumer(["flights", "weather"], partition="all"))
    pipeline = whole.get("whole")
    write(root, "flights", (2013, 1, 1))
    write(root, "weather", (2013, 2, 2))
    january = ready(pipeline, root, JAN, "flights")
    assert (january.ready, january.partition) == (True, "")
    assert ready(pipeline, root, FEB, "weather") == january == ready(pipeline, root, "", "flights")
    write(root, "flights", (2013, 1, 1), (2013, 3, 3))
    assert ready(pipeline, root, JAN, "flights").state != january.state


# --------------------------------------------------------------------------------------------
# File sources named with external_dataset

LANDING = """
source:
  path: landing/*.csv
  external_dataset: landing
destination:
  dataset: ingested
trigger: {on: [landing], require: any}
"""


def test_external_files_version_moves_when_a_file_is_added_or_modified(
    tmp_path: Path, root: DataRoot
) -> None:
    """The version of a CSV glob changes when a file lands and when one is rewritten."""
    ingest = load(tmp_path, ingest=LANDING).get("ingest")
    landing = tmp_path / "data" / "landing"
    assert ready(ingest, root, "", "landing").missing == ("landing",)
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text("id\n1\n")
    first = ready(ingest, root, "", "landing")
    assert first.ready
    (landing / "b.csv").write_text("id\n2\n")
    added = ready(ingest, root, "", "landing")
    (landing / "a.csv").write_text("id\n1\n3\n")
    modified = ready(ingest, root, "", "landing")
    versions = [first.versions["landing"], added.versions["landing"], modified.versions["landing"]]
    assert len(set(versions)) == 3
    assert ready(ingest, root, "", "landing") == modified


def test_external_files_partition_comes_from_the_update(tmp_path: Path, root: DataRoot) -> None:
    """An update of landing files for a partition makes the consumer ready for that partition."""
    project = load(tmp_path, ingest=LANDING)
    (tmp_path / "data" / "landing").mkdir(parents=True)
    (tmp_path / "data" / "landing" / "a.csv").write_text("id\n1\n")
    (found,) = evaluate_update(project, root, "landing", JAN)
    assert (found.pipeline, found.partition, found.ready) == ("ingest", JAN, True)


# --------------------------------------------------------------------------------------------
# evaluate_update, consumed records and claims


@pytest.fixture
def three(tmp_path: Path) -> Project:
    """join (on flights and weather), on_weather (on weather only), plain (no trigger)."""
    return project_of(
        tmp_path,
        join=consumer(["flights", "weather"]),
        on_weather=consumer(["weather"], reads=("weather",)),
        plain="source:\n  dataset: flights\n  external: true\ndestination:\n  dataset: plain\n",
    )


def test_consumers_of(three: Project) -> None:
    """Only pipelines whose trigger names the dataset consume its updates."""
    assert [p.name for p in consumers_of(three, "flights")] == ["join"]
    assert [p.name for p in consumers_of(three, "weather")] == ["join", "on_weather"]
    assert consumers_of(three, "plain") == []


def test_evaluate_update_returns_ready_consumers_of_the_dataset(
    three: Project, root: DataRoot
) -> None:
    """An update reaches the ready consumers that trigger on it, and no others."""
    write(root, "flights", (2013, 1, 1))
    assert evaluate_update(three, root, "flights", JAN) == []
    write(root, "weather", (2013, 1, 2))
    assert [r.pipeline for r in evaluate_update(three, root, "flights", JAN)] == ["join"]
    found = evaluate_update(three, root, "weather", JAN)
    assert [(r.pipeline, r.partition) for r in found] == [("join", JAN), ("on_weather", JAN)]
    assert evaluate_update(three, root, "weather", FEB) == []


def test_a_consumed_state_is_still_ready(three: Project, root: DataRoot) -> None:
    """Readiness does not look at runs: announcing a consumed state again gets its run back.

    A change of an input is a new state, with a new run key.
    """
    write(root, "flights", (2013, 1, 1))
    write(root, "weather", (2013, 1, 2))
    (state,) = evaluate_update(three, root, "flights", JAN)
    assert evaluate_update(three, root, "flights", JAN) == [state]
    write(root, "flights", (2013, 1, 1), (2013, 1, 9))
    (again,) = evaluate_update(three, root, "flights", JAN)
    assert again.pipeline == "join"
    assert again.state != state.state
    assert run_key(again) != run_key(state)


def _consumed(*states: Readiness) -> dict[str, KeyedRun]:
    """Completed runs of ``states``, by key, as the shell reads them from Prefect."""
    return {run_key(s): KeyedRun(run_key(s), "id", s.pipeline, RunPhase.completed) for s in states}


# --------------------------------------------------------------------------------------------
# reconcile


def test_reconcile_finds_every_ready_unconsumed_partition(tmp_path: Path, root: DataRoot) -> None:
    """Every (consumer, partition) ready and not consumed, until all are consumed."""
    project = project_of(
        tmp_path,
        join=consumer(["flights", "weather"]),
        waits=consumer(["flights", "other"], reads=("flights", "other")),
    )
    write(root, "flights", (2013, 1, 1), (2013, 2, 2))
    write(root, "weather", (2013, 1, 3), (2013, 2, 4))
    jan = ready(project.get("join"), root, JAN, "flights")
    found = runs_to_start(reconcile(project, root), _consumed(jan))
    assert [(r.pipeline, r.partition) for r in found] == [("join", FEB)]
    assert found == [ready(project.get("join"), root, FEB, "weather")]
    assert runs_to_start(reconcile(project, root), _consumed(jan, found[0])) == []


def test_reconcile_sees_a_change_after_consumption(tmp_path: Path, root: DataRoot) -> None:
    """A partition consumed and then changed is found again."""
    project = project_of(tmp_path, join=consumer(["flights", "weather"]))
    write(root, "flights", (2013, 1, 1))
    write(root, "weather", (2013, 1, 3))
    (state,) = reconcile(project, root)
    assert runs_to_start(reconcile(project, root), _consumed(state)) == []
    write(root, "weather", (2013, 1, 3), (2013, 1, 4))
    (changed,) = runs_to_start(reconcile(project, root), _consumed(state))
    assert (changed.pipeline, changed.partition) == ("join", JAN)
    assert changed.state != state.state


@pytest.mark.parametrize(
    ("require", "partition", "expected"),
    [
        ("all", "same", [JAN]),
        ("any", "same", [JAN, FEB]),
        ("all", "all", [""]),
    ],
)
def test_reconcile_follows_the_trigger(
    tmp_path: Path, root: DataRoot, require: str, partition: str, expected: list[str]
) -> None:
    """`any` needs one input per partition; `partition: all` is one candidate over everything."""
    text = consumer(["flights", "weather"], require=require, partition=partition)
    project = project_of(tmp_path, join=text)
    write(root, "flights", (2013, 1, 1), (2013, 2, 2))
    write(root, "weather", (2013, 1, 3))
    assert [r.partition for r in reconcile(project, root)] == expected


def test_reconcile_unpartitioned_input(tmp_path: Path, root: DataRoot) -> None:
    """An unpartitioned input is one partition, "", listed once and found by reconcile."""
    project = project_of(tmp_path, copy=consumer(["reference"], reads=("reference",)))
    frame = pl.DataFrame({"id": [1, 2]})
    write_dataset(root, frame, Destination(dataset="reference"))
    (only,) = root.dataset_files("reference")
    assert only.rsplit("/", 1)[0] == f"{root.root}/reference"
    assert read_dataset(root, "reference").collect().height == 2
    (found,) = reconcile(project, root)
    assert (found.pipeline, found.partition) == ("copy", "")
    assert evaluate_update(project, root, "reference", "") == [found]
    assert runs_to_start(reconcile(project, root), _consumed(found)) == []


def test_reconcile_skips_pipelines_without_trigger(tmp_path: Path, root: DataRoot) -> None:
    """A pipeline without a trigger is never announced, however much data its inputs have."""
    text = "source:\n  dataset: flights\n  external: true\ndestination:\n  dataset: plain\n"
    project = load(tmp_path, plain=text)
    write(root, "flights", (2013, 1, 1))
    assert list(reconcile(project, root)) == []
