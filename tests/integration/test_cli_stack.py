"""The CLI verbs that need a server: run, up and demo, as a user runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.helpers import REPO, free_port, read_partition, read_until, write_project

from flowfactory.stack import LocalStack, port_is_free

pytestmark = pytest.mark.integration

FLOWFACTORY = str(Path(sys.executable).with_name("flowfactory"))
DEMO_PIPELINES = {
    "ingest_flights",
    "ingest_weather",
    "flight_delays",
    "carrier_stats",
    "airport_stats",
    "airport_info",
}


def _cli(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLOWFACTORY, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _isolated_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FLOWFACTORY_"))}
    env.update(
        FLOWFACTORY_STATE_DIR=str(tmp_path / "state"),
        FLOWFACTORY_DATA_ROOT=str(tmp_path / "data"),
        FLOWFACTORY_PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
    )
    return env


RUN_PROJECT = {
    "deployments/clicks.yaml": """\
name: cli_clicks
source: {path: landing/clicks.csv}
destination: {dataset: clicks, key: [id]}
""",
    "deployments/broken_sql.yaml": """\
name: cli_broken
source: {path: landing/clicks.csv}
transform:
  sql: SELECT id, no_such_column FROM source
destination: {dataset: broken}
""",
    "data/landing/clicks.csv": "id,page\n2,/b\n1,/a\n",
}


def test_run_executes_one_pipeline_now(tmp_path: Path, stack: LocalStack) -> None:
    """`flowfactory run NAME` runs in-process against the API and writes the dataset."""
    root = write_project(tmp_path, RUN_PROJECT)
    env = {**os.environ, "PREFECT_API_URL": stack.api_url}
    result = _cli(["run", "cli_clicks"], root, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cli_clicks: Completed" in result.stdout
    assert read_partition(root / "data", "clicks")["id"].to_list() == [1, 2]


def test_run_reports_a_transform_mistake_without_traceback(
    tmp_path: Path, stack: LocalStack
) -> None:
    """SQL over a missing column is a positioned config error, exit 1, no traceback, no run."""
    root = write_project(tmp_path, RUN_PROJECT)
    env = {**os.environ, "PREFECT_API_URL": stack.api_url}
    result = _cli(["run", "cli_broken"], root, env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    first = result.stderr.splitlines()[0]
    assert first.startswith("deployments/broken_sql.yaml:4:8: error: transform.sql: ")
    assert "no_such_column" in first
    assert not (root / "data/broken").exists()


def test_run_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    """With no API reachable, `run` exits 1 and names `make up`."""
    root = write_project(tmp_path, RUN_PROJECT)
    env = _isolated_env(tmp_path, free_port())
    result = _cli(["run", "cli_clicks"], root, env, timeout=60)
    assert result.returncode == 1
    assert "no Prefect API answers" in result.stderr
    assert "make up" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_refuses_a_taken_port_clearly(tmp_path: Path) -> None:
    """`up` on a port already in use exits 1 with a message that says so and how to change it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(["up", "--no-replay"], REPO, _isolated_env(tmp_path, port), timeout=60)
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "FLOWFACTORY_PREFECT_API_URL" in result.stderr
    assert "Traceback" not in result.stderr


def _deployment_names(api_url: str) -> set[str]:
    response = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=10)
    response.raise_for_status()
    return {d["name"] for d in response.json()}


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_up_serves_every_demo_deployment_and_stops_on_a_signal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """`up` starts a server in the state folder, deploys the demo; Ctrl-C or TERM stops it all."""
    port = free_port()
    env = _isolated_env(tmp_path, port)
    process = subprocess.Popen(
        [FLOWFACTORY, "up", "--no-replay"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = read_until(process.stdout, "serving;", timeout=240)
        assert any(line.startswith("serving;") for line in lines), "".join(lines)
        api = f"http://127.0.0.1:{port}/api"
        assert _deployment_names(api) >= DEMO_PIPELINES
        assert (tmp_path / "state" / "prefect.db").exists()
        process.send_signal(stop_signal)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stdout is not None
    assert "stopped" in process.stdout.read()
    assert port_is_free("127.0.0.1", port)


def test_demo_runs_the_scenario_and_exits_zero(tmp_path: Path) -> None:
    """`flowfactory demo` replays a month through every demo pipeline and exits 0."""
    env = _isolated_env(tmp_path, free_port())
    result = _cli(["demo", "--months", "1"], REPO, env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo scenario held" in result.stdout
    for name in DEMO_PIPELINES:
        assert f"{name} " in result.stdout
    flights = read_partition(tmp_path / "data", "flights", "year=2013/month=1")
    assert flights.height == 27004
    stats = read_partition(tmp_path / "data", "airport_stats", "year=2013/month=1")
    assert sorted(stats["origin"].to_list()) == ["EWR", "JFK", "LGA"]
    info = read_partition(tmp_path / "data", "airport_info")
    assert sorted(info["faa"].to_list()) == ["EWR", "JFK", "LGA"]  # names from the HTTP API
