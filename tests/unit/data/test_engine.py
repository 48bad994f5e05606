"""Unit tests for what a pipeline run does without Prefect (flowfactory.data.engine)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from flowfactory.config import PipelineFile, find_pipeline, load_pipeline
from flowfactory.data import (
    DataRoot,
    Partition,
    RunSummary,
    WrittenPartition,
    apply_transform,
    check_plan,
    check_run_partition,
    resolve_transform,
)
from flowfactory.errors import ConfigError, PipelineRunError, Problem
from flowfactory.settings import Settings

TRANSFORMS = """
import polars as pl


def double(source):
    return source.with_columns(pl.col("v") * 2)


def double_eagerly(source):
    return source.collect().with_columns(pl.col("v") * 2)


def to_dicts(source):
    return source.collect().to_dicts()


not_a_function = 3
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project_dir: Path) -> Iterator[Path]:
    """A project with an empty deployments/ folder, as the working directory.

    Modules named transforms.* are unloaded before and after, and sys.path is restored, so
    each test imports the transforms of its own project.
    """
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [n for n in sys.modules if n == "transforms" or n.startswith("transforms.")]:
        monkeypatch.delitem(sys.modules, name)
    (tmp_path / "deployments").mkdir()
    yield tmp_path
    for name in [n for n in sys.modules if n == "transforms" or n.startswith("transforms.")]:
        del sys.modules[name]


def settings(project: Path) -> Settings:
    """Settings of the test project."""
    return Settings(project_dir=project)


def write(project: Path, name: str, text: str) -> Path:
    """Write ``text`` (dedented) as deployments/``name``."""
    path = project / "deployments" / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def pipeline(project: Path, text: str, name: str = "p.yaml") -> PipelineFile:
    """Write and load one pipeline file."""
    return load_pipeline(write(project, name, text), settings(project))


def python_pipeline(project: Path, target: str) -> PipelineFile:
    """A one-source pipeline whose transform is ``target``, with transforms/mine.py present."""
    package = project / "transforms"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "mine.py").write_text(TRANSFORMS)
    return pipeline(
        project,
        f"""
        name: p
        source: {{path: landing/x.csv}}
        transform:
          python: {target}
        destination: {{dataset: out}}
        """,
    )


# ------------------------------------------------------------------------------------------------
# apply_transform


def test_sql_over_two_sources(project: Path) -> None:
    """SQL sees each source as a table under its name and gives a LazyFrame."""
    joined = pipeline(
        project,
        """
        name: p
        sources:
          flights: {path: landing/flights.csv}
          airlines: {path: landing/airlines.csv}
        transform:
          sql: |
            SELECT f.id, a.name, f.delay * 2 AS twice
            FROM flights f JOIN airlines a ON a.carrier = f.carrier
            ORDER BY f.id
        destination: {dataset: out}
        """,
    )
    frames = {
        "flights": pl.LazyFrame(
            {"id": [2, 1, 3], "carrier": ["UA", "AA", "ZZ"], "delay": [5, 1, 0]}
        ),
        "airlines": pl.LazyFrame({"carrier": ["AA", "UA"], "name": ["American", "United"]}),
    }
    result = apply_transform(joined, frames, resolve_transform(joined, settings(project)))
    assert isinstance(result, pl.LazyFrame)
    assert result.collect().rows() == [(1, "American", 2), (2, "United", 10)]


@pytest.mark.parametrize("target", ["transforms.mine:double", "transforms.mine:double_eagerly"])
def test_python_transform(project: Path, target: str) -> None:
    """A transform from the project's transforms/ gets the sources; a DataFrame is made lazy."""
    found = python_pipeline(project, target)
    function = resolve_transform(found, settings(project))
    assert function is not None
    assert function.__module__ == "transforms.mine"
    result = apply_transform(found, {"source": pl.LazyFrame({"v": [1, 2]})}, function)
    assert isinstance(result, pl.LazyFrame)
    assert result.collect()["v"].to_list() == [2, 4]


def test_no_transform_passes_the_source_through(project: Path) -> None:
    """Without a transform, the single source is the output as it is."""
    found = pipeline(
        project, "name: p\nsource: {dataset: raw, external: true}\ndestination: {dataset: out}\n"
    )
    assert resolve_transform(found, settings(project)) is None
    source = pl.LazyFrame({"v": [1]})
    assert apply_transform(found, {"source": source}, None) is source


def test_python_transform_returning_a_non_frame(project: Path) -> None:
    """A Python transform that returns something other than a frame is a PipelineRunError."""
    found = python_pipeline(project, "transforms.mine:to_dicts")
    function = resolve_transform(found, settings(project))
    with pytest.raises(PipelineRunError) as caught:
        apply_transform(found, {"source": pl.LazyFrame({"v": [1]})}, function)
    assert str(caught.value) == (
        "pipeline 'p': transforms.mine:to_dicts returned list, expected a polars LazyFrame"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "transforms.absent:double",
            "cannot import module 'transforms.absent': No module named 'transforms.absent'",
        ),
        ("transforms.mine:absent", "module 'transforms.mine' has no function 'absent'"),
        (
            "transforms.mine:not_a_function",
            "module 'transforms.mine' has no function 'not_a_function'",
        ),
    ],
)
def test_unresolvable_python_transform(project: Path, target: str, message: str) -> None:
    """A missing module or function is a ConfigError positioned at transform.python."""
    found = python_pipeline(project, target)
    with pytest.raises(ConfigError) as caught:
        resolve_transform(found, settings(project))
    assert caught.value.problems == (
        Problem("deployments/p.yaml", 4, 11, message, "transform.python"),
    )


def sql_pipeline(project: Path, sql: str) -> PipelineFile:
    """A pipeline over landing/x.csv whose transform is ``sql`` (on line 3, column 18)."""
    return pipeline(
        project,
        "name: p\nsource: {path: landing/x.csv}\n"
        f"transform: {{sql: {sql}}}\ndestination: {{dataset: out}}\n",
    )


@pytest.mark.parametrize(
    ("sql", "cause"),
    [
        ("SELEC v FROM source", "sql parser error: Expected: an SQL statement, found: SELEC"),
        ("SELECT v FROM source WHERE", "sql parser error: Expected: an expression, found: EOF"),
        ("SELECT 1; SELECT 2", "one (and only one) statement can be parsed at a time"),
    ],
)
def test_invalid_sql(project: Path, sql: str, cause: str) -> None:
    """SQL that polars cannot parse is a ConfigError positioned at transform.sql."""
    found = sql_pipeline(project, sql)
    with pytest.raises(ConfigError) as caught:
        apply_transform(found, {"source": pl.LazyFrame({"v": [1]})}, None)
    (problem,) = caught.value.problems
    assert (problem.path, problem.line, problem.column, problem.field) == (
        "deployments/p.yaml",
        3,
        18,
        "transform.sql",
    )
    assert problem.message.startswith(f"the transform fails on its inputs: {cause}")


@pytest.mark.parametrize(
    ("sql", "cause"),
    [
        ("SELECT w FROM source", 'unable to find column "w"'),
        ("SELECT v FROM nowhere", "relation 'nowhere' was not found"),
    ],
)
def test_check_plan_finds_plan_errors(project: Path, sql: str, cause: str) -> None:
    """check_plan resolves SQL against the sources' schemas: a missing column or table is found."""
    landing = project / "data" / "landing"
    landing.mkdir(parents=True)
    (landing / "x.csv").write_text("v\n1\n")
    root = DataRoot(str(project / "data"))
    with pytest.raises(ConfigError) as caught:
        check_plan(sql_pipeline(project, sql), root, None, None)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column, problem.field) == (3, 18, "transform.sql")
    assert problem.message.startswith(f"the transform fails on its inputs: {cause}")
    ok = sql_pipeline(project, "SELECT v * 2 AS w FROM source")
    assert check_plan(ok, root, None, None) == pl.Schema({"w": pl.Int64})


# ------------------------------------------------------------------------------------------------
# find_pipeline


@pytest.fixture
def named_files(project: Path) -> Path:
    """A deployments/ folder with defaults, and files named like their pipeline or not."""
    write(project, "_defaults.yaml", "owner: data-team\n")
    write(project, "alpha.yaml", "name: alpha\nsource: {path: a.csv}\ndestination: {dataset: a}\n")
    write(project, "broken.yaml", "name: broken\nsource: {path: b.csv}\n")
    write(project, "renamed.yaml", "name: beta\nsource: {path: b.csv}\ndestination: {dataset: b}\n")
    write(project, "delta.yaml", "source: {path: d.csv}\ndestination: {dataset: d}\n")
    return project / "deployments"


@pytest.mark.parametrize(
    ("name", "file"),
    [("alpha", "alpha.yaml"), ("beta", "renamed.yaml"), ("delta", "delta.yaml")],
)
def test_find_pipeline(project: Path, named_files: Path, name: str, file: str) -> None:
    """A pipeline is found by name, in its conventional file or any other, over the defaults."""
    found = find_pipeline(name, settings(project))
    assert found.path == named_files / file
    assert found.name == name
    assert found.config.owner == "data-team"


def test_find_pipeline_unknown_name(project: Path, named_files: Path) -> None:
    """A name no file declares is a PipelineRunError naming the folder."""
    with pytest.raises(PipelineRunError) as caught:
        find_pipeline("gamma", settings(project))
    assert str(caught.value) == f"no pipeline named 'gamma' in {named_files}"


def test_find_pipeline_broken_conventional_file(project: Path, named_files: Path) -> None:
    """The conventional file of the name reports its own config problems."""
    with pytest.raises(ConfigError) as caught:
        find_pipeline("broken", settings(project))
    assert [(p.path, p.field, p.message) for p in caught.value.problems] == [
        ("deployments/broken.yaml", "destination", "required key is missing")
    ]


# ------------------------------------------------------------------------------------------------
# RunSummary


def written(partition: str | None, rows: int, size: int, *, changed: bool) -> WrittenPartition:
    """One partition write as the summary lists it."""
    return WrittenPartition(
        dataset="flights",
        partition=Partition.parse(partition) if partition else None,
        path="unused",
        rows=rows,
        bytes=size,
        content_hash=("0123456789ab" if changed else "ba9876543210") + "f" * 52,
        changed=changed,
        files=("a.parquet", "b.parquet") if changed else ("c.parquet",),
    )


def test_run_summary_markdown() -> None:
    """The summary shows rows and bytes in and out, each source, and each partition written."""
    summary = RunSummary(
        pipeline="ingest_flights",
        partition=Partition.parse("year=2013/month=1"),
        rows_in={"flights": 27004, "weather": 744},
        bytes_in={"flights": 3_200_000, "weather": 51_000},
        written=[
            written("year=2013/month=1", 26998, 1_048_576, changed=True),
            written("year=2013/month=2", 6, 900, changed=False),
        ],
        seconds=1.234,
    )
    assert summary.rows_out == 27004
    assert summary.markdown() == textwrap.dedent(
        """\
        # ingest_flights: partition `year=2013/month=1`

        | measure | value |
        |---|---|
        | rows in | 27,748 |
        | rows out | 27,004 |
        | bytes written | 1,048,576 |
        | partitions written | 1 (unchanged 1) |
        | duration | 1.23 s |

        | source | rows | bytes |
        |---|---|---|
        | flights | 27,004 | 3,200,000 |
        | weather | 744 | 51,000 |

        | partition | rows | bytes | files | changed | content hash |
        |---|---|---|---|---|---|
        | year=2013/month=1 | 26,998 | 1,048,576 | 2 | yes | `0123456789ab` |
        | year=2013/month=2 | 6 | 900 | 1 | no | `ba9876543210` |"""
    )


def test_run_summary_marks_rows_it_did_not_count() -> None:
    """A large text source is not counted (that would be a second read): rows in shows a dash."""
    summary = RunSummary(
        pipeline="p", partition=None, rows_in={"big": None}, bytes_in={"big": 10**10}
    )
    assert summary.total_rows_in is None
    assert "| rows in | — |" in summary.markdown()
    assert "| big | — | 10,000,000,000 |" in summary.markdown()


def test_run_summary_markdown_whole_dataset() -> None:
    """A run over all partitions of an unpartitioned dataset says so."""
    summary = RunSummary(
        pipeline="p",
        partition=None,
        rows_in={"source": 3},
        written=[written(None, 3, 10, changed=True)],
    )
    lines = summary.markdown().splitlines()
    assert lines[0] == "# p: all partitions"
    assert "| rows out | 3 |" in lines
    assert lines[-1] == "| (whole dataset) | 3 | 10 | 2 | yes | `0123456789ab` |"


def test_find_pipeline_unknown_name_suggests_close_names(project: Path, named_files: Path) -> None:
    """A near miss names the pipelines it may have meant."""
    with pytest.raises(PipelineRunError, match=r"did you mean 'alpha'\?$"):
        find_pipeline("alpah", settings(project))


# ------------------------------------------------------------------------------------------------
# check_run_partition


def test_check_run_partition_rejects_a_partition_outside_the_inputs(project: Path) -> None:
    """Wrong columns and a partition no input has each fail in one line before any run."""
    landing = project / "data" / "landing"
    landing.mkdir(parents=True)
    (landing / "x.csv").write_text("year,month,v\n2024,1,1\n")
    found = pipeline(
        project,
        "name: p\nsource: {path: landing/x.csv}\n"
        "destination: {dataset: out, partition_by: [year, month]}\n",
    )
    root = DataRoot(str(project / "data"))
    check_run_partition(found, root, Partition.parse("year=2024/month=1"))
    with pytest.raises(PipelineRunError, match=r"give --partition year=\.\.\./month=\.\.\."):
        check_run_partition(found, root, Partition.parse("year=1999"))
    with pytest.raises(PipelineRunError, match=r"no input of p has partition year=1999/month=1"):
        check_run_partition(found, root, Partition.parse("year=1999/month=1"))
