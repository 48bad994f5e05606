"""Unit tests for `trigger:`, `sla:` and `destination.announce` of pipeline files (config)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from flowfactory.config import Deadline, Project, Sla, Trigger, load_project
from flowfactory.errors import ConfigError, Problem
from flowfactory.settings import Settings

A = "deployments/a.yaml"
NAME_RULE = "use lowercase letters, digits and _, starting with a letter, at most 63 characters"
# Reads the external dataset `flights` into `a`; whatever follows starts at line 6.
READS_FLIGHTS = "source:\n  dataset: flights\n  external: true\ndestination:\n  dataset: a\n"
TRIGGER_HINT = "(name a file source with external_dataset: to trigger on it)"
SLA_EMPTY = "an SLA needs at least one of max_duration, freshness or deadline"


@pytest.fixture
def folder(tmp_path: Path, project_dir: Path) -> Path:
    """An empty deployments/ folder in a project that is the working directory."""
    path = tmp_path / "deployments"
    path.mkdir()
    return path


def load(folder: Path, text: str) -> Project:
    """Load a project whose only pipeline file is ``a.yaml`` holding ``text``."""
    (folder / "a.yaml").write_text(text, encoding="utf-8")
    return load_project(folder, Settings(project_dir=folder.parent))


def problems_of(folder: Path, text: str) -> tuple[Problem, ...]:
    """The problems loading ``a.yaml`` holding ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        load(folder, text)
    return info.value.problems


# --------------------------------------------------------------------------------------------
# trigger:


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            READS_FLIGHTS + "trigger:\n  on: [weather]\n",
            Problem(
                A,
                7,
                8,
                "trigger.on names 'weather', which is not an input; "
                f"the inputs are 'flights' {TRIGGER_HINT}",
                "trigger.on[0]",
            ),
        ),
        (
            "source:\n  path: in/x.csv\ndestination:\n  dataset: a\ntrigger: {on: [x]}\n",
            Problem(
                A,
                5,
                16,
                f"trigger.on names 'x', which is not an input; the inputs are none {TRIGGER_HINT}",
                "trigger.on[0]",
            ),
        ),
        (
            (
                "sources:\n  f:\n    path: in/x.csv\n"
                "  g:\n    dataset: flights\n    external: true\n"
                "transform:\n  sql: select 1\ndestination:\n  dataset: a\n"
                "trigger: {on: [x, flights, y]}\n"
            ),
            Problem(
                A,
                11,
                16,
                "trigger.on names 'x', 'y', which are not inputs; "
                f"the inputs are 'flights' {TRIGGER_HINT}",
                "trigger.on[0]",
            ),
        ),
        (
            READS_FLIGHTS + "trigger:\n  on: [flights, flights]\n",
            Problem(A, 7, 7, "dataset listed twice: flights", "trigger.on"),
        ),
        (
            READS_FLIGHTS + "trigger:\n  on: [flights]\n  require: most\n",
            Problem(A, 8, 12, "Input should be 'all' or 'any'", "trigger.require"),
        ),
        (
            READS_FLIGHTS + "trigger:\n  on: [flights]\n  partition: each\n",
            Problem(A, 8, 14, "Input should be 'same' or 'all'", "trigger.partition"),
        ),
        (
            READS_FLIGHTS + "trigger:\n  on: []\n",
            Problem(
                A, 7, 7, "List should have at least 1 item after validation, not 0", "trigger.on"
            ),
        ),
        (
            READS_FLIGHTS + "trigger: {}\n",
            Problem(A, 6, 10, "required key is missing", "trigger.on"),
        ),
        (
            READS_FLIGHTS + "trigger: {on: [Flights]}\n",
            Problem(A, 6, 16, f"'Flights' is not a valid name: {NAME_RULE}", "trigger.on[0]"),
        ),
        (
            READS_FLIGHTS + "trigger:\n  on: [flights]\n  requires: all\n",
            Problem(A, 8, 3, "unknown key 'requires'; did you mean 'require'?", "trigger.requires"),
        ),
    ],
    ids=[
        "on-not-an-input",
        "on-with-no-named-input",
        "on-two-not-inputs",
        "on-repeated",
        "require-unknown",
        "partition-unknown",
        "on-empty",
        "on-missing",
        "on-bad-name",
        "unknown-key",
    ],
)
def test_bad_trigger(folder: Path, text: str, expected: Problem) -> None:
    """A trigger must name inputs once each and use known require/partition values."""
    assert problems_of(folder, text) == (expected,)


def test_trigger_defaults(folder: Path) -> None:
    """`trigger: {on: [...]}` means require: all, partition: same."""
    config = load(folder, READS_FLIGHTS + "trigger: {on: [flights]}\n").get("a").config
    assert config.trigger == Trigger(on=["flights"], require="all", partition="same")


def test_trigger_on_a_file_sources_external_dataset(folder: Path) -> None:
    """A file source named with external_dataset can be triggered on, like a dataset source."""
    text = (
        "source:\n  path: landing/*.csv\n  external_dataset: landing\n"
        "destination:\n  dataset: a\n"
        "trigger: {on: [landing], require: any, partition: all}\n"
    )
    project = load(folder, text)
    config = project.get("a").config
    assert config.trigger == Trigger(on=["landing"], require="any", partition="all")
    assert config.input_dataset_names == {"landing": "source"}
    assert config.input_datasets == []
    assert project.external_datasets == frozenset()


def test_trigger_on_several_inputs(folder: Path) -> None:
    """`on` may name dataset sources and named file sources together, in any order."""
    text = (
        "sources:\n"
        "  f:\n    path: in/x.csv\n    external_dataset: landing\n"
        "  g:\n    dataset: flights\n    external: true\n"
        "transform:\n  sql: select 1\ndestination:\n  dataset: a\n"
        "trigger: {on: [landing, flights]}\n"
    )
    config = load(folder, text).get("a").config
    assert config.input_dataset_names == {"landing": "f", "flights": "g"}
    assert config.trigger is not None
    assert config.trigger.on == ["landing", "flights"]


@pytest.mark.parametrize("name", ["Landing", "../x", "a-b"])
def test_external_dataset_name_is_checked(folder: Path, name: str) -> None:
    """external_dataset follows the dataset name rule."""
    text = f"source:\n  path: in/x.csv\n  external_dataset: '{name}'\ndestination:\n  dataset: a\n"
    assert problems_of(folder, text) == (
        Problem(A, 3, 21, f"{name!r} is not a valid name: {NAME_RULE}", "source.external_dataset"),
    )


# --------------------------------------------------------------------------------------------
# sla:


@pytest.mark.parametrize(
    ("sla", "expected"),
    [
        ("sla: {}\n", Problem(A, 6, 6, SLA_EMPTY, "sla")),
        ("sla:\n  notify: slack\n", Problem(A, 7, 3, SLA_EMPTY, "sla")),
        (
            "sla:\n  max_duration: 5s\n",
            Problem(A, 7, 17, "must be at least 10s", "sla.max_duration"),
        ),
        ("sla:\n  freshness: 9\n", Problem(A, 7, 14, "must be at least 10s", "sla.freshness")),
        (
            "sla:\n  freshness: soon\n",
            Problem(
                A, 7, 14, "'soon' is not a duration such as 30s, 15m, 2h or 1d", "sla.freshness"
            ),
        ),
        (
            "sla:\n  deadline:\n    cron: '61 * * * *'\n",
            Problem(A, 8, 11, "'61 * * * *' is not a valid cron expression", "sla.deadline.cron"),
        ),
        (
            "sla:\n  deadline:\n    cron: 'H 7 * * *'\n",
            Problem(A, 8, 11, "'H 7 * * *' is not a valid cron expression", "sla.deadline.cron"),
        ),
        (
            "sla:\n  deadline:\n    cron: '0 7 * * *'\n    timezone: Mars/Olympus\n",
            Problem(A, 9, 15, "unknown time zone 'Mars/Olympus'", "sla.deadline.timezone"),
        ),
        (
            "sla:\n  deadline: {timezone: UTC}\n",
            Problem(A, 7, 13, "required key is missing", "sla.deadline.cron"),
        ),
        (
            "sla:\n  deadlin: {cron: '0 7 * * *'}\n",
            Problem(A, 7, 3, "unknown key 'deadlin'; did you mean 'deadline'?", "sla.deadlin"),
        ),
    ],
    ids=[
        "empty",
        "notify-only",
        "max-duration-5s",
        "freshness-9",
        "freshness-words",
        "deadline-cron-range",
        "deadline-cron-hashed",
        "deadline-timezone",
        "deadline-no-cron",
        "unknown-key",
    ],
)
def test_bad_sla(folder: Path, sla: str, expected: Problem) -> None:
    """An SLA sets something, at least 10 s long, with a valid deadline cron and time zone."""
    assert problems_of(folder, READS_FLIGHTS + sla) == (expected,)


def test_sla_loads_typed(folder: Path) -> None:
    """Durations parse as timedeltas and the deadline keeps its cron and time zone."""
    text = READS_FLIGHTS + (
        "sla:\n  max_duration: 10s\n  freshness: 1d12h\n"
        "  deadline: {cron: '0 7 * * 1-5', timezone: Europe/Paris}\n  notify: slack\n"
    )
    assert load(folder, text).get("a").config.sla == Sla(
        max_duration=timedelta(seconds=10),
        freshness=timedelta(hours=36),
        deadline=Deadline(cron="0 7 * * 1-5", timezone="Europe/Paris"),
        notify="slack",
    )


def test_deadline_timezone_defaults_to_utc(folder: Path) -> None:
    """A deadline without a time zone is in UTC."""
    sla = load(folder, READS_FLIGHTS + "sla: {deadline: {cron: '0 7 * * *'}}\n").get("a").config.sla
    assert sla is not None
    assert sla.deadline == Deadline(cron="0 7 * * *", timezone="UTC")


# --------------------------------------------------------------------------------------------
# destination.announce


@pytest.mark.parametrize(("value", "expected"), [(None, "changed"), ("always", "always")])
def test_destination_announce(folder: Path, value: str | None, expected: str) -> None:
    """Consumers hear of changed partitions by default, of every write with `always`."""
    text = READS_FLIGHTS + (f"  announce: {value}\n" if value else "")
    assert load(folder, text).get("a").config.destination.announce == expected


def test_destination_announce_unknown(folder: Path) -> None:
    """`announce` is changed or always."""
    assert problems_of(folder, READS_FLIGHTS + "  announce: never\n") == (
        Problem(A, 6, 13, "Input should be 'changed' or 'always'", "destination.announce"),
    )
