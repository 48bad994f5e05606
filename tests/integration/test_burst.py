"""Many updates at once: one consumer's runs created in bulk, and a burst announced through an
``Announcer``, whose runs are created in the background; one run per input state either way."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.states import Failed
from tests.helpers import write_project
from tests.integration.conftest import project_settings
from tests.integration.test_data_aware import _deploy, _drain, _first_state, _land
from tests.integration.test_exactly_once import _runs

from flowfactory.config import Project
from flowfactory.data import DataRoot
from flowfactory.orchestration import (
    Announcer,
    ConsumerRun,
    Outcome,
    announce_update,
    announce_updates,
)
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

# More than one bulk request's worth (50), so that a burst is split.
PARTITIONS = 60


def _consumer_project(tmp_path: Path, stack: LocalStack) -> tuple[str, Settings, Project]:
    """`{p}_copy` runs for each month of the external `{p}_src`, in a pool no worker serves:
    its runs stay Scheduled, and only their number and what they show matter."""
    p = "b" + uuid.uuid4().hex[:8]
    root = write_project(
        tmp_path,
        {
            f"deployments/{p}_copy.yaml": f"""\
name: {p}_copy
source: {{dataset: {p}_src, external: true}}
destination: {{dataset: {p}_out, partition_by: [month], key: [id]}}
trigger: {{on: [{p}_src]}}
work_pool: {p}-idle
"""
        },
    )
    settings = project_settings(root, stack)
    project = _deploy(settings)
    for month in range(1, PARTITIONS + 2):
        _land(settings, f"{p}_src", {"id": [1], "month": [month]}, f"month={month}")
    return p, settings, project


def _runs_by_partition(deployment: str) -> dict[str, list[FlowRun]]:
    found: dict[str, list[FlowRun]] = {}
    for run in asyncio.run(_runs(deployment)):
        found.setdefault(run.parameters["partition"], []).append(run)
    return found


async def _fail(run_id: uuid.UUID) -> None:
    async with get_client() as client:
        await client.set_flow_run_state(run_id, Failed(message="test"), force=True)


def test_several_runs_of_one_consumer_are_created_in_bulk_once_each(
    tmp_path: Path, stack: LocalStack
) -> None:
    """61 updates in one call: 60 runs (two bulk requests), the repeat gets the same run; then
    a failed run is scheduled again, the others are kept, a new partition gets its run."""
    p, settings, project = _consumer_project(tmp_path, stack)
    data = DataRoot(settings.data_root_url)
    months = [f"month={m}" for m in range(1, PARTITIONS + 1)]
    updates = [(f"{p}_src", month, {}) for month in [*months, "month=1"]]

    first = announce_updates(project, data, updates)

    outcomes = [r.outcome for r in first]
    assert outcomes == [Outcome.created] * PARTITIONS + [Outcome.existing], first
    assert first[-1].flow_run == first[0].flow_run
    runs = _runs_by_partition(f"pipeline/{p}_copy")
    assert sorted(runs) == sorted(months)
    assert all(len(found) == 1 for found in runs.values()), runs
    assert {found[0].id for found in runs.values()} == {r.flow_run for r in first}
    # What the UI shows of each: its name, its trigger tag, its first state's message.
    (run,) = runs["month=7"]
    assert run.name == f"{p}_copy[month=7]"
    assert f"trigger:{p}_src" in run.tags
    assert asyncio.run(_first_state(run)).message == f"{p}_src[month=7] updated"

    (failed,) = runs["month=2"]
    asyncio.run(_fail(failed.id))
    again = announce_updates(
        project,
        data,
        [(f"{p}_src", m, {}) for m in ("month=1", "month=2", "month=3", f"month={PARTITIONS + 1}")],
    )
    _drain()

    assert [r.outcome for r in again] == [
        Outcome.existing,
        Outcome.restarted,
        Outcome.existing,
        Outcome.created,
    ], again
    assert again[1].flow_run == failed.id
    runs = _runs_by_partition(f"pipeline/{p}_copy")
    assert len(runs) == PARTITIONS + 1
    assert all(len(found) == 1 for found in runs.values())
    restarted = runs["month=2"][0].state
    assert restarted is not None
    assert restarted.name == "AwaitingRetry", restarted


def _burst(
    project: Project, data: DataRoot, dataset: str, months: list[str], into: list[ConsumerRun]
) -> None:
    with Announcer(project, data) as announcer:
        for month in months:
            announcer.update(dataset, month, {"test": "burst"})
    into.extend(announcer.started)


def test_two_announcers_racing_through_a_burst_create_one_run_per_state(
    tmp_path: Path, stack: LocalStack
) -> None:
    """Two announcers announce the same 60 updates back to back, at the same time, one in the
    reverse order: 60 runs, each created by exactly one of them; announcing again creates none."""
    p, settings, project = _consumer_project(tmp_path, stack)
    data = DataRoot(settings.data_root_url)
    months = [f"month={m}" for m in range(1, PARTITIONS + 1)]
    started: list[list[ConsumerRun]] = [[], []]
    racers = [  # each with the test's Prefect settings (the server to talk to)
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(_burst, project, data, f"{p}_src", order, into),
        )
        for order, into in zip((months, months[::-1]), started, strict=True)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=180)
    _drain()

    both = started[0] + started[1]
    assert len(both) == 2 * PARTITIONS
    assert {r.outcome for r in both} <= {Outcome.created, Outcome.existing}, both
    created = Counter(r.label for r in both if r.outcome is Outcome.created)
    assert created == Counter({f"{p}_copy[{m}]": 1 for m in months}), created
    runs = _runs_by_partition(f"pipeline/{p}_copy")
    assert sorted(runs) == sorted(months)
    assert all(len(found) == 1 for found in runs.values()), runs
    assert {found[0].id for found in runs.values()} == {r.flow_run for r in both}

    again = announce_update(project, data, f"{p}_src", "month=9", {})
    assert [(r.label, r.outcome) for r in again] == [(f"{p}_copy[month=9]", Outcome.existing)]
