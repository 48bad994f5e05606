"""flowfactory as a tool a data team adds to its own folder, from the built wheel.

The wheel goes into a fresh virtualenv with the pinned dependencies (pip's cache makes the
install quick); nothing of this repository is on that virtualenv's path. `flowfactory init`
scaffolds a project, which is validated, deployed to the virtualenv's own `prefect server
start`, run in process, and run again as a deployment through a process worker, which imports
the packaged flow by its module path. A consumer pipeline and two more months of orders are then
added and deployed; a backfill of the example on that worker wakes the consumer through its
data-aware trigger for each partition, and the partition view and the server's asset events show
both datasets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from tests.helpers import REPO, free_port

pytestmark = pytest.mark.integration

EXAMPLE = "monthly_revenue"
CONSUMER = "revenue_report"
# Months the scaffold's landing file lacks: with its own month 2, the partitions to backfill.
MORE_ORDERS = {
    "2024-03.csv": "order_id,year,month,customer,amount\n"
    "1007,2024,3,acme,42.00\n1008,2024,3,initech,18.50\n",
    "2024-04.csv": "order_id,year,month,customer,amount\n"
    "1009,2024,4,globex,64.25\n1010,2024,4,acme,12.75\n1011,2024,4,initech,301.00\n",
}
BACKFILLED = ("year=2024/month=2", "year=2024/month=3", "year=2024/month=4")
CONSUMER_PIPELINE = """\
name: revenue_report
description: Customers, orders and revenue per month, from monthly_revenue.
source: {dataset: monthly_revenue}
transform:
  sql: |
    SELECT year, month, count(*) AS customers, sum(orders) AS orders, sum(revenue) AS revenue
    FROM source
    GROUP BY year, month
destination:
  dataset: revenue_report
  partition_by: [year, month]
  key: [year, month]
trigger: {on: [monthly_revenue], partition: same}
"""

T = TypeVar("T")


def _env(home: Path, api_url: str) -> dict[str, str]:
    """The environment of a user's shell: no settings or code of this repository."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLOWFACTORY_", "PREFECT_")) and k not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{argv}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _wait_for(what: str, found: Callable[[], T | None], timeout: float = 180) -> T:
    """Poll ``found`` until it returns something, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while (result := found()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:.0f} s still waiting for {what}")
        time.sleep(1)
    return result


def _completed_runs(api_url: str, deployment: str) -> dict[str, str]:
    """Partition -> flow run id of the runs of ``pipeline/<deployment>`` that completed."""
    response = httpx.post(
        f"{api_url}/flow_runs/filter",
        json={
            "deployments": {"name": {"any_": [deployment]}},
            # Completed, not Skipped: a skipped run writes nothing.
            "flow_runs": {"state": {"name": {"any_": ["Completed"]}}},
        },
        timeout=10,
    )
    response.raise_for_status()
    return {run["parameters"].get("partition", ""): run["id"] for run in response.json()}


def _materialized(
    api_url: str, asset: str, partitions: tuple[str, ...]
) -> list[dict[str, Any]] | None:
    """The server's materialization events of ``asset``, once it has one for each partition."""
    response = httpx.post(
        f"{api_url}/events/filter",
        json={
            "filter": {
                "event": {"name": ["prefect.asset.materialization.succeeded"]},
                "resource": {"id": [asset]},
            },
            "limit": 50,  # the most one page holds
        },
        timeout=10,
    )
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return (
        events if {event["payload"]["partition"] for event in events} >= set(partitions) else None
    )


def _add_consumer(project: Path) -> None:
    """A pipeline triggered by the example's partitions, and more months of orders for both."""
    (project / "deployments" / f"{CONSUMER}.yaml").write_text(CONSUMER_PIPELINE)
    for name, text in MORE_ORDERS.items():
        (project / "data" / "landing" / "orders" / name).write_text(text)


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel and the pinned dependencies."""
    base = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    wheels, venv = base / "wheels", base / "venv"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        base,
        env,
    )
    _run([sys.executable, "-m", "venv", str(venv)], base, env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "-r", str(REPO / "requirements.lock")], base, env, timeout=600)
    _run([*pip, "--no-deps", *map(str, wheels.glob("flowfactory-*.whl"))], base, env)
    return venv / "bin"


@pytest.fixture
def server(tmp_path: Path, venv_bin: Path) -> Iterator[dict[str, str]]:
    """The virtualenv's own `prefect server start` on a free port; yields the environment."""
    port = free_port()
    env = _env(tmp_path / "prefect-home", f"http://127.0.0.1:{port}/api")
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(venv_bin / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail(f"no server on port {port}: {(tmp_path / 'server.log').read_text()}")
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_init_validate_deploy_run_in_a_fresh_folder(
    tmp_path: Path, venv_bin: Path, server: dict[str, str]
) -> None:
    """From an empty folder to runs on a worker and a consumer they wake, from the wheel alone."""
    started = time.monotonic()
    project = tmp_path / "sales"
    project.mkdir()
    flowfactory = str(venv_bin / "flowfactory")
    assert "wrote prefect.yaml" in _run([flowfactory, "init"], project, server)
    assert not (project / "flows").exists()
    assert f"1 pipeline(s) valid: {EXAMPLE}" in _run([flowfactory, "validate"], project, server)
    _run([flowfactory, "render", "--check"], project, server)
    _run([flowfactory, "schema", "check"], project, server)
    assert "deployed" in _run([flowfactory, "deploy"], project, server)
    assert f"{EXAMPLE}: Completed" in _run([flowfactory, "run", EXAMPLE], project, server)
    output = project / "data" / EXAMPLE
    assert {p.parent.relative_to(output).as_posix() for p in output.rglob("*.parquet")} == {
        "year=2024/month=1",
        "year=2024/month=2",
    }
    assert (output / "year=2024/month=2/_manifest.json").is_file()
    # Prefect's own deploy of the rendered prefect.yaml, then a run through a process worker.
    _run([str(venv_bin / "prefect"), "deploy", "--all", "--no-prompt"], project, server)
    (output / "year=2024").rename(tmp_path / "first-run")
    # Polled every second, so that a run the consumer's trigger creates starts at once.
    worker_log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(venv_bin / "prefect"), "worker", "start", "--pool", "flowfactory"],
        cwd=project,
        env=server | {"PREFECT_WORKER_QUERY_SECONDS": "1"},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        ran = _run(
            [
                str(venv_bin / "prefect"),
                "deployment",
                "run",
                f"pipeline/{EXAMPLE}",
                "--param",
                "partition=year=2024/month=1",
                "--watch",
            ],
            project,
            server,
        )
        assert "Completed" in ran, ran
        assert (output / "year=2024/month=1/_manifest.json").is_file()
        print(f"init to worker run: {time.monotonic() - started:.1f} s")
        _backfill_wakes_the_consumer(project, flowfactory, server)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        worker_log.close()
    print(f"init to the consumer's asset events: {time.monotonic() - started:.1f} s")


def _backfill_wakes_the_consumer(project: Path, flowfactory: str, env: dict[str, str]) -> None:
    """Backfill the example on the worker; its consumer follows for each partition."""
    started = time.monotonic()
    api_url = env["PREFECT_API_URL"]
    _add_consumer(project)
    assert "2 pipeline(s) valid" in _run([flowfactory, "validate"], project, env)
    assert "deployed" in _run([flowfactory, "deploy"], project, env)
    summary = json.loads(
        _run(
            [
                flowfactory,
                "backfill",
                EXAMPLE,
                "--partitions",
                ",".join(BACKFILLED),
                "--concurrency",
                "3",
                "--format",
                "json",
            ],
            project,
            env,
        )
    )
    assert summary["completed"] == 3, summary
    backfill_runs = {run["partition"]: run["flow_run_id"] for run in summary["runs"]}
    assert set(backfill_runs) == set(BACKFILLED), summary
    assert all(run["status"] == "completed" for run in summary["runs"]), summary
    print(f"backfill of {len(BACKFILLED)} partitions: {time.monotonic() - started:.1f} s")

    # The consumer's runs are created by the backfilled runs themselves, as each one announces.
    def consumer_ran() -> dict[str, str] | None:
        runs = _completed_runs(api_url, CONSUMER)
        return runs if set(BACKFILLED) <= set(runs) else None

    consumer_runs = _wait_for(f"a completed {CONSUMER} run for each of {BACKFILLED}", consumer_ran)
    print(f"backfill to the consumer's runs: {time.monotonic() - started:.1f} s")

    view = json.loads(_run([flowfactory, "partitions", "--format", "json"], project, env))
    rows = {(row["dataset"], row["partition"]): row for row in view}
    for dataset, runs in ((EXAMPLE, backfill_runs), (CONSUMER, consumer_runs)):
        for partition in BACKFILLED:
            row = rows[dataset, partition]
            assert row["rows"] > 0, row
            assert row["bytes"] > 0, row
            assert row["flow_run"] == runs[partition], row
            assert row["pending"] == [], row

    # Each write is an asset materialization on the server, its inputs as upstream assets.
    data = (project / "data").resolve()
    example_uri, consumer_uri = (data / EXAMPLE).as_uri(), (data / CONSUMER).as_uri()
    landing_uri = f"{data.as_uri()}/landing/orders/*.csv"
    for asset, upstream in ((example_uri, landing_uri), (consumer_uri, example_uri)):
        events = _wait_for(
            f"materializations of {asset}",
            lambda asset=asset: _materialized(api_url, asset, BACKFILLED),
            timeout=60,
        )
        for event in events:
            related = {r["prefect.resource.id"]: r for r in event["related"]}
            assert related[upstream]["prefect.resource.role"] == "asset", event
