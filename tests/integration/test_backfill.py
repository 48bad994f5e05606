"""`flowfactory backfill` on a real Prefect server and worker: runs per partition, consumers
following through their triggers, skips of consumed input states, --force and --format json."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from tests.helpers import FLOWFACTORY, cli_env, read_partition
from tests.integration.conftest import project_settings
from tests.integration.test_data_aware import (
    SUM_SQL,
    _deploy,
    _prefix,
    _runs_of,
    _settled_runs,
    _write,
)

from flowfactory.config import Destination
from flowfactory.data import DataRoot, write_dataset
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

MONTHS = ["month=1", "month=2", "month=3"]
REPORT_SQL = "SELECT month, total * 2 AS doubled FROM source"


def _sum_and_report(p: str) -> dict[str, str]:
    """`{p}_sum` reads the external `{p}_orders`; `{p}_report` is triggered by its output."""
    return {
        f"deployments/{p}_sum.yaml": f"""\
name: {p}_sum
source: {{dataset: {p}_orders, external: true}}
transform: {{sql: "{SUM_SQL}"}}
destination: {{dataset: {p}_sums, partition_by: [month], key: [month]}}
trigger: {{on: [{p}_orders]}}
""",
        f"deployments/{p}_report.yaml": f"""\
name: {p}_report
source: {{dataset: {p}_sums}}
transform: {{sql: "{REPORT_SQL}"}}
destination: {{dataset: {p}_reports, partition_by: [month], key: [month]}}
trigger: {{on: [{p}_sums]}}
""",
    }


async def _quiet_reconcile(settings: Settings) -> None:
    """Stop the project's periodic reconciliation, so that only the backfill starts `{p}_sum`."""
    name = f"flowfactory-reconcile/{settings.project_name}-reconcile"
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(name)
        await client.pause_deployment(deployment.id)
        flow_filter = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(flow_run_filter=flow_filter)
            for run in runs:
                if run.state is not None and run.state.is_scheduled():
                    await client.delete_flow_run(run.id)
            if all(
                r.state is not None and (r.state.is_final() or r.state.is_scheduled()) for r in runs
            ):
                return
            await asyncio.sleep(0.5)
    raise AssertionError("the reconcile run did not end")


def _backfill(root: Path, settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(settings.prefect_api_url)
    return subprocess.run(
        [str(FLOWFACTORY), "backfill", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_backfill_runs_each_partition_once_then_skips_it(tmp_path: Path, stack: LocalStack) -> None:
    """Three runs that complete, consumers following; again: all skipped; --force: three more."""
    p = _prefix()
    root = _write(tmp_path, _sum_and_report(p))
    settings = project_settings(root, stack)
    _deploy(settings)
    asyncio.run(_quiet_reconcile(settings))
    rows = {"id": [1, 2, 3, 4], "month": [1, 2, 2, 3], "amount": [10.0, 5.0, 7.0, 1.0]}
    write_dataset(
        DataRoot(settings.data_root_url),
        pl.DataFrame(rows),
        Destination(dataset=f"{p}_orders", partition_by=["month"], key=["id"]),
    )

    first = _backfill(root, settings, f"{p}_sum", "--from", "month=1", "--to", "month=3")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == f"backfill of {p}_sum: 3 completed, 0 skipped, 0 failed"
    assert first.stdout.count(f"{stack.api_url.removesuffix('/api')}/runs/flow-run/") == 3
    runs = _settled_runs(f"pipeline/{p}_sum", 3)
    assert sorted(r.parameters["partition"] for r in runs) == MONTHS
    assert [r.state.name for r in runs if r.state] == ["Completed"] * 3
    assert all(r.parameters["state"] and "backfill" in r.tags for r in runs)
    reports = _settled_runs(f"pipeline/{p}_report", 3)
    assert sorted(r.parameters["partition"] for r in reports) == MONTHS
    assert [r.state.name for r in reports if r.state] == ["Completed"] * 3
    totals = read_partition(root / "data", f"{p}_reports", "month=2")
    assert totals.to_dicts() == [{"month": 2, "doubled": 24.0}]

    again = _json(
        _backfill(
            root,
            settings,
            f"{p}_sum",
            "--partitions",
            "month=3,month=1,month=2",
            "--format",
            "json",
        )
    )
    assert (again["completed"], again["skipped"], again["failed"]) == (0, 3, 0)
    assert [r["partition"] for r in again["runs"]] == MONTHS
    assert all(
        r["flow_run_id"] is None and "already consumed" in r["message"] for r in again["runs"]
    )
    assert len(_settled_runs(f"pipeline/{p}_sum", 3)) == 3

    forced = _json(
        _backfill(
            root,
            settings,
            f"{p}_sum",
            "--from",
            "month=1",
            "--to",
            "month=3",
            "--force",
            "--format",
            "json",
            "--concurrency",
            "2",
        )
    )
    assert (forced["completed"], forced["skipped"], forced["failed"]) == (3, 0, 0)
    assert all(r["url"].endswith(f"/runs/flow-run/{r['flow_run_id']}") for r in forced["runs"])
    runs = _settled_runs(f"pipeline/{p}_sum", 6)
    assert len(runs) == 6
    assert sorted(r.parameters["state"] is None for r in runs) == [False] * 3 + [True] * 3

    unknown = _backfill(root, settings, f"{p}_sum", "--partitions", "month=4")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        f"error: partition 'month=4' is not among the partitions of {p}_sum's inputs: "
        "month=1, month=2, month=3"
    )


def test_ctrl_c_cancels_the_runs_not_started_and_creates_no_more(
    tmp_path: Path, stack: LocalStack
) -> None:
    """On a pool no worker serves runs stay scheduled: Ctrl-C cancels them, the rest never exist."""
    p = _prefix()
    files = _sum_and_report(p)
    sum_file = f"deployments/{p}_sum.yaml"
    files[sum_file] += f"work_pool: {p}-idle\n"
    root = _write(tmp_path, files)
    settings = project_settings(root, stack)
    _deploy(settings)
    asyncio.run(_quiet_reconcile(settings))
    rows = {"id": [1, 2, 3], "month": [1, 2, 3], "amount": [1.0, 2.0, 3.0]}
    write_dataset(
        DataRoot(settings.data_root_url),
        pl.DataFrame(rows),
        Destination(dataset=f"{p}_orders", partition_by=["month"], key=["id"]),
    )
    env = cli_env(settings.prefect_api_url)
    backfill = subprocess.Popen(
        [
            *(str(FLOWFACTORY), "backfill", f"{p}_sum"),
            *("--from", "month=1", "--to", "month=3", "--concurrency", "2"),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        runs = asyncio.run(_runs_of(f"pipeline/{p}_sum"))
        while len(runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            runs = asyncio.run(_runs_of(f"pipeline/{p}_sum"))
        assert len(runs) == 2, runs
        backfill.send_signal(signal.SIGINT)
        stdout, stderr = backfill.communicate(timeout=120)
    finally:
        if backfill.poll() is None:
            backfill.kill()
    assert backfill.returncode == 1, stdout + stderr
    assert "interrupted: cancelled the runs not started yet and created no more" in stdout + stderr
    assert "Traceback" not in stderr
    runs = asyncio.run(_runs_of(f"pipeline/{p}_sum"))
    assert len(runs) == 2
    assert [r.state.name for r in runs if r.state] == ["Cancelled", "Cancelled"]
