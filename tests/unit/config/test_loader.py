"""Loading a folder of pipeline files: the models, the loader and the whole-project checks."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from flowfactory.config import (
    FileSource,
    PipelineConfig,
    Project,
    Retries,
    load_pipeline,
    load_project,
    parse_duration,
    pipeline_paths,
)
from flowfactory.errors import ConfigError, Problem
from flowfactory.settings import Settings

A = "deployments/a.yaml"
B = "deployments/b.yaml"
C = "deployments/c.yaml"
DEFAULTS = "deployments/_defaults.yaml"
NAME_RULE = "use lowercase letters, digits and _, starting with a letter, at most 63 characters"
NOT_EXTERNAL = "and it is not declared external (external: true)"


@pytest.fixture
def folder(tmp_path: Path, project_dir: Path) -> Path:
    """An empty deployments/ folder in a project that is the working directory.

    Paths in problems are relative to the working directory, so they print as
    ``deployments/<file>``; FLOWFACTORY_* variables of the calling shell are cleared.
    """
    path = tmp_path / "deployments"
    path.mkdir()
    return path


def write(folder: Path, name: str, text: str) -> Path:
    """Write ``text`` (dedented) as ``folder/name``."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def settings(folder: Path, allowed_modules: list[str] | None = None) -> Settings:
    """Settings for the project that holds ``folder`` (default allowed modules: transforms)."""
    if allowed_modules is None:
        return Settings(project_dir=folder.parent)
    return Settings(project_dir=folder.parent, allowed_modules=allowed_modules)


def load(folder: Path) -> Project:
    """Load the folder as a project."""
    return load_project(folder, settings(folder))


def problems_of(folder: Path) -> tuple[Problem, ...]:
    """The problems loading the folder raises."""
    with pytest.raises(ConfigError) as info:
        load(folder)
    return info.value.problems


def tag_problem(line: int, column: int, field: str, tag: str) -> Problem:
    """The problem for a refused YAML tag in deployments/a.yaml."""
    return Problem(
        A,
        line,
        column,
        f"tag {tag!r} is not allowed: pipeline files hold plain data "
        "(mappings, lists, strings, numbers, booleans, null)",
        field,
    )


def reads_file(dataset: str) -> str:
    """A pipeline that reads one CSV file into ``dataset`` (its dataset is at 4:12)."""
    return f"source:\n  path: in/{dataset}.csv\ndestination:\n  dataset: {dataset}\n"


def reads_dataset(upstream: str, dataset: str, *, external: bool = False) -> str:
    """A pipeline that copies ``upstream`` into ``dataset`` (``upstream`` is named at 2:12)."""
    flag = "  external: true\n" if external else ""
    return f"source:\n  dataset: {upstream}\n{flag}destination:\n  dataset: {dataset}\n"


# --------------------------------------------------------------------------------------------
# Valid files


def test_minimal_pipeline_loads_with_defaults(folder: Path) -> None:
    """A source and a destination make a valid pipeline named after its file."""
    write(folder, "a.yaml", reads_file("a"))
    project = load(folder)
    assert project.names == ["a"]
    config = project.get("a").config
    assert config.source is not None
    assert config.inputs == {"source": config.source}
    assert config.destination.format == "parquet"
    assert config.destination.partition_by == []
    assert config.transform is None
    assert config.schedule is None
    assert config.tags == []
    assert config.retries == Retries()
    assert project.producers["a"].name == "a"
    assert project.external_datasets == frozenset()


def test_full_pipeline_loads(folder: Path) -> None:
    """Every section of a pipeline file loads into its typed model."""
    write(
        folder,
        "delays.yaml",
        """
        name: flight_delays
        description: Hourly delays.
        owner: data-platform
        tags: [flights]
        sources:
          flights:
            path: landing/flights/*.csv
            csv:
              separator: ";"
              null_values: [NA]
          weather:
            dataset: weather
            external: true
        transform:
          python: transforms.delays:hourly
        destination:
          dataset: flight_delays
          partition_by: [day]
          key: [origin, hour]
        schedule:
          cron: "0 * * * *"
          timezone: Europe/Paris
        retries:
          attempts: 3
          delay: 30s
          backoff: exponential
        work_pool: local
        """,
    )
    project = load(folder)
    config = project.get("flight_delays").config
    assert set(config.inputs) == {"flights", "weather"}
    assert config.input_datasets[0].dataset == "weather"
    assert project.external_datasets == frozenset({"weather"})
    assert config.schedule is not None
    assert config.schedule.timezone == "Europe/Paris"
    assert config.retries.delays_seconds() == [30.0, 60.0, 120.0]
    assert config.work_pool == "local"


def test_load_pipeline_loads_one_file(folder: Path) -> None:
    """load_pipeline validates a single file without checking the set."""
    path = write(folder, "b.yaml", reads_dataset("nobody_makes_this", "b"))
    pipeline = load_pipeline(path, settings(folder))
    assert pipeline.name == "b"
    assert pipeline.path == path
    assert isinstance(pipeline.config, PipelineConfig)


def test_load_pipeline_reports_problems(folder: Path) -> None:
    """load_pipeline raises the file's problems as a ConfigError."""
    path = write(folder, "a.yaml", "source:\n  path: in/x.csv\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, settings(folder))
    assert info.value.problems == (Problem(A, 1, 1, "required key is missing", "destination"),)


def test_pipeline_paths_skip_private_and_other_files(folder: Path) -> None:
    """Only *.yaml and *.yml files not starting with `_` or `.` are pipelines, sorted."""
    for name in ["b.yml", "a.yaml", "_defaults.yaml", "_draft.yaml", ".hidden.yaml", "notes.txt"]:
        write(folder, name, reads_file("x"))
    assert [p.name for p in pipeline_paths(folder)] == ["a.yaml", "b.yml"]


def test_empty_folder_is_an_empty_project(folder: Path) -> None:
    """A folder without pipeline files loads as a project with no pipelines."""
    assert load(folder).pipelines == ()


def test_missing_folder_is_an_error(folder: Path) -> None:
    """A folder that does not exist is a single problem naming it."""
    with pytest.raises(ConfigError) as info:
        load_project(folder / "nope", settings(folder))
    assert info.value.problems == (Problem("deployments/nope", 1, 1, "no such folder"),)


def test_topological_order_puts_producers_first(folder: Path) -> None:
    """Pipelines come after every pipeline whose dataset they read."""
    write(folder, "a.yaml", reads_dataset("b", "a"))
    write(folder, "b.yaml", reads_dataset("c", "b"))
    write(folder, "c.yaml", reads_file("c"))
    write(
        folder,
        "d.yaml",
        """
        sources:
          one:
            dataset: a
          two:
            dataset: c
        transform:
          sql: select * from one join two using (id)
        destination:
          dataset: d
        """,
    )
    project = load(folder)
    assert project.names == ["a", "b", "c", "d"]
    order = [p.name for p in project.topological_order()]
    assert order == ["c", "b", "a", "d"]
    assert [p.name for p in project.upstream(project.get("d"))] == ["a", "c"]


def test_project_get_unknown_name_raises_key_error(folder: Path) -> None:
    """Project.get raises KeyError for a name no pipeline has."""
    write(folder, "a.yaml", reads_file("a"))
    with pytest.raises(KeyError):
        load(folder).get("b")


# --------------------------------------------------------------------------------------------
# Unknown and missing keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            name: a
            sorces:
              x:
                path: in/x.csv
            destination:
              dataset: a
            """,
            Problem(A, 2, 1, "unknown key 'sorces'; did you mean 'sources'?", "sorces"),
        ),
        (
            """
            source:
              path: in/x.csv
            destination:
              dataset: a
              partiton_by: [day]
            """,
            Problem(
                A,
                5,
                3,
                "unknown key 'partiton_by'; did you mean 'partition_by'?",
                "destination.partiton_by",
            ),
        ),
        (
            """
            source:
              path: in/x.csv
            destination:
              dataset: a
            retries:
              atempts: 3
            """,
            Problem(A, 6, 3, "unknown key 'atempts'; did you mean 'attempts'?", "retries.atempts"),
        ),
        (
            """
            sources:
              flights:
                path: in/x.csv
                csv:
                  seperator: ";"
            destination:
              dataset: a
            """,
            Problem(
                A,
                5,
                7,
                "unknown key 'seperator'; did you mean 'separator'?",
                "sources.flights.csv.seperator",
            ),
        ),
        (
            """
            source:
              dataset: b
              externl: true
            destination:
              dataset: a
            """,
            Problem(A, 3, 3, "unknown key 'externl'; did you mean 'external'?", "source.externl"),
        ),
        (
            """
            source:
              path: in/x.csv
            destination:
              dataset: a
            zzqqx: 1
            """,
            Problem(A, 5, 1, "unknown key 'zzqqx'", "zzqqx"),
        ),
    ],
    ids=["top-level", "nested", "retries", "csv-options", "dataset-source", "no-close-match"],
)
def test_unknown_key_is_reported_with_a_hint(folder: Path, text: str, expected: Problem) -> None:
    """An unknown key is an error at the key, with a "did you mean" when one is close."""
    write(folder, "a.yaml", text)
    assert problems_of(folder) == (expected,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            reads_file("a") + "partition_by: [day]\n",
            Problem(
                A,
                5,
                1,
                "unknown key 'partition_by'; it belongs under `destination:`",
                "partition_by",
            ),
        ),
        (
            reads_file("a") + "cron: '0 * * * *'\n",
            Problem(A, 5, 1, "unknown key 'cron'; it belongs under `schedule:`", "cron"),
        ),
        (
            "source:\n  path: in/x.csv\n  attempts: 2\ndestination:\n  dataset: a\n",
            Problem(
                A, 3, 3, "unknown key 'attempts'; it belongs under `retries:`", "source.attempts"
            ),
        ),
        (
            reads_file("a") + "separator: ';'\n",
            Problem(
                A,
                5,
                1,
                "unknown key 'separator'; it belongs under `csv:` of a file source",
                "separator",
            ),
        ),
        (
            "source:\n  path: in/x.csv\ndestination:\n  dataset: a\n  name: a\n",
            Problem(A, 5, 3, "unknown key 'name'; it belongs at the top level", "destination.name"),
        ),
        (
            reads_file("a") + "dataset: b\n",
            Problem(
                A,
                5,
                1,
                "unknown key 'dataset'; it belongs under `source:` (or an entry of `sources:`), "
                "or under `destination:`",
                "dataset",
            ),
        ),
        (
            "source:\n  dataset: b\n  format: csv\ndestination:\n  dataset: a\n",
            Problem(A, 3, 3, "unknown key 'format'", "source.format"),
        ),
    ],
    ids=[
        "destination-key",
        "schedule-key",
        "retries-key",
        "csv-key",
        "top-level-key",
        "two-homes",
        "other-source-kind",
    ],
)
def test_misplaced_key_says_where_it_belongs(folder: Path, text: str, expected: Problem) -> None:
    """A key valid elsewhere says where it belongs instead of suggesting itself."""
    write(folder, "a.yaml", text)
    assert problems_of(folder) == (expected,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "source:\n  path: in/x.csv\n",
            Problem(A, 1, 1, "required key is missing", "destination"),
        ),
        (
            "source:\n  path: in/x.csv\ndestination:\n  key: [id]\n",
            Problem(A, 4, 3, "required key is missing", "destination.dataset"),
        ),
        (
            "source:\n  path: in/x.csv\ndestination: {}\n",
            Problem(A, 3, 14, "required key is missing", "destination.dataset"),
        ),
        (
            "sources:\n  x:\n    path: in/x.csv\ntransform: {}\ndestination: {dataset: a}\n",
            Problem(A, 4, 12, "a transform needs exactly one of `sql:` or `python:`", "transform"),
        ),
    ],
    ids=["destination", "destination-dataset", "empty-destination", "transform-kind"],
)
def test_missing_required_key(folder: Path, text: str, expected: Problem) -> None:
    """A missing required key is reported at the mapping that should hold it."""
    write(folder, "a.yaml", text)
    assert problems_of(folder) == (expected,)


def test_missing_destination_message(folder: Path) -> None:
    """A file without `destination:` prints the field path and "required key is missing"."""
    write(folder, "a.yaml", "source:\n  path: in/x.csv\n")
    assert [p.format() for p in problems_of(folder)] == [
        "deployments/a.yaml:1:1: error: destination: required key is missing"
    ]


# --------------------------------------------------------------------------------------------
# Unsafe or malformed files, through the loader


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            (
                'source:\n  path: !!python/object/apply:os.system ["echo pwned"]\n'
                "destination:\n  dataset: a\n"
            ),
            tag_problem(2, 9, "source.path", "!!python/object/apply:os.system"),
        ),
        (
            "source:\n  path: in/x.csv\ndestination:\n  dataset: !!python/name:os.system\n",
            tag_problem(4, 12, "destination.dataset", "!!python/name:os.system"),
        ),
    ],
    ids=["object-apply", "name"],
)
def test_python_tags_are_errors_at_the_tag(folder: Path, text: str, expected: Problem) -> None:
    """Python tags never run: they are errors at the tagged value."""
    write(folder, "a.yaml", text)
    assert problems_of(folder) == (expected,)


def test_duplicate_keys_are_reported_with_other_errors(folder: Path) -> None:
    """Duplicate keys (top level and nested) come with the file's validation errors."""
    write(
        folder,
        "a.yaml",
        """
        name: a
        source:
          path: in/x.csv
          path: in/y.csv
        destination:
          dataset: a
        name: b
        retries:
          attempts: -1
        """,
    )
    keep_last = "YAML would silently keep only the last one"
    assert problems_of(folder) == (
        Problem(
            A, 4, 3, f"duplicate key 'path' (first defined at line 3); {keep_last}", "source.path"
        ),
        Problem(A, 7, 1, f"duplicate key 'name' (first defined at line 1); {keep_last}", "name"),
        Problem(A, 9, 13, "Input should be greater than or equal to 0", "retries.attempts"),
    )


def test_duplicate_key_alone_fails_the_file(folder: Path) -> None:
    """A file whose only problem is a duplicate key still fails to load."""
    write(folder, "a.yaml", reads_file("a") + "destination:\n  dataset: a\n")
    assert problems_of(folder) == (
        Problem(
            A,
            5,
            1,
            "duplicate key 'destination' (first defined at line 3); "
            "YAML would silently keep only the last one",
            "destination",
        ),
    )


def test_a_python_tag_in_a_duplicate_value_is_reported_too(folder: Path) -> None:
    """A tag in the dropped value of a duplicate key is an error beside the duplicate itself."""
    write(
        folder,
        "a.yaml",
        reads_file("a") + 'source: !!python/object/apply:os.system ["echo pwned"]\n',
    )
    assert problems_of(folder) == (
        Problem(
            A,
            5,
            1,
            "duplicate key 'source' (first defined at line 1); "
            "YAML would silently keep only the last one",
            "source",
        ),
        tag_problem(5, 9, "source", "!!python/object/apply:os.system"),
    )


def test_a_bad_http_block_is_reported_at_its_key(folder: Path) -> None:
    """An invalid `http.block` names source.http.block, not a doubled union tag."""
    write(folder, "a.yaml", "source:\n  http: {block: Bad_Block}\ndestination:\n  dataset: a\n")
    (problem,) = problems_of(folder)
    assert (problem.line, problem.column, problem.field) == (2, 17, "source.http.block")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("# nothing yet\n", "file is empty"),
        ("- a\n- b\n", "a pipeline file must be a mapping of keys to values"),
        ("just text\n", "a pipeline file must be a mapping of keys to values"),
    ],
    ids=["empty", "comment-only", "list", "scalar"],
)
def test_file_that_is_not_a_mapping(folder: Path, text: str, message: str) -> None:
    """An empty file or a document that is not a mapping is one problem at the top."""
    write(folder, "a.yaml", text)
    assert problems_of(folder) == (Problem(A, 1, 1, message),)


def test_oversize_file_is_refused(folder: Path) -> None:
    """A pipeline file over 1 MiB is refused without being parsed."""
    write(folder, "a.yaml", reads_file("a") + "#" + "x" * (1 << 20) + "\n")
    (problem,) = problems_of(folder)
    assert problem == Problem(
        A,
        1,
        1,
        f"file is {len(reads_file('a')) + (1 << 20) + 2} bytes; "
        "pipeline files are limited to 1 MiB",
    )


def test_invalid_yaml_is_reported_at_its_position(folder: Path) -> None:
    """A syntax error is one problem at its line and column."""
    write(folder, "a.yaml", "source:\n  path: in/x.csv\n destination: x\n")
    assert problems_of(folder) == (
        Problem(
            A,
            3,
            2,
            "invalid YAML: did not find expected key "
            "(while parsing a block mapping that starts at line 1, column 1)",
        ),
    )


def test_non_utf8_file_is_refused(folder: Path) -> None:
    """A file that is not UTF-8 is refused at the first bad byte."""
    (folder / "a.yaml").write_bytes(b"source:\n  path: caf\xe9.csv\n")
    assert problems_of(folder) == (
        Problem(A, 2, 12, "file is not UTF-8 text (invalid continuation byte)"),
    )


def test_alias_bomb_is_refused(folder: Path) -> None:
    """A billion-laughs pipeline file is refused, not expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    write(folder, "a.yaml", "\n".join(lines) + "\n")
    assert problems_of(folder) == (
        Problem(A, 1, 4, "document expands to more than 20000 values (an alias expansion bomb?)"),
    )


# --------------------------------------------------------------------------------------------
# _defaults.yaml


def test_defaults_apply_and_the_pipeline_overrides(folder: Path) -> None:
    """Defaults fill what a pipeline leaves out; the pipeline's own values win, deeply."""
    write(
        folder,
        "_defaults.yaml",
        """
        owner: data-platform
        work_pool: shared
        retries:
          attempts: 3
          delay: 30s
        destination:
          partition_by: [day]
          key: [id]
        """,
    )
    write(
        folder,
        "a.yaml",
        """
        owner: finance
        source:
          path: in/x.csv
        destination:
          dataset: a
          partition_by: [hour]
        retries:
          attempts: 5
        """,
    )
    write(folder, "b.yaml", reads_file("b"))
    project = load(folder)
    a, b = project.get("a").config, project.get("b").config
    assert (a.owner, a.work_pool) == ("finance", "shared")
    assert (b.owner, b.work_pool) == ("data-platform", "shared")
    assert (a.retries.attempts, a.retries.delay) == (5, timedelta(seconds=30))
    assert (b.retries.attempts, b.retries.delay) == (3, timedelta(seconds=30))
    # Lists other than tags replace the default list.
    assert (a.destination.partition_by, a.destination.key) == (["hour"], ["id"])
    assert (b.destination.partition_by, b.destination.key) == (["day"], ["id"])


def test_tags_from_defaults_and_pipeline_unite(folder: Path) -> None:
    """`tags` of the defaults and of the pipeline unite, defaults first, without repeats."""
    write(folder, "_defaults.yaml", "tags: [team-a, nightly]\n")
    write(folder, "a.yaml", "tags: [nightly, finance]\n" + reads_file("a"))
    write(folder, "b.yaml", reads_file("b"))
    project = load(folder)
    assert project.get("a").config.tags == ["team-a", "nightly", "finance"]
    assert project.get("b").config.tags == ["team-a", "nightly"]


def test_error_from_defaults_is_positioned_in_defaults_once(folder: Path) -> None:
    """A bad default is reported once, in _defaults.yaml, however many pipelines inherit it."""
    write(
        folder,
        "_defaults.yaml",
        """
        owner: data-platform
        retries:
          attempts: lots
          backof: exponential
        """,
    )
    write(folder, "a.yaml", reads_file("a"))
    write(folder, "b.yaml", reads_file("b") + "retries:\n  attempts: 2\n")
    assert problems_of(folder) == (
        Problem(
            DEFAULTS,
            3,
            13,
            "Input should be a valid integer, unable to parse string as an integer",
            "retries.attempts",
        ),
        Problem(
            DEFAULTS,
            4,
            3,
            "unknown key 'backof'; did you mean 'backoff'?",
            "retries.backof",
        ),
    )


def test_error_in_pipeline_value_is_positioned_in_the_pipeline(folder: Path) -> None:
    """When the pipeline sets the bad value, the problem is in the pipeline file."""
    write(folder, "_defaults.yaml", "retries:\n  attempts: 2\n")
    write(folder, "a.yaml", reads_file("a") + "retries:\n  attempts: many\n")
    assert problems_of(folder) == (
        Problem(
            A,
            6,
            13,
            "Input should be a valid integer, unable to parse string as an integer",
            "retries.attempts",
        ),
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- owner: x\n", Problem(DEFAULTS, 1, 1, "defaults must be a mapping")),
        (
            "retries: [\n",
            Problem(
                DEFAULTS,
                2,
                1,
                "invalid YAML: did not find expected node content (while parsing a flow node)",
            ),
        ),
        (
            "owner: x\nowner: y\n",
            Problem(
                DEFAULTS,
                2,
                1,
                "duplicate key 'owner' (first defined at line 1); "
                "YAML would silently keep only the last one",
                "owner",
            ),
        ),
    ],
    ids=["list", "syntax", "duplicate-key"],
)
def test_broken_defaults_file_is_reported(folder: Path, text: str, problem: Problem) -> None:
    """A defaults file that is not a clean mapping is reported while pipelines still load."""
    write(folder, "_defaults.yaml", text)
    write(folder, "a.yaml", reads_file("a"))
    assert problems_of(folder) == (problem,)


def test_empty_defaults_file_is_allowed(folder: Path) -> None:
    """An empty _defaults.yaml changes nothing."""
    write(folder, "_defaults.yaml", "# shared settings go here\n")
    write(folder, "a.yaml", reads_file("a"))
    assert load(folder).names == ["a"]


# --------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (
            "cron: '61 * * * *'",
            Problem(A, 6, 9, "'61 * * * *' is not a valid cron expression", "schedule.cron"),
        ),
        (
            "cron: 'H * * * *'",
            Problem(A, 6, 9, "'H * * * *' is not a valid cron expression", "schedule.cron"),
        ),
        (
            "cron: every day",
            Problem(A, 6, 9, "'every day' is not a valid cron expression", "schedule.cron"),
        ),
        (
            "interval: soon",
            Problem(
                A, 6, 13, "'soon' is not a duration such as 30s, 15m, 2h or 1d", "schedule.interval"
            ),
        ),
        ("interval: 0", Problem(A, 6, 13, "interval must be positive", "schedule.interval")),
        (
            "interval: -5m",
            Problem(
                A, 6, 13, "'-5m' is not a duration such as 30s, 15m, 2h or 1d", "schedule.interval"
            ),
        ),
        ("interval: -5", Problem(A, 6, 13, "interval must be positive", "schedule.interval")),
        (
            "interval: .inf",
            Problem(
                A, 6, 13, "inf is not a duration such as 30s, 15m, 2h or 1d", "schedule.interval"
            ),
        ),
        (
            "interval: 99999999999999d",
            Problem(A, 6, 13, "'99999999999999d' is too long a duration", "schedule.interval"),
        ),
        (
            "cron: '0 * * * *'\n  timezone: Mars/Olympus",
            Problem(A, 7, 13, "unknown time zone 'Mars/Olympus'", "schedule.timezone"),
        ),
        (
            "cron: '0 * * * *'\n  interval: 1h",
            Problem(A, 6, 3, "a schedule needs exactly one of `cron:` or `interval:`", "schedule"),
        ),
        (
            "timezone: UTC",
            Problem(A, 6, 3, "a schedule needs exactly one of `cron:` or `interval:`", "schedule"),
        ),
    ],
    ids=[
        "cron-out-of-range",
        "cron-hashed",
        "cron-words",
        "interval-words",
        "interval-zero",
        "interval-negative-text",
        "interval-negative",
        "interval-infinite",
        "interval-overflow",
        "timezone",
        "cron-and-interval",
        "neither",
    ],
)
def test_bad_schedule(folder: Path, schedule: str, expected: Problem) -> None:
    """Invalid cron, interval, time zone or a schedule of both kinds is an error at the value."""
    write(folder, "a.yaml", reads_file("a") + "schedule:\n  " + schedule + "\n")
    assert problems_of(folder) == (expected,)


@pytest.mark.parametrize("schedule", ["cron: '0 6 * * 1-5'", "interval: 15m", "interval: 90"])
def test_good_schedule(folder: Path, schedule: str) -> None:
    """A cron expression or an interval alone is a valid schedule."""
    write(folder, "a.yaml", reads_file("a") + "schedule:\n  " + schedule + "\n")
    assert load(folder).get("a").config.schedule is not None


@pytest.mark.parametrize(
    ("retries", "column", "field", "message"),
    [
        ("attempts: 21", 13, "retries.attempts", "Input should be less than or equal to 20"),
        ("delay: -5", 10, "retries.delay", "delay must not be negative"),
        (
            "delay: later",
            10,
            "retries.delay",
            "'later' is not a duration such as 30s, 15m, 2h or 1d",
        ),
        ("backoff: linear", 12, "retries.backoff", "Input should be 'constant' or 'exponential'"),
        ("jitter: 2", 11, "retries.jitter", "Input should be less than or equal to 1"),
    ],
)
def test_bad_retries(folder: Path, retries: str, column: int, field: str, message: str) -> None:
    """Out-of-range retry settings are errors at the value."""
    write(folder, "a.yaml", reads_file("a") + "retries:\n  " + retries + "\n")
    assert problems_of(folder) == (Problem(A, 6, column, message, field),)


@pytest.mark.parametrize("name", ["../x", "a/b", "X", "1st", "a-b", "", "x" * 64])
def test_dataset_name_that_could_escape_the_data_root(folder: Path, name: str) -> None:
    """A destination dataset must be a plain lowercase name: no `..`, `/` or capitals."""
    write(folder, "a.yaml", f"source:\n  path: in/x.csv\ndestination:\n  dataset: '{name}'\n")
    assert problems_of(folder) == (
        Problem(A, 4, 12, f"{name!r} is not a valid name: {NAME_RULE}", "destination.dataset"),
    )


def test_source_dataset_name_is_checked_too(folder: Path) -> None:
    """A dataset source's name follows the same rule as a destination's."""
    write(folder, "a.yaml", "source:\n  dataset: ../etc\ndestination:\n  dataset: a\n")
    assert problems_of(folder) == (
        Problem(A, 2, 12, f"'../etc' is not a valid name: {NAME_RULE}", "source.dataset"),
    )


def test_source_table_name_is_checked_at_the_key(folder: Path) -> None:
    """A `sources:` entry's name is a table name and is checked at its key."""
    write(
        folder, "a.yaml", "sources:\n  Bad-Name:\n    path: in/x.csv\ndestination:\n  dataset: a\n"
    )
    assert problems_of(folder) == (
        Problem(A, 2, 3, f"'Bad-Name' is not a valid name: {NAME_RULE}", "sources.Bad-Name"),
    )


def test_pipeline_name_from_an_invalid_file_name(folder: Path) -> None:
    """A file name that is not a valid pipeline name says the name came from the file name."""
    write(folder, "Flight-Delays.yaml", reads_file("a"))
    assert problems_of(folder) == (
        Problem(
            "deployments/Flight-Delays.yaml",
            1,
            1,
            f"'Flight-Delays' is not a valid name: {NAME_RULE} "
            "(taken from the file name; add a `name:` key or rename the file)",
            "name",
        ),
    )


def test_explicit_name_fixes_an_invalid_file_name(folder: Path) -> None:
    """A `name:` key makes any file name acceptable."""
    write(folder, "Flight-Delays.yaml", "name: flight_delays\n" + reads_file("a"))
    assert load(folder).names == ["flight_delays"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../etc/passwd", "'../etc/passwd' escapes the data root"),
        ("in/../../x.csv", "'in/../../x.csv' escapes the data root"),
        (
            "/etc/passwd",
            (
                "'/etc/passwd' is absolute; local paths are relative to the data root "
                "(use a file:// URL to read elsewhere)"
            ),
        ),
        (
            "~/x.csv",
            (
                "'~/x.csv' is absolute; local paths are relative to the data root "
                "(use a file:// URL to read elsewhere)"
            ),
        ),
        (
            "in/x.xlsx",
            (
                "cannot tell the format of 'in/x.xlsx' from its suffix; "
                "set format: csv | parquet | ndjson"
            ),
        ),
        (
            "in/x",
            "cannot tell the format of 'in/x' from its suffix; set format: csv | parquet | ndjson",
        ),
    ],
)
def test_bad_file_source_path(folder: Path, path: str, message: str) -> None:
    """A file source must stay under the data root and have a known format."""
    write(folder, "a.yaml", f"source:\n  path: '{path}'\ndestination:\n  dataset: a\n")
    assert problems_of(folder) == (Problem(A, 2, 9, message, "source.path"),)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("path: in/x.tsv", "csv"),
        ("path: in/*.PQ", "parquet"),
        ("path: in/x.jsonl", "ndjson"),
        ("path: in/x.xlsx\n  format: csv", "csv"),
        ("path: s3://bucket/x.parquet?v=1", "parquet"),
        ("path: file:///srv/x.csv", "csv"),
    ],
)
def test_good_file_source_path(folder: Path, source: str, expected: str) -> None:
    """Relative paths, globs and URLs load; the format comes from `format:` or the suffix."""
    write(folder, "a.yaml", f"source:\n  {source}\ndestination:\n  dataset: a\n")
    file_source = load(folder).get("a").config.source
    assert isinstance(file_source, FileSource)
    assert file_source.inferred_format == expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "os:system",
            (
                "module 'os' is outside the allowed module roots (transforms); "
                "add its root to [tool.flowfactory] allowed_modules in pyproject.toml"
            ),
        ),
        (
            "transforms_evil.x:f",
            (
                "module 'transforms_evil.x' is outside the allowed module roots (transforms); "
                "add its root to [tool.flowfactory] allowed_modules in pyproject.toml"
            ),
        ),
        ("transforms.delays", "'transforms.delays' is not of the form module.path:function"),
        ("transforms.delays:", "'transforms.delays:' is not of the form module.path:function"),
        ("transforms..x:f", "'transforms..x:f' is not of the form module.path:function"),
        ("transforms.x:f:g", "'transforms.x:f:g' is not of the form module.path:function"),
        ("transforms.x:f()", "'transforms.x:f()' is not of the form module.path:function"),
    ],
)
def test_bad_python_transform(folder: Path, target: str, message: str) -> None:
    """A python transform must be module:function under an allowed module root."""
    write(folder, "a.yaml", reads_file("a") + f"transform:\n  python: '{target}'\n")
    assert problems_of(folder) == (Problem(A, 6, 11, message, "transform.python"),)


def test_allowed_modules_come_from_settings(folder: Path) -> None:
    """Settings.allowed_modules decides which module roots a transform may use."""
    path = write(folder, "a.yaml", reads_file("a") + "transform:\n  python: mine.sub:f\n")
    pipeline = load_pipeline(path, settings(folder, allowed_modules=["mine"]))
    assert pipeline.config.transform is not None
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, settings(folder, allowed_modules=[]))
    assert info.value.problems[0].message == (
        "module 'mine.sub' is outside the allowed module roots ((none)); "
        "add its root to [tool.flowfactory] allowed_modules in pyproject.toml"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "source:\n  dataset: b\n  path: in/x.csv\ndestination:\n  dataset: a\n",
            Problem(
                A, 2, 3, "a source needs exactly one of `dataset:`, `path:` or `http:`", "source"
            ),
        ),
        (
            (
                "sources:\n  x:\n    external: true\ntransform:\n  sql: select 1\n"
                "destination:\n  dataset: a\n"
            ),
            Problem(
                A, 3, 5, "a source needs exactly one of `dataset:`, `path:` or `http:`", "sources.x"
            ),
        ),
        (
            reads_file("a") + "transform:\n  sql: select 1\n  python: transforms.x:f\n",
            Problem(A, 6, 3, "a transform needs exactly one of `sql:` or `python:`", "transform"),
        ),
        (
            reads_file("a") + "transform:\n  sql: ''\n",
            Problem(A, 6, 8, "String should have at least 1 character", "transform.sql"),
        ),
        (
            reads_file("a") + "sources:\n  x:\n    path: in/x.csv\n",
            Problem(A, 6, 3, "a pipeline needs exactly one of `source:` or `sources:`", "sources"),
        ),
        (
            "destination:\n  dataset: a\n",
            Problem(A, 1, 1, "a pipeline needs exactly one of `source:` or `sources:`", ""),
        ),
        (
            "sources: {}\ndestination:\n  dataset: a\n",
            Problem(A, 1, 10, "`sources:` is empty", "sources"),
        ),
        (
            (
                "sources:\n  x:\n    path: in/x.csv\n  y:\n    path: in/y.csv\n"
                "destination:\n  dataset: a\n"
            ),
            Problem(A, 2, 3, "a pipeline with several sources needs a `transform:`", "sources"),
        ),
    ],
    ids=[
        "dataset-and-path",
        "neither-dataset-nor-path",
        "sql-and-python",
        "empty-sql",
        "source-and-sources",
        "no-source",
        "empty-sources",
        "several-sources-no-transform",
    ],
)
def test_inconsistent_pipeline_shape(folder: Path, text: str, expected: Problem) -> None:
    """Sources and transforms must be exactly one kind, and several sources need a transform."""
    write(folder, "a.yaml", text)
    assert problems_of(folder) == (expected,)


def test_single_named_source_needs_no_transform(folder: Path) -> None:
    """One entry under `sources:` is copied as it is, like `source:`."""
    write(folder, "a.yaml", "sources:\n  x:\n    path: in/x.csv\ndestination:\n  dataset: a\n")
    assert list(load(folder).get("a").config.inputs) == ["x"]


def test_repeated_columns_are_refused(folder: Path) -> None:
    """`partition_by` and `key` list each column once."""
    write(
        folder,
        "a.yaml",
        reads_file("a") + "  partition_by: [day, day]\n  key: [id, x, id]\n",
    )
    assert problems_of(folder) == (
        Problem(A, 5, 17, "column listed twice: day", "destination.partition_by"),
        Problem(A, 6, 8, "column listed twice: id", "destination.key"),
    )


# --------------------------------------------------------------------------------------------
# The set of pipelines


def test_duplicate_pipeline_names(folder: Path) -> None:
    """Two pipelines with one name: the second is an error naming the first file."""
    write(folder, "a.yaml", "name: same\n" + reads_file("a"))
    write(folder, "b.yaml", "name: same\n" + reads_file("b"))
    assert problems_of(folder) == (
        Problem(B, 1, 7, "pipeline name 'same' is already used by deployments/a.yaml", "name"),
    )


def test_duplicate_name_from_file_stems(folder: Path) -> None:
    """`a.yaml` and `a.yml` both take the name `a`; the later one is reported at its top."""
    write(folder, "a.yaml", reads_file("a"))
    write(folder, "a.yml", reads_file("b"))
    assert problems_of(folder) == (
        Problem(
            "deployments/a.yml",
            1,
            1,
            "pipeline name 'a' is already used by deployments/a.yaml",
            "name",
        ),
    )


def test_two_producers_of_one_dataset(folder: Path) -> None:
    """A dataset has one producer; the second is an error naming the first."""
    write(folder, "a.yaml", reads_file("shared"))
    write(folder, "b.yaml", reads_file("shared"))
    assert problems_of(folder) == (
        Problem(
            B,
            4,
            12,
            "dataset 'shared' is already produced by pipeline 'a' (deployments/a.yaml); "
            "a dataset has one producer",
            "destination.dataset",
        ),
    )


def test_input_nobody_produces(folder: Path) -> None:
    """An input dataset with no producer is an error, with did-you-mean for a near name."""
    write(folder, "a.yaml", reads_file("flights"))
    write(folder, "b.yaml", reads_dataset("flight", "b"))
    write(
        folder,
        "c.yaml",
        """
        sources:
          w:
            dataset: weather
          f:
            dataset: flights
        transform:
          sql: select 1
        destination:
          dataset: c
        """,
    )
    assert problems_of(folder) == (
        Problem(
            B,
            2,
            12,
            f"no pipeline produces dataset 'flight' {NOT_EXTERNAL}; did you mean 'flights'?",
            "source.dataset",
        ),
        Problem(
            C, 3, 14, f"no pipeline produces dataset 'weather' {NOT_EXTERNAL}", "sources.w.dataset"
        ),
    )


def test_external_input_needs_no_producer(folder: Path) -> None:
    """A dataset declared `external: true` once may be read without a producer."""
    write(folder, "a.yaml", reads_dataset("landed", "a", external=True))
    write(folder, "b.yaml", reads_dataset("landed", "b"))
    project = load(folder)
    assert project.external_datasets == frozenset({"landed"})
    assert project.upstream(project.get("b")) == []


def test_external_dataset_that_a_pipeline_produces(folder: Path) -> None:
    """`external: true` on a dataset some pipeline produces is an error naming the producer."""
    write(folder, "a.yaml", reads_file("flights"))
    write(folder, "b.yaml", reads_dataset("flights", "b", external=True))
    assert problems_of(folder) == (
        Problem(
            B,
            2,
            12,
            "dataset 'flights' is declared external but pipeline 'a' produces it",
            "source.dataset",
        ),
    )


def test_reader_of_an_invalid_producer_gets_no_second_error(folder: Path) -> None:
    """Only the broken producer is reported, not its readers' missing-producer errors."""
    write(folder, "a.yaml", reads_file("flights") + "owner: [x]\n")
    write(folder, "b.yaml", reads_dataset("flights", "b"))
    assert problems_of(folder) == (Problem(A, 5, 8, "Input should be a valid string", "owner"),)


def test_cycle_of_two_pipelines(folder: Path) -> None:
    """Two pipelines reading each other's dataset: both report the cycle at that input."""
    write(folder, "a.yaml", reads_dataset("b", "a"))
    write(folder, "b.yaml", reads_dataset("a", "b"))
    message = "the dataset graph has a cycle: data flows a -> b -> a"
    assert problems_of(folder) == (
        Problem(A, 2, 12, message, "source.dataset"),
        Problem(B, 2, 12, message, "source.dataset"),
    )


def test_cycle_of_three_pipelines(folder: Path) -> None:
    """A cycle across three pipelines prints the whole cycle in each of them."""
    write(folder, "a.yaml", reads_dataset("c", "a"))
    write(folder, "b.yaml", reads_dataset("a", "b"))
    write(
        folder,
        "c.yaml",
        """
        sources:
          up:
            dataset: b
          raw:
            path: in/raw.csv
        transform:
          sql: select * from up join raw using (id)
        destination:
          dataset: c
        """,
    )
    message = "the dataset graph has a cycle: data flows a -> b -> c -> a"
    assert [p.format() for p in problems_of(folder)] == [
        f"{A}:2:12: error: source.dataset: {message}",
        f"{B}:2:12: error: source.dataset: {message}",
        f"{C}:3:14: error: sources.up.dataset: {message}",
    ]


def test_every_cycle_is_reported(folder: Path) -> None:
    """Separate cycles (here a self-loop and a pair) are all reported at once."""
    write(folder, "a.yaml", reads_dataset("a", "a"))
    write(folder, "b.yaml", reads_dataset("c", "b"))
    write(folder, "c.yaml", reads_dataset("b", "c"))
    assert sorted(p.message for p in problems_of(folder)) == [
        "the dataset graph has a cycle: data flows a -> a",
        "the dataset graph has a cycle: data flows b -> c -> b",
        "the dataset graph has a cycle: data flows b -> c -> b",
    ]


def test_problems_of_all_files_are_collected_and_sorted(folder: Path) -> None:
    """One ConfigError carries every file's problems, sorted by path then line."""
    write(
        folder,
        "b.yaml",
        """
        source:
          path: /etc/passwd
        destination:
          dataset: B
        """,
    )
    write(
        folder,
        "a.yaml",
        """
        sorces:
          x:
            path: in/x.csv
        destination:
          dataset: a
        schedule:
          interval: soon
        """,
    )
    write(folder, "c.yaml", reads_dataset("missing", "c"))
    with pytest.raises(ConfigError) as info:
        load(folder)
    assert str(info.value).splitlines() == [
        f"{A}:1:1: error: sorces: unknown key 'sorces'; did you mean 'sources'?",
        f"{A}:7:13: error: schedule.interval: 'soon' is not a duration such as 30s, 15m, 2h or 1d",
        (
            f"{B}:2:9: error: source.path: '/etc/passwd' is absolute; local paths are relative to "
            "the data root (use a file:// URL to read elsewhere)"
        ),
        f"{B}:4:12: error: destination.dataset: 'B' is not a valid name: {NAME_RULE}",
        f"{C}:2:12: error: source.dataset: no pipeline produces dataset 'missing' {NOT_EXTERNAL}",
    ]


# --------------------------------------------------------------------------------------------
# Durations and retries


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        (1.5, 1.5),
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("1w", 604_800),
        ("500ms", 0.5),
        (" 1h 30m ", 5400),
        ("1.5h", 5400),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    """Numbers are seconds; text is a run of <number><unit> with ms, s, m, h, d or w."""
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "'soon' is not a duration such as 30s, 15m, 2h or 1d"),
        (True, "True is not a duration such as 30s, 15m, 2h or 1d"),
        (False, "False is not a duration such as 30s, 15m, 2h or 1d"),
        ("", "'' is not a duration such as 30s, 15m, 2h or 1d"),
        ("90", "'90' is not a duration such as 30s, 15m, 2h or 1d"),
        ("1h30", "'1h30' is not a duration such as 30s, 15m, 2h or 1d"),
        ("-5s", "'-5s' is not a duration such as 30s, 15m, 2h or 1d"),
        (float("nan"), "nan is not a duration such as 30s, 15m, 2h or 1d"),
        (float("inf"), "inf is not a duration such as 30s, 15m, 2h or 1d"),
        (10**20, f"{10**20!r} is too long a duration"),
    ],
)
def test_parse_duration_rejects(value: object, message: str) -> None:
    """Text that is not a duration, booleans and non-finite or huge numbers are refused."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(value)


def test_parse_duration_passes_other_values_through() -> None:
    """A timedelta (or any other type) is left for pydantic to judge."""
    delta = timedelta(minutes=3)
    assert parse_duration(delta) is delta
    assert parse_duration(None) is None


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        (Retries(), []),
        (Retries(attempts=3, delay=timedelta(seconds=10)), [10.0, 10.0, 10.0]),
        (
            Retries(attempts=4, delay=timedelta(seconds=2), backoff="exponential"),
            [2.0, 4.0, 8.0, 16.0],
        ),
        (
            Retries.model_validate({"attempts": 2, "delay": "1m", "backoff": "exponential"}),
            [60.0, 120.0],
        ),
    ],
    ids=["none", "constant", "exponential", "from-text"],
)
def test_retries_delays_seconds(retries: Retries, expected: list[float]) -> None:
    """Constant backoff repeats the delay; exponential doubles it after each attempt."""
    assert retries.delays_seconds() == expected
