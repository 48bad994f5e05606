"""Data-aware scheduling on a real Prefect server: producers start consumers through events."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import polars as pl
import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
)
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments import run_deployment
from prefect.events import Event
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.worker import EventsWorker
from tests.helpers import free_port, manifest_of, partition_files, read_partition, write_project
from tests.integration.conftest import project_settings

from flowfactory.config import Destination, Project, load_project
from flowfactory.data import DataRoot, Partition, write_dataset
from flowfactory.deploy import deploy_project, lineage_artifact_key
from flowfactory.orchestration import announce_update, reconcile_project
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

FLOWFACTORY = str(Path(sys.executable).with_name("flowfactory"))
# With the worker polling every 0.5 s, a run started by mistake shows up well within this.
QUIET_SECONDS = 5.0
MONTH_1 = "month=1"


def _prefix() -> str:
    return "d" + uuid.uuid4().hex[:8]


def _write(root: Path, files: dict[str, str]) -> Path:
    """A project with the given files."""
    return write_project(root, files)


def _deploy(settings: Settings) -> Project:
    project = load_project(settings.deployments_dir, settings)
    asyncio.run(deploy_project(project, settings, prune=False))
    return project


def _drain() -> None:
    """Wait until the events emitted from this process have been sent."""
    EventsWorker.drain_all(timeout=30)


def _land(
    settings: Settings, dataset: str, rows: dict[str, list[Any]], partition: str = MONTH_1
) -> None:
    """Write one partition of a dataset as a producer outside flowfactory would (no event)."""
    destination = Destination(dataset=dataset, partition_by=["month"], key=["id"])
    write_dataset(
        DataRoot(settings.data_root_url),
        pl.DataFrame(rows),
        destination,
        Partition.parse(partition),
    )


def _land_and_announce(
    settings: Settings, project: Project, dataset: str, rows: dict[str, list[Any]]
) -> list[str]:
    _land(settings, dataset, rows)
    ready = announce_update(
        project, DataRoot(settings.data_root_url), dataset, MONTH_1, {"source": "test"}
    )
    _drain()
    return [r.pipeline for r in ready]


async def _runs_of(name: str) -> list[FlowRun]:
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(name)
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id])
            )
        )


def _wait_for_runs(name: str, count: int, timeout: float = 120) -> list[FlowRun]:
    """Runs of deployment ``name`` once at least ``count`` exist and all are terminal."""
    deadline = time.monotonic() + timeout
    runs: list[FlowRun] = []
    while time.monotonic() < deadline:
        runs = asyncio.run(_runs_of(name))
        if len(runs) >= count and all(r.state is not None and r.state.is_final() for r in runs):
            return runs
        time.sleep(0.5)
    states = [(r.name, r.state.name if r.state else None) for r in runs]
    raise AssertionError(f"{name}: expected {count} finished run(s) in {timeout:.0f} s: {states}")


def _settled_runs(name: str, count: int) -> list[FlowRun]:
    """Wait for ``count`` finished runs, then a while longer, and return every run there is."""
    _wait_for_runs(name, count)
    time.sleep(QUIET_SECONDS)
    return _wait_for_runs(name, count)


def _by_state(runs: list[FlowRun]) -> dict[str, list[FlowRun]]:
    found: dict[str, list[FlowRun]] = {}
    for run in runs:
        found.setdefault(run.state.name if run.state else "?", []).append(run)
    return found


def _executed(runs: list[FlowRun]) -> list[FlowRun]:
    """Runs that did the work (Skipped runs are Completed too, under another name)."""
    return _by_state(runs).get("Completed", [])


async def _read_events(name: str, resource_prefix: str) -> list[Event]:
    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[name]),
                resource=EventResourceFilter(id_prefix=[resource_prefix]),
            ),
            limit=50,
        )
    return list(page.events)


def _wait_for_events(name: str, resource_prefix: str, timeout: float = 60) -> list[Event]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = asyncio.run(_read_events(name, resource_prefix))
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"no {name} event for {resource_prefix}* within {timeout:.0f} s")


async def _start(name: str, parameters: dict[str, Any], timeout: float) -> FlowRun:
    flow_run: FlowRun = await run_deployment(  # type: ignore[misc]
        name=f"pipeline/{name}", parameters=parameters, timeout=timeout, poll_interval=0.5
    )
    return flow_run


async def _first_state(run: FlowRun) -> State:
    async with get_client() as client:
        states = await client.read_flow_run_states(run.id)
    return min(states, key=lambda state: state.timestamp)


def _run_producer(name: str) -> FlowRun:
    flow_run = asyncio.run(_start(name, {"name": name, "partition": MONTH_1}, timeout=120))
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), flow_run.state
    return flow_run


# ------------------------------------------------------------------------------------------------
# Projects

SUM_SQL = "SELECT month, count(*) AS orders, sum(amount) AS total FROM source GROUP BY month"


def _producer_and_consumer(p: str) -> dict[str, str]:
    """`{p}_load` reads landing CSVs into `{p}_orders`; `{p}_sum` is triggered by it."""
    return {
        f"deployments/{p}_load.yaml": f"""\
name: {p}_load
source: {{path: landing/orders/*.csv}}
destination: {{dataset: {p}_orders, partition_by: [month], key: [id]}}
""",
        f"deployments/{p}_sum.yaml": f"""\
name: {p}_sum
source: {{dataset: {p}_orders}}
transform: {{sql: "{SUM_SQL}"}}
destination: {{dataset: {p}_sums, partition_by: [month], key: [month]}}
trigger: {{on: [{p}_orders]}}
""",
        "data/landing/orders/2024-01.csv": "id,month,amount\n1,1,10\n2,1,5\n3,2,7\n",
    }


JOIN_SQL = "SELECT a.id, a.month, a.amount, b.note FROM a JOIN b ON a.id = b.id"


def _join_of_two(p: str) -> dict[str, str]:
    """`{p}_join` needs the same month of two external datasets `{p}_a` and `{p}_b`."""
    return {
        f"deployments/{p}_join.yaml": f"""\
name: {p}_join
sources:
  a: {{dataset: {p}_a, external: true}}
  b: {{dataset: {p}_b, external: true}}
transform:
  sql: {JOIN_SQL}
destination: {{dataset: {p}_joined, partition_by: [month], key: [id]}}
trigger: {{on: [{p}_a, {p}_b], require: all, partition: same}}
""",
    }


A_ROWS: dict[str, list[Any]] = {"id": [1, 2], "month": [1, 1], "amount": [10.0, 5.0]}
B_ROWS: dict[str, list[Any]] = {"id": [1, 2], "month": [1, 1], "note": ["x", "y"]}


# ------------------------------------------------------------------------------------------------
# 1. A producer run starts its consumer


async def _artifact(key: str) -> str:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_producer_run_starts_the_consumer_for_its_partition(
    tmp_path: Path, stack: LocalStack
) -> None:
    """A producer run leads to one consumer run for the same partition, which writes its output."""
    p = _prefix()
    root = _write(tmp_path, _producer_and_consumer(p))
    settings = project_settings(root, stack)
    _deploy(settings)
    lineage = asyncio.run(_artifact(lineage_artifact_key(settings.project_name)))
    assert lineage.startswith("# Dataset lineage\n\n```mermaid\ngraph LR\n")
    assert f"pipeline_{p}_load --> dataset_{p}_orders" in lineage

    producer = _run_producer(f"{p}_load")

    runs = _settled_runs(f"pipeline/{p}_sum", 1)
    assert len(runs) == 1, _by_state(runs)
    (run,) = runs
    assert run.state is not None
    assert run.state.name == "Completed", run.state
    assert run.parameters["name"] == f"{p}_sum"
    assert run.parameters["partition"] == MONTH_1
    assert run.parameters["state"]
    # Why it started, as the UI shows it: name, tag, first state's message, pipeline.ready.
    assert run.name == f"{p}_sum[{MONTH_1}]"
    assert f"trigger:{p}_orders" in run.tags
    assert (
        run.idempotency_key
        == f"flowfactory.input-state:{p}_sum:{MONTH_1}:{run.parameters['state']}"
    )
    first = asyncio.run(_first_state(run))
    assert first.message == f"{p}_orders[{MONTH_1}] updated by run {producer.name}", first
    (ready,) = _wait_for_events("pipeline.ready", f"pipeline.{p}_sum")
    roles = {r.role: r.id for r in ready.related}
    assert roles["consumer-run"] == f"prefect.flow-run.{run.id}", ready.related
    assert roles["producer-run"] == f"prefect.flow-run.{producer.id}", ready.related
    assert roles["updated-dataset"] == f"dataset.{p}_orders", ready.related
    sums = read_partition(root / "data", f"{p}_sums", "month=1")
    assert sums.to_dicts() == [{"month": 1, "orders": 2, "total": 15}]
    assert not (root / f"data/{p}_sums/month=2").exists()


# ------------------------------------------------------------------------------------------------
# 2. require: all, partition: same


@pytest.mark.parametrize(
    ("first", "gap"),
    [("a", 3.0), ("b", 3.0), ("a", 10.0)],
    ids=["a-then-b", "b-then-a", "far-apart"],
)
def test_all_inputs_start_one_run_once_both_landed(
    tmp_path: Path, stack: LocalStack, first: str, gap: float
) -> None:
    """With require: all, the consumer runs exactly once for a month, after both inputs landed."""
    p = _prefix()
    root = _write(tmp_path, _join_of_two(p))
    settings = project_settings(root, stack)
    project = _deploy(settings)
    consumer = f"pipeline/{p}_join"
    inputs = {"a": (f"{p}_a", A_ROWS), "b": (f"{p}_b", B_ROWS)}
    second = "b" if first == "a" else "a"

    assert _land_and_announce(settings, project, *inputs[first]) == []
    time.sleep(gap)  # readiness is derived from the data, so the gap does not matter
    assert asyncio.run(_runs_of(consumer)) == [], "the consumer ran with one input missing"

    assert _land_and_announce(settings, project, *inputs[second]) == [f"{p}_join"]

    runs = _settled_runs(consumer, 1)
    assert len(runs) == 1, _by_state(runs)
    assert [r.state.name for r in runs if r.state] == ["Completed"]
    assert runs[0].parameters["partition"] == MONTH_1
    joined = read_partition(root / "data", f"{p}_joined", "month=1")
    assert joined.sort("id")["note"].to_list() == ["x", "y"]


# ------------------------------------------------------------------------------------------------
# 3. Duplicates


def test_duplicate_announcements_and_identical_rerun_start_nothing_more(
    tmp_path: Path, stack: LocalStack
) -> None:
    """Repeated announcements of the same data, and a byte-identical re-run, add no consumer run."""
    p = _prefix()
    root = _write(tmp_path, _producer_and_consumer(p))
    settings = project_settings(root, stack)
    project = _deploy(settings)
    root_data = DataRoot(settings.data_root_url)

    first = _run_producer(f"{p}_load")
    # The same update announced twice more before the consumer (seconds away: a new process on
    # the worker) has consumed it: each repeats the producer's pipeline.ready, with the same id.
    announced = [
        [r.pipeline for r in announce_update(project, root_data, f"{p}_orders", MONTH_1, {})]
        for _ in range(2)
    ]
    _drain()
    assert announced == [[f"{p}_sum"], [f"{p}_sum"]]
    _wait_for_runs(f"pipeline/{p}_sum", 1)
    written = manifest_of(root / "data", f"{p}_orders", "month=1").stat().st_mtime_ns

    second = _run_producer(f"{p}_load")
    assert manifest_of(root / "data", f"{p}_orders", "month=1").stat().st_mtime_ns == written

    runs = _settled_runs(f"pipeline/{p}_sum", 1)
    by_state = _by_state(runs)
    assert len(_executed(runs)) == 1, by_state
    assert set(by_state) <= {"Completed", "Skipped"}, by_state
    assert len(runs) == 1, f"duplicate pipeline.ready events were not collapsed: {by_state}"

    ready = _wait_for_events("pipeline.ready", f"pipeline.{p}_sum")
    assert len({e.id for e in ready}) == 1, [e.id for e in ready]

    updated = _wait_for_events("dataset.updated", f"dataset.{p}_orders")
    by_run = [e.payload.get("flow_run") for e in updated]
    assert by_run.count(str(first.id)) == 1, by_run
    assert str(second.id) not in by_run, "the identical re-run announced an update"


# ------------------------------------------------------------------------------------------------
# 4. Server restart between producer and consumer


@pytest.fixture
def own_stack(tmp_path: Path, stack: LocalStack) -> Iterator[LocalStack]:
    """A second server and worker with their own state, which the test may stop and restart."""
    base = tmp_path / "own-stack"
    settings = Settings(
        project_dir=base,
        state_dir=base / "state",
        prefect_api_url=f"http://127.0.0.1:{free_port()}/api",
        poll_seconds=0.5,
    )
    base.mkdir()
    local = LocalStack(settings, extra_env=dict(stack.extra_env))
    _drain()  # the events worker is cached without its URL: start afresh on the other server
    try:
        local.start_server()
        local.start_worker("flowfactory")
        with local.client_environment():
            yield local
            _drain()
    finally:
        local.stop()
        _drain()


def test_update_lost_while_the_server_is_down_is_reconciled(
    tmp_path: Path, own_stack: LocalStack
) -> None:
    """An input landed while the server was down is picked up by reconciliation, exactly once."""
    p = _prefix()
    root = _write(tmp_path / "project", _join_of_two(p))
    settings = Settings(project_dir=root, prefect_api_url=own_stack.api_url, project_name=root.name)
    project = _deploy(settings)
    consumer = f"pipeline/{p}_join"

    assert _land_and_announce(settings, project, f"{p}_a", A_ROWS) == []
    own_stack.stop()
    _land(settings, f"{p}_b", B_ROWS)  # its event is lost: nobody announces it
    own_stack.start_server()
    own_stack.start_worker("flowfactory")
    assert asyncio.run(_runs_of(consumer)) == []

    assert reconcile_project(settings) == [f"{p}_join[{MONTH_1}]"]
    _drain()
    _wait_for_runs(consumer, 1)
    assert reconcile_project(settings) == []

    runs = _settled_runs(consumer, 1)
    assert len(runs) == 1, _by_state(runs)
    assert [r.state.name for r in runs if r.state] == ["Completed"]
    assert runs[0].parameters["partition"] == MONTH_1
    assert partition_files(root / "data", f"{p}_joined", "month=1")


# ------------------------------------------------------------------------------------------------
# 5. `flowfactory emit` from the command line


def test_cli_emit_starts_the_consumer_of_an_external_dataset(
    tmp_path: Path, stack: LocalStack
) -> None:
    """`flowfactory emit` of an external dataset starts its consumer; an unknown name exits 2."""
    p = _prefix()
    root = _write(
        tmp_path,
        {
            f"deployments/{p}_ingest.yaml": f"""\
name: {p}_ingest
source: {{path: landing/ext/*.csv, external_dataset: {p}_ext}}
destination: {{dataset: {p}_clean, partition_by: [month], key: [id]}}
trigger: {{on: [{p}_ext]}}
""",
            "data/landing/ext/2024-01.csv": "id,month,amount\n1,1,3\n2,1,4\n3,2,5\n",
        },
    )
    _deploy(project_settings(root, stack))
    with_prefect_url = {**os.environ, "PREFECT_API_URL": stack.api_url}
    # As after `flowfactory up`: only flowfactory's own setting names the API.
    with_own_setting = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with_own_setting.update(
        FLOWFACTORY_PREFECT_API_URL=stack.api_url, PREFECT_HOME=str(tmp_path / "prefect-home")
    )

    def emit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FLOWFACTORY, "emit", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    result = emit(with_prefect_url, f"{p}_ext", "--partition", "month=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"inputs ready: {p}_ingest[month=1]" in result.stdout
    result = emit(with_own_setting, f"{p}_ext", "--partition", "month=2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"to {stack.api_url}" in result.stdout

    unknown = emit(with_prefect_url, f"{p}_exd", "--partition", MONTH_1)
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    assert f"did you mean '{p}_ext'?" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    runs = _settled_runs(f"pipeline/{p}_ingest", 2)
    assert sorted((r.parameters["partition"], r.state.name) for r in runs if r.state) == [
        ("month=1", "Completed"),
        ("month=2", "Completed"),
    ]
    clean = read_partition(root / "data", f"{p}_clean", "month=1")
    assert clean["id"].to_list() == [1, 2]
    assert read_partition(root / "data", f"{p}_clean", "month=2")["id"].to_list() == [3]


# ------------------------------------------------------------------------------------------------
# 6. Plain HTTP through the dataset router


def test_plain_http_event_is_routed_to_the_consumer(tmp_path: Path, stack: LocalStack) -> None:
    """A dataset.updated event POSTed over HTTP with the route label starts the consumer."""
    p = _prefix()
    root = _write(
        tmp_path,
        {
            f"deployments/{p}_copy.yaml": f"""\
name: {p}_copy
source: {{dataset: {p}_raw, external: true}}
destination: {{dataset: {p}_copied, partition_by: [month], key: [id]}}
trigger: {{on: [{p}_raw]}}
""",
        },
    )
    settings = project_settings(root, stack)
    _deploy(settings)
    _land(settings, f"{p}_raw", A_ROWS)

    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "dataset.updated",
        "resource": {
            "prefect.resource.id": f"dataset.{p}_raw",
            "dataset.partition": MONTH_1,
            "flowfactory.route": "true",
        },
        "payload": {"rows": 2},
    }
    response = httpx.post(f"{stack.api_url}/events", json=[event], timeout=10)
    assert response.status_code == 204, response.text

    runs = _settled_runs(f"pipeline/{p}_copy", 1)
    assert len(runs) == 1, _by_state(runs)
    assert runs[0].state is not None
    assert runs[0].state.name == "Completed"
    assert runs[0].parameters["partition"] == MONTH_1
    routed = [
        r
        for r in asyncio.run(_runs_of(f"flowfactory-router/{settings.project_name}-router"))
        if r.parameters.get("dataset") == f"{p}_raw"
    ]
    assert [r.parameters.get("partition") for r in routed] == [MONTH_1]
    assert read_partition(root / "data", f"{p}_copied", "month=1").height == 2


# ------------------------------------------------------------------------------------------------
# 7. SLA: max_duration


class _Hook(http.server.BaseHTTPRequestHandler):
    """A webhook on loopback that keeps every body posted to it."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(self.rfile.read(length))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_run_over_max_duration_emits_sla_missed(tmp_path: Path, stack: LocalStack) -> None:
    """A run over max_duration gets sla.missed, and the named notification block is notified."""
    p = _prefix()
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    CustomWebhookNotificationBlock(
        name="sla",
        url=f"http://127.0.0.1:{hook.server_address[1]}/hook",
        json_data={"text": "{{subject}} | {{body}}"},
        allow_private_urls=True,
    ).save(f"{p}-hook", overwrite=True)
    root = _write(
        tmp_path,
        {
            f"deployments/{p}_slow.yaml": f"""\
name: {p}_slow
source: {{path: landing/slow.csv}}
transform: {{python: "transforms.slow:wait"}}
destination: {{dataset: {p}_slowed}}
sla: {{max_duration: 10s, notify: custom-webhook/{p}-hook}}
""",
            "transforms/__init__.py": "",
            "transforms/slow.py": """\
import time

import polars as pl


def wait(source: pl.LazyFrame) -> pl.LazyFrame:
    time.sleep(25)
    return source
""",
            "data/landing/slow.csv": "id\n1\n",
        },
    )
    _deploy(project_settings(root, stack))

    slow = asyncio.run(_start(f"{p}_slow", {"name": f"{p}_slow"}, timeout=0))
    # Generous: the proactive trigger, the SLA flow run and its event share two busy cores.
    missed = _wait_for_events("sla.missed", f"pipeline.{p}_slow", timeout=150)
    assert missed[0].resource.id == f"pipeline.{p}_slow"
    assert missed[0].payload["sla"] == "max_duration"
    assert missed[0].payload["subject"] == f"prefect.flow-run.{slow.id}"
    deadline = time.monotonic() + 30
    while not _Hook.received and time.monotonic() < deadline:
        time.sleep(0.5)
    hook.shutdown()
    assert _Hook.received, "the notification block was not called"
    assert json.loads(_Hook.received[0])["text"].startswith(
        f"SLA missed: {p}_slow (max_duration) |"
    )

    runs = _wait_for_runs(f"pipeline/{p}_slow", 1)
    assert runs[0].state is not None
    assert runs[0].state.is_completed(), runs[0].state
