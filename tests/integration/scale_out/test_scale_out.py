"""The scale-out topology from its one command, `flowfactory up --scale-out`: PostgreSQL, Redis,
two API servers with --no-services, the services process and two `flowfactory worker`
processes. Started once for the module; the demo month it replays on the way up is the demo
scenario passing through it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import (
    FLOWFACTORY,
    REPO,
    cli_env,
    free_port,
    read_partition,
    read_until,
    write_project,
)
from tests.integration.test_data_aware import _producer_and_consumer

from flowfactory.errors import StackError
from flowfactory.stack import find_postgres_bin, port_is_free

pytestmark = pytest.mark.integration

DEMO_PIPELINES = (
    "ingest_flights",
    "ingest_weather",
    "flight_delays",
    "carrier_stats",
    "airport_stats",
    "airport_info",
)
WORKERS = {"worker-1", "worker-2"}


def _missing_binaries() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server; .ci/run does)"
    try:
        find_postgres_bin()
    except StackError as error:
        return f"{error} (.ci/run installs it)"
    return None


@dataclass
class Topology:
    """The running `up --scale-out` and what it printed."""

    process: subprocess.Popen[str]
    base: Path
    output: str
    api_urls: list[str]
    redis_port: int
    postgres_port: int

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def data(self) -> Path:
        return self.base / "data"


def _reachable_base() -> Path:
    # As root, PostgreSQL runs as the postgres account, which must reach the state folder; pytest's
    # own temporary folders are private to their owner.
    base = Path(tempfile.mkdtemp(prefix="flowfactory-scale-out-"))
    base.chmod(0o755)
    return base


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    """`flowfactory up --scale-out --months 1` in the repository, state and data of its own."""
    reason = _missing_binaries()
    if reason is not None:
        pytest.skip(reason)
    base = _reachable_base()
    env = cli_env(
        f"http://127.0.0.1:{free_port()}/api",
        FLOWFACTORY_STATE_DIR=str(base / "state"),
        FLOWFACTORY_DATA_ROOT=str(base / "data"),
        FLOWFACTORY_POLL_SECONDS="0.5",
        # One run at a time per worker: runs scheduled together must go to both workers.
        FLOWFACTORY_WORKER_LIMIT="1",
    )
    env["FLOWFACTORY_PREFECT_API_URL"] = env.pop("PREFECT_API_URL")
    process = subprocess.Popen(
        [str(FLOWFACTORY), "up", "--scale-out", "--months", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield _wait_until_serving(process, base)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(base, ignore_errors=True)


def _wait_until_serving(process: subprocess.Popen[str], base: Path) -> Topology:
    assert process.stdout is not None
    lines = read_until(process.stdout, "serving;", timeout=420)
    output = "".join(lines)
    assert lines, output
    assert lines[-1].startswith("serving;"), output
    redis = re.search(r"Redis: redis://127\.0\.0\.1:(\d+)/0", output)
    postgres = re.search(r"PostgreSQL: postgresql\+asyncpg://prefect@127\.0\.0\.1:(\d+)/", output)
    assert redis is not None, output
    assert postgres is not None, output
    return Topology(
        process=process,
        base=base,
        output=output,
        api_urls=re.findall(r"API server \(--no-services\): (\S+)", output),
        redis_port=int(redis.group(1)),
        postgres_port=int(postgres.group(1)),
    )


def _post(api: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{api}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _events(api: str, name: str) -> list[dict[str, Any]]:
    """Every stored event called ``name`` (the server pages them by 50)."""
    page = _post(api, "/events/filter", {"filter": {"event": {"name": [name]}}, "limit": 50})
    events = list(page["events"])
    while page.get("next_page"):
        response = httpx.get(page["next_page"], timeout=30)
        response.raise_for_status()
        page = response.json()
        events += page["events"]
    return events


def _related(event: dict[str, Any], role: str) -> list[str]:
    return [
        r["prefect.resource.id"] for r in event["related"] if r["prefect.resource.role"] == role
    ]


def _worker_of_runs(api: str) -> dict[str, str]:
    """Flow run id -> the name of the worker that submitted it."""
    return {
        run.removeprefix("prefect.flow-run."): event["resource"]["prefect.resource.name"]
        for event in _events(api, "prefect.worker.submitted-flow-run")
        for run in _related(event, "flow-run")
    }


def _worker_of(api: str, run_id: str, timeout: float = 30) -> str:
    """The worker that submitted the run, once its event has reached the event persister."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker = _worker_of_runs(api).get(run_id)
        if worker is not None:
            return worker
        time.sleep(0.5)
    raise AssertionError(f"no worker submitted flow run {run_id} within {timeout:.0f} s")


def _runs_of(api: str, deployment: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{api}/deployments/name/{deployment}", timeout=30)
    response.raise_for_status()
    body = {"deployments": {"id": {"any_": [response.json()["id"]]}}}
    runs: list[dict[str, Any]] = _post(api, "/flow_runs/filter", body)
    return runs


def test_one_command_starts_the_topology_and_the_demo_passes_through_it(
    topology: Topology,
) -> None:
    """Two API servers without services over one PostgreSQL database, two workers with state
    folders of their own; the replayed month ran every demo pipeline."""
    out = topology.output
    assert len(topology.api_urls) == 2, out
    for url in topology.api_urls:
        assert httpx.get(f"{url}/health", timeout=10).json() is True
        names = {d["name"] for d in _post(url, "/deployments/filter", {})}
        assert set(DEMO_PIPELINES) <= names  # one database behind both
    assert (topology.state / "postgres/data/PG_VERSION").exists()
    assert not (topology.state / "prefect.db").exists()
    for name, url in zip(sorted(WORKERS), topology.api_urls, strict=True):
        assert f"{name}: `flowfactory worker` via {url}" in out
        assert (topology.state / "workers" / name / "logs/warm-executor.log").exists()
    for pipeline in DEMO_PIPELINES:
        assert re.search(rf"^{pipeline}\s+1/1\s", out, re.MULTILINE), out
    assert read_partition(topology.data, "flights", "year=2013/month=1").height == 27004
    info = read_partition(topology.data, "airport_info")
    assert sorted(info["faa"].to_list()) == ["EWR", "JFK", "LGA"]


def test_the_demo_runs_spread_over_both_workers(topology: Topology) -> None:
    """Each demo run was submitted by one of the two workers, and each worker submitted some:
    the two ingest runs start together and a worker takes one run at a time."""
    api = topology.api_urls[1]
    seen = set()
    for pipeline in DEMO_PIPELINES:
        (run,) = _runs_of(api, f"pipeline/{pipeline}")
        assert run["state"]["type"] == "COMPLETED"
        seen.add(_worker_of(api, run["id"]))
    assert seen == WORKERS


def test_the_scheduler_of_the_services_process_schedules_runs(topology: Topology) -> None:
    """The reconcile deployment's interval schedule gets runs: the API servers run no services,
    so the scheduler of the services process created them."""
    deadline = time.monotonic() + 90
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not runs:
        runs = _runs_of(topology.api_urls[0], "flowfactory-reconcile/flowfactory-reconcile")
        runs = [run for run in runs if run["auto_scheduled"]]
        time.sleep(1)
    assert runs, "no scheduled run of flowfactory-reconcile"


def test_a_producer_starts_its_consumer_once_and_a_worker_runs_it(
    tmp_path: Path, topology: Topology
) -> None:
    """A producer run through the second API server creates its consumer's run under the input
    state's key (once, in the one database), the services process's event pipeline records its
    pipeline.ready, and a worker runs it to completion."""
    p = "s" + uuid.uuid4().hex[:8]
    files = _producer_and_consumer(p)
    # The workers read the topology's data root, so the landing file goes there.
    landed = topology.data / "landing/orders/2024-01.csv"
    landed.parent.mkdir(parents=True)
    landed.write_text(files.pop("data/landing/orders/2024-01.csv"))
    root = write_project(tmp_path, files)
    api = topology.api_urls[1]
    env = cli_env(api, FLOWFACTORY_DATA_ROOT=str(topology.data), FLOWFACTORY_PROJECT_NAME=p)
    for argv in (["deploy"], ["run", f"{p}_load", "--partition", "month=1"]):
        done = subprocess.run(
            [str(FLOWFACTORY), *argv],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    deadline = time.monotonic() + 120
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = _runs_of(topology.api_urls[0], f"pipeline/{p}_sum")
        if runs and runs[0]["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED"}:
            break
        time.sleep(0.5)
    assert len(runs) == 1, runs
    (run,) = runs
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["idempotency_key"].startswith(f"flowfactory.input-state:{p}_sum:month=1:")
    ready: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60  # events reach the database through the services process
    while not ready and time.monotonic() < deadline:
        ready = [
            event
            for event in _events(api, "pipeline.ready")
            if f"prefect.flow-run.{run['id']}" in _related(event, "consumer-run")
        ]
        time.sleep(0.5)
    assert len(ready) == 1
    assert _worker_of(api, run["id"]) in WORKERS
    sums = read_partition(topology.data, f"{p}_sums", "month=1")
    assert sums.select("orders", "total").rows() == [(2, 15)]


def _processes_naming(path: Path) -> list[str]:
    """Command lines of running processes that mention ``path`` (PostgreSQL, warm executors)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        if str(path) in argv:
            found.append(argv)
    return found


def test_ctrl_c_stops_every_process_of_the_topology(topology: Topology) -> None:
    """Ctrl-C ends `up` with exit 0 and frees every port it served."""
    topology.process.send_signal(signal.SIGINT)
    rest, _ = topology.process.communicate(timeout=90)
    assert topology.process.returncode == 0, topology.output + rest
    assert rest.rstrip().endswith("stopped")
    ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in topology.api_urls]
    for port in [*ports, topology.redis_port, topology.postgres_port]:
        assert port_is_free("127.0.0.1", port)
    assert _processes_naming(topology.base) == []


def test_workers_need_scale_out(tmp_path: Path) -> None:
    """--workers without --scale-out is a usage error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FLOWFACTORY_"))}
    done = subprocess.run(
        [str(FLOWFACTORY), "up", "--workers", "3"],
        cwd=REPO,
        env={**env, "FLOWFACTORY_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--workers needs --scale-out" in done.stderr
    assert "Traceback" not in done.stderr
