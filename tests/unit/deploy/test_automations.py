"""Unit tests for triggers, SLA automations, events and SLA checks (no Prefect server)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from prefect.events import DeploymentEventTrigger, ResourceSpecification
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.events.schemas.labelling import LabelDiver
from prefect.server.utilities.user_templates import (
    render_user_template_sync,
    validate_user_template,
)
from tests.helpers import load_pipelines as load

from flowfactory.config import Destination, Project
from flowfactory.data import DataRoot, write_dataset
from flowfactory.deploy import (
    ScheduleSpec,
    TriggerSpec,
    deployment_spec,
    project_specs,
    render_prefect_yaml,
    sla_schedules,
    sla_triggers,
    system_deployments,
)
from flowfactory.orchestration import check_sla, events
from flowfactory.scheduling import Readiness
from flowfactory.settings import Settings

PARTITION_TEMPLATE = "{{ event.resource.get('dataset.partition', '') }}"
ROUTER_DATASET_TEMPLATE = "{{ event.resource.id | replace('dataset.', '', 1) }}"
TERMINAL = [
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Cancelled",
]
READS_FLIGHTS = "source:\n  dataset: flights\n  external: true\ndestination:\n  dataset: {name}\n"
TRIGGER = "trigger: {on: [flights]}\n"
SLA = "sla: {max_duration: 10m}\n"
INGEST = """
source:
  path: landing/*.csv
  external_dataset: landing
destination:
  dataset: flights
  partition_by: [year, month]
trigger: {on: [landing], require: any}
sla:
  max_duration: 10m
  freshness: 45d
  deadline: {cron: "0 7 * * *", timezone: Europe/Paris}
"""
STATS = "source:\n  dataset: flights\ndestination:\n  dataset: stats\n"


# Each test runs in its own project folder, without FLOWFACTORY_* from the shell.
pytestmark = pytest.mark.usefixtures("project_dir")


def settings(tmp_path: Path) -> Settings:
    """Settings of the project in tmp_path (data under tmp_path/data)."""
    return Settings(project_dir=tmp_path)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """ingest (triggered, every kind of SLA) feeding stats (neither)."""
    return load(tmp_path, ingest=INGEST, stats=STATS)


# --------------------------------------------------------------------------------------------
# Pipeline triggers


def test_a_consumer_deployment_has_no_trigger_of_its_own(project: Project) -> None:
    """Its runs are created by whoever updates its inputs, under keys an automation cannot use."""
    assert deployment_spec(project.get("ingest")).triggers == []


@pytest.mark.parametrize(
    ("template", "labels", "expected"),
    [
        (PARTITION_TEMPLATE, {"dataset.partition": "year=2013/month=1"}, "year=2013/month=1"),
        (PARTITION_TEMPLATE, {}, ""),
        (ROUTER_DATASET_TEMPLATE, {}, "landing"),
    ],
    ids=["partition", "no-partition", "router-dataset"],
)
def test_templates_render_on_the_server(
    template: str, labels: dict[str, str], expected: str
) -> None:
    """Prefect's own template rendering gives the label, or "" when the event lacks it."""
    validate_user_template(template)
    event = ReceivedEvent(
        id=uuid.uuid4(),
        occurred=datetime.now(UTC),
        event="pipeline.ready",
        resource={"prefect.resource.id": "dataset.landing", **labels},
    )
    assert render_user_template_sync(template, {"event": event}) == expected


def test_sla_subject_template_renders_the_flow_run(project: Project) -> None:
    """The max_duration trigger's subject renders as the late flow run's resource id."""
    late, _ = sla_triggers(project.get("ingest"))
    labels = LabelDiver({"prefect.resource.id": "prefect.flow-run.123"})
    subject = late.parameters["subject"]
    validate_user_template(subject)
    assert render_user_template_sync(subject, {"labels": labels}) == "prefect.flow-run.123"


def test_no_sla_no_sla_automations(project: Project) -> None:
    """A pipeline without `sla:` has no SLA triggers or schedules."""
    stats = project.get("stats")
    assert sla_triggers(stats) == []
    assert sla_schedules(stats) == []


# --------------------------------------------------------------------------------------------
# SLA automations


def test_sla_triggers(project: Project) -> None:
    """max_duration and freshness become proactive triggers with exact windows and parameters."""
    assert sla_triggers(project.get("ingest")) == [
        TriggerSpec(
            name="ingest: run longer than 600s",
            posture="Proactive",
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.name": "ingest",
            },
            after=["prefect.flow-run.Running"],
            expect=TERMINAL,
            for_each=["prefect.resource.id"],
            within=600.0,
            parameters={
                "pipeline": "ingest",
                "sla": "max_duration",
                "expected": "600s",
                "subject": "{{ labels.prefect.resource.id | string }}",
            },
        ),
        TriggerSpec(
            name="ingest: flights not updated for 3888000s",
            posture="Proactive",
            match={"prefect.resource.id": "dataset.flights"},
            expect=["dataset.updated"],
            for_each=["prefect.resource.id"],
            within=3_888_000.0,
            parameters={
                "pipeline": "ingest",
                "sla": "freshness",
                "expected": "3888000s",
                "subject": "dataset.flights",
            },
        ),
    ]


@pytest.mark.parametrize(
    ("sla", "expected"),
    [
        ("max_duration: 90", ["ingest: run longer than 90s"]),
        ("max_duration: 10.5", ["ingest: run longer than 10.5s"]),
        ("freshness: 26h", ["ingest: flights not updated for 93600s"]),
        ("deadline: {cron: '0 7 * * *'}", []),
    ],
)
def test_sla_trigger_per_key(tmp_path: Path, sla: str, expected: list[str]) -> None:
    """Each of max_duration and freshness gives one trigger; a deadline gives none."""
    text = INGEST.split("sla:", maxsplit=1)[0] + "sla: {" + sla + "}\n"
    pipeline = load(tmp_path, ingest=text).get("ingest")
    assert [t.name for t in sla_triggers(pipeline)] == expected


def test_sla_schedules(project: Project) -> None:
    """A deadline is a run of the SLA flow at each tick of its cron, in its time zone."""
    assert sla_schedules(project.get("ingest")) == [
        ScheduleSpec(
            cron="0 7 * * *",
            timezone="Europe/Paris",
            parameters={
                "pipeline": "ingest",
                "sla": "deadline",
                "expected": "0 7 * * *",
                "subject": "",
            },
        )
    ]


# --------------------------------------------------------------------------------------------
# flowfactory's own deployments


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("", "", []),
        (TRIGGER, "", ["flowfactory-router", "flowfactory-reconcile"]),
        ("", SLA, ["flowfactory-sla"]),
        (TRIGGER, SLA, ["flowfactory-router", "flowfactory-reconcile", "flowfactory-sla"]),
        (TRIGGER + SLA, "", ["flowfactory-router", "flowfactory-reconcile", "flowfactory-sla"]),
    ],
    ids=["neither", "trigger", "sla", "both-apart", "both-in-one"],
)
def test_system_deployments_only_when_needed(
    tmp_path: Path, a: str, b: str, expected: list[str]
) -> None:
    """Router and reconcile exist when a pipeline has a trigger; the SLA one with an SLA."""
    project = load(
        tmp_path, a=READS_FLIGHTS.format(name="a") + a, b=READS_FLIGHTS.format(name="b") + b
    )
    specs = system_deployments(
        project, project_name="flowfactory", tags=["flowfactory"], work_pool="pool", version="v1"
    )
    assert [s.name for s in specs] == expected
    assert all((s.work_pool, s.version, s.tags) == ("pool", "v1", ["flowfactory"]) for s in specs)


def test_router_and_reconcile(project: Project) -> None:
    """The router hears routed dataset.updated events; reconcile runs every five minutes."""
    router, reconcile, _ = system_deployments(
        project, project_name="flowfactory", tags=[], work_pool="p", version="v"
    )
    assert (router.flow_name, router.entrypoint) == (
        "flowfactory-router",
        "flowfactory.orchestration.flows.dataset_router",
    )
    assert router.schedules == []
    assert router.triggers == [
        TriggerSpec(
            name="external dataset updates",
            match={"prefect.resource.id": "dataset.*", "flowfactory.route": "true"},
            expect=["dataset.updated"],
            parameters={
                "dataset": ROUTER_DATASET_TEMPLATE,
                "partition": PARTITION_TEMPLATE,
            },
        )
    ]
    assert (reconcile.flow_name, reconcile.entrypoint) == (
        "flowfactory-reconcile",
        "flowfactory.orchestration.flows.reconcile",
    )
    assert reconcile.schedules == [ScheduleSpec(interval=300.0, timezone="UTC")]
    assert reconcile.triggers == []


def test_sla_deployment_collects_every_pipelines_slas(tmp_path: Path) -> None:
    """The SLA deployment holds the triggers and deadline schedules of all pipelines."""
    other = (
        STATS.replace("stats", "other") + "sla: {freshness: 1h, deadline: {cron: '0 * * * *'}}\n"
    )
    project = load(tmp_path, ingest=INGEST, other=other)
    *_, sla = system_deployments(
        project, project_name="flowfactory", tags=[], work_pool="p", version="v"
    )
    assert (sla.name, sla.flow_name, sla.entrypoint) == (
        "flowfactory-sla",
        "flowfactory-sla",
        "flowfactory.orchestration.flows.sla_check",
    )
    ingest, other_pipeline = project.get("ingest"), project.get("other")
    assert sla.triggers == [*sla_triggers(ingest), *sla_triggers(other_pipeline)]
    assert sla.schedules == [*sla_schedules(ingest), *sla_schedules(other_pipeline)]


# --------------------------------------------------------------------------------------------
# prefect.yaml


def rendered(project: Project) -> dict[str, dict[str, Any]]:
    """The deployments of the rendered prefect.yaml, by name."""
    return {d["name"]: d for d in yaml.safe_load(render_prefect_yaml(project))["deployments"]}


def test_render_contains_the_triggers(project: Project) -> None:
    """prefect.yaml carries every trigger, and they read back as the specs wrote them."""
    document = rendered(project)
    assert list(document) == [
        "ingest",
        "stats",
        "flowfactory-router",
        "flowfactory-reconcile",
        "flowfactory-sla",
    ]
    assert "triggers" not in document["stats"]
    assert "triggers" not in document["flowfactory-reconcile"]
    for spec in project_specs(project):
        assert document[spec.name].get("triggers", []) == [
            t.as_prefect_yaml() for t in spec.triggers
        ]
    assert "triggers" not in document["ingest"]  # its producers create its runs
    router = document["flowfactory-router"]["triggers"]
    assert [t["expect"] for t in router] == [["dataset.updated"]]
    assert document["flowfactory-sla"]["schedules"] == [
        {
            "cron": "0 7 * * *",
            "timezone": "Europe/Paris",
            "parameters": {
                "pipeline": "ingest",
                "sla": "deadline",
                "expected": "0 7 * * *",
                "subject": "",
            },
        }
    ]


def test_rendered_triggers_are_prefect_triggers(project: Project) -> None:
    """Each rendered trigger builds Prefect's own DeploymentEventTrigger, unchanged."""
    triggers = [t for d in rendered(project).values() for t in d.get("triggers", [])]
    assert len(triggers) == 3  # the router's and two SLA triggers
    for entry in triggers:
        assert entry["type"] == "event"
        fields = {k: v for k, v in entry.items() if k != "type"}
        trigger = DeploymentEventTrigger(**fields)
        assert (trigger.name, trigger.posture.value) == (entry["name"], entry["posture"])
        assert trigger.within == timedelta(seconds=entry["within"])
        assert trigger.expect == set(entry["expect"])
        assert trigger.after == set(entry.get("after", []))
        assert trigger.for_each == set(entry.get("for_each", []))
        assert isinstance(trigger.match, ResourceSpecification)
        assert isinstance(trigger.match_related, ResourceSpecification)
        assert trigger.match.root == entry["match"]
        assert trigger.match_related.root == entry.get("match_related", {})
        assert trigger.parameters == entry["parameters"]


# --------------------------------------------------------------------------------------------
# Events


def test_schema_fingerprint_is_stable() -> None:
    """The same schema gives the same 16-hex fingerprint, whichever object holds it."""
    schema = {"id": pl.Int64(), "at": pl.Datetime("us", "UTC")}
    first = events.schema_fingerprint(schema)
    assert first == events.schema_fingerprint(dict(schema))
    assert first == events.schema_fingerprint(pl.Schema(schema))
    assert len(first) == 16
    assert int(first, 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        {"id": pl.Int32(), "at": pl.Datetime("us", "UTC")},
        {"id": pl.Int64(), "at": pl.Datetime("us", "Europe/Paris")},
        {"id": pl.Int64(), "at": pl.Datetime("us")},
        {"id": pl.Int64(), "at": pl.Datetime("ms", "UTC")},
        {"key": pl.Int64(), "at": pl.Datetime("us", "UTC")},
        {"at": pl.Datetime("us", "UTC"), "id": pl.Int64()},
    ],
    ids=["dtype", "time-zone", "no-time-zone", "precision", "name", "order"],
)
def test_schema_fingerprint_changes(changed: Mapping[str, pl.DataType]) -> None:
    """A different dtype, time zone, precision, column name or order changes the fingerprint."""
    schema = {"id": pl.Int64(), "at": pl.Datetime("us", "UTC")}
    assert events.schema_fingerprint(changed) != events.schema_fingerprint(schema)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("flights", "year=2013/month=1"),
            {
                "prefect.resource.id": "dataset.flights",
                "prefect.resource.name": "flights",
                "dataset.partition": "year=2013/month=1",
            },
        ),
        (
            ("flights",),
            {
                "prefect.resource.id": "dataset.flights",
                "prefect.resource.name": "flights",
                "dataset.partition": "",
            },
        ),
    ],
    ids=["partition", "all"],
)
def test_dataset_resource(args: tuple[str, ...], expected: dict[str, str]) -> None:
    """A dataset resource is dataset.<name>, with its partition as a label ("" for all)."""
    assert events.dataset_resource(*args) == expected


def test_pipeline_resource() -> None:
    """A pipeline resource is pipeline.<name>."""
    assert events.pipeline_resource("stats") == {
        "prefect.resource.id": "pipeline.stats",
        "prefect.resource.name": "stats",
    }


Emitted = list[tuple[str, dict[str, str], dict[str, object], str | None]]


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Emitted:
    """Events recorded instead of sent: (event, resource, payload, event_id)."""
    calls: Emitted = []

    def record(
        event: str,
        resource: dict[str, str],
        payload: Mapping[str, object],
        *,
        event_id: str | None = None,
        related: list[dict[str, str]] | None = None,
    ) -> None:
        calls.append((event, resource, dict(payload), event_id))
        related_to.append(related)

    related_to: list[list[dict[str, str]] | None] = []
    monkeypatch.setattr(events, "emit", record)
    monkeypatch.setattr(events, "_recorded_related", related_to, raising=False)

    monkeypatch.setattr(events, "emit", record)
    return calls


def test_announce_ready(emitted: Emitted) -> None:
    """pipeline.ready carries partition and state labels, and the state's event id."""
    state = Readiness("join", "year=2013/month=1", {"flights": "1:2"})
    events.announce_ready(state, {"dataset": "flights"})
    assert emitted == [
        (
            "pipeline.ready",
            {
                "prefect.resource.id": "pipeline.join",
                "prefect.resource.name": "join",
                "dataset.partition": "year=2013/month=1",
                "flowfactory.state": state.state,
            },
            {"versions": {"flights": "1:2"}, "cause": {"dataset": "flights"}},
            state.event_id,
        )
    ]


# --------------------------------------------------------------------------------------------
# SLA checks

NOW = datetime(2024, 1, 2, 7, 5, tzinfo=UTC)  # five minutes after the 07:00 UTC tick


def deadline_project(tmp_path: Path, timezone: str = "UTC") -> None:
    """A pipeline `stats` reading `flights`, due by 07:00 in ``timezone`` every day."""
    sla = f"sla: {{deadline: {{cron: '0 7 * * *', timezone: {timezone}}}}}\n"
    load(tmp_path, stats=READS_FLIGHTS.format(name="stats") + sla)


def land_flights(tmp_path: Path, when: datetime) -> None:
    """Write dataset `flights` with its file last modified at ``when``."""
    root = DataRoot(str(tmp_path / "data"))
    frame = pl.DataFrame({"year": [2013], "month": [1], "id": [1]})
    (written,) = write_dataset(root, frame, Destination(dataset="flights", partition_by=["year"]))
    for file in written.files:
        os.utime(file, (when.timestamp(), when.timestamp()))


def sla_check(tmp_path: Path, sla: str = "deadline", now: datetime = NOW, **kwargs: str) -> bool:
    """Run check_sla for pipeline `stats` of the project in tmp_path."""
    expected = kwargs.pop("expected", "0 7 * * *")
    return asyncio.run(
        check_sla("stats", sla, expected, settings=settings(tmp_path), now=now, **kwargs)
    )


@pytest.mark.parametrize(
    "landed",
    [datetime(2024, 1, 1, 7, 0, tzinfo=UTC), datetime(2024, 1, 2, 6, 59, tzinfo=UTC)],
    ids=["at-previous-tick", "just-before-tick"],
)
def test_deadline_met(tmp_path: Path, emitted: Emitted, landed: datetime) -> None:
    """Inputs updated since the previous tick meet the deadline: nothing is emitted."""
    deadline_project(tmp_path)
    land_flights(tmp_path, landed)
    assert sla_check(tmp_path) is False
    assert emitted == []


@pytest.mark.parametrize(
    ("landed", "actual"),
    [
        (
            datetime(2024, 1, 1, 6, 59, tzinfo=UTC),
            "inputs last updated 2024-01-01T06:59:00+00:00, not since 2024-01-01T07:00:00+00:00",
        ),
        (None, "inputs last updated never, not since 2024-01-01T07:00:00+00:00"),
    ],
    ids=["before-previous-tick", "no-data"],
)
def test_deadline_missed(
    tmp_path: Path, emitted: Emitted, landed: datetime | None, actual: str
) -> None:
    """Inputs not updated since the previous tick miss the deadline: sla.missed is emitted."""
    deadline_project(tmp_path)
    if landed is not None:
        land_flights(tmp_path, landed)
    assert sla_check(tmp_path) is True
    assert emitted == [
        (
            "sla.missed",
            {"prefect.resource.id": "pipeline.stats", "prefect.resource.name": "stats"},
            {"sla": "deadline", "expected": "0 7 * * *", "actual": actual, "subject": ""},
            None,
        )
    ]


def test_deadline_ticks_in_its_time_zone(tmp_path: Path, emitted: Emitted) -> None:
    """07:00 in Paris is 06:00 UTC in winter: the window starts at the previous Paris tick."""
    deadline_project(tmp_path, "Europe/Paris")
    land_flights(tmp_path, datetime(2024, 1, 1, 6, 30, tzinfo=UTC))  # 07:30 in Paris
    assert sla_check(tmp_path, now=datetime(2024, 1, 2, 6, 5, tzinfo=UTC)) is False
    assert sla_check(tmp_path, now=datetime(2024, 1, 3, 6, 5, tzinfo=UTC)) is True
    ((_, _, payload, _),) = emitted
    assert payload["actual"] == (
        "inputs last updated 2024-01-01T06:30:00+00:00, not since 2024-01-02T07:00:00+01:00"
    )


def test_deadline_counts_landing_files(tmp_path: Path, emitted: Emitted) -> None:
    """Files a pipeline reads are inputs too: fresh landing files meet the deadline."""
    text = INGEST.split("sla:", maxsplit=1)[0] + "sla: {deadline: {cron: '0 7 * * *'}}\n"
    load(tmp_path, stats=text.replace("dataset: flights", "dataset: stats_out"))
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    for name, when in [("a.csv", datetime(2023, 12, 1, tzinfo=UTC)), ("b.csv", NOW)]:
        (landing / name).write_text("id\n1\n")
        os.utime(landing / name, (when.timestamp(), when.timestamp()))
    assert sla_check(tmp_path) is False
    (landing / "b.csv").unlink()
    assert sla_check(tmp_path) is True
    ((_, _, payload, _),) = emitted
    assert payload["actual"] == (
        "inputs last updated 2023-12-01T00:00:00+00:00, not since 2024-01-01T07:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("subject", "actual"),
    [
        ("prefect.flow-run.123", "prefect.flow-run.123: no completion within 600s"),
        ("", "stats: no completion within 600s"),
    ],
)
def test_fired_sla_is_a_miss(tmp_path: Path, emitted: Emitted, subject: str, actual: str) -> None:
    """A max_duration or freshness check runs because its automation fired: always a miss."""
    load(tmp_path, stats=READS_FLIGHTS.format(name="stats") + SLA)
    assert sla_check(tmp_path, "max_duration", expected="600s", subject=subject) is True
    assert emitted == [
        (
            "sla.missed",
            events.pipeline_resource("stats"),
            {"sla": "max_duration", "expected": "600s", "actual": actual, "subject": subject},
            None,
        )
    ]
