"""The canary on a real server: an equivalent rewrite passes, is promoted, used and rolled back."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun
from tests.helpers import REPO, write_project
from tests.integration.conftest import project_settings

from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

FLOWFACTORY = str(Path(sys.executable).with_name("flowfactory"))
ROWS = "\n".join(f"{i},{['AU', 'US', 'GB'][i % 3]},{i * 0.5}" for i in range(400))
SQL_PIPELINE = """\
name: totals
source: {path: landing/sales.csv}
transform:
  sql: SELECT id, country, amount * 2 AS doubled FROM source
destination: {dataset: totals, key: [id]}
canary:
  candidate: {python: transforms.sales:doubled}
  sample: {key: [id], fraction: 0.25}
  tolerance: {abs: 1.0e-9}
"""
# The candidate notes each call in the file CANARY_MARK names, so the test can see which
# version a production run used.
TRANSFORMS = """\
import os
from pathlib import Path

import polars as pl


def doubled(source: pl.LazyFrame) -> pl.LazyFrame:
    mark = os.environ.get("CANARY_MARK")
    if mark:
        with Path(mark).open("a") as handle:
            handle.write("v2\\n")
    return source.select("id", "country", (pl.col("amount") * FACTOR).alias("doubled"))


FACTOR = 2
"""


def _project(root: Path, factor: str = "2") -> Path:
    write_project(
        root,
        {
            "deployments/totals.yaml": SQL_PIPELINE,
            "transforms/__init__.py": "",
            "transforms/sales.py": TRANSFORMS.replace("FACTOR = 2", f"FACTOR = {factor}"),
            "data/landing/sales.csv": "id,country,amount\n" + ROWS + "\n",
        },
    )
    return root


def _cli(args: list[str], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLOWFACTORY, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _env(root: Path, stack: LocalStack) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFACTORY_")}
    return {**clean, "PREFECT_API_URL": stack.api_url, "CANARY_MARK": str(root / "mark.txt")}


def _live(root: Path) -> str:
    return str(json.loads((root / "data/_canary/totals/live.json").read_text())["version"])


def _artifact(stack: LocalStack, key: str) -> str:
    response = httpx.post(
        f"{stack.api_url}/artifacts/latest/filter",
        json={"artifacts": {"key": {"any_": [key]}}},
        timeout=10,
    )
    response.raise_for_status()
    (artifact,) = response.json()
    return str(artifact["data"])


def test_equivalent_rewrite_passes_is_promoted_used_then_rolled_back(
    tmp_path: Path, stack: LocalStack
) -> None:
    root = _project(tmp_path)
    env = _env(root, stack)
    mark = root / "mark.txt"

    result = _cli(["canary", "totals"], root, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    assert "no difference in" in result.stdout
    assert _live(root) == "v2"
    assert "PASSED" in _artifact(stack, "canary-totals-summary")
    # Nothing went to the production dataset: only the canary area was written.
    assert not (root / "data/totals").exists()

    mark.unlink()
    assert _cli(["run", "totals"], root, env).returncode == 0
    assert mark.read_text() == "v2\n"  # production ran the candidate, without a redeploy

    result = _cli(["rollback", "totals"], root, env)
    assert result.returncode == 0, result.stderr
    assert "v1 is live (was v2)" in result.stdout
    assert _live(root) == "v1"
    mark.unlink()
    assert _cli(["run", "totals"], root, env).returncode == 0
    assert not mark.exists()

    # One run of a named version leaves the live one alone.
    assert _cli(["run", "totals", "--version", "v2"], root, env).returncode == 0
    assert mark.read_text() == "v2\nv2\n"  # the plan check, then the run itself
    assert _live(root) == "v1"


def test_a_changed_value_fails_readably_and_changes_nothing(
    tmp_path: Path, stack: LocalStack
) -> None:
    root = _project(tmp_path, factor="2.0000001")
    env = _env(root, stack)

    result = _cli(["canary", "totals"], root, env)
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "column doubled:" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (root / "data/_canary/totals/live.json").exists()
    assert "doubled" in _artifact(stack, "canary-totals-differences")


def _paused_canary_runs(stack: LocalStack) -> list[str]:
    response = httpx.post(
        f"{stack.api_url}/flow_runs/filter",
        json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}},
        timeout=10,
    )
    response.raise_for_status()
    return [run["id"] for run in response.json() if run["name"].startswith("canary-manual")]


def _events(stack: LocalStack, prefix: str, resource: str) -> list[str]:
    response = httpx.post(
        f"{stack.api_url}/events/filter",
        json={
            "filter": {"event": {"prefix": [prefix]}, "resource": {"id": [resource]}},
            "limit": 50,
        },
        timeout=10,
    )
    response.raise_for_status()
    return [event["event"] for event in response.json()["events"]]


def test_manual_promotion_waits_for_approval_in_the_ui(tmp_path: Path, stack: LocalStack) -> None:
    from prefect.flow_runs import resume_flow_run  # noqa: PLC0415

    root = _project(tmp_path)
    pipeline = root / "deployments/totals.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("name: totals", "name: manual")
        + "  promote: manual\n  approval_timeout: 2m\n"
    )
    env = _env(root, stack)
    process = subprocess.Popen(
        [FLOWFACTORY, "canary", "manual"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        paused: list[str] = []
        for _ in range(120):
            paused = _paused_canary_runs(stack)
            if paused or process.poll() is not None:
                break
            time.sleep(0.5)
        assert paused, process.communicate(timeout=10)
        # Nothing is live before the approval.
        assert not (root / "data/_canary/manual/live.json").exists()
        resume_flow_run(paused[0], run_input={"approve": True, "note": "looks right"})
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stdout + stderr
    assert "approved: looks right" in stdout
    assert json.loads((root / "data/_canary/manual/live.json").read_text())["version"] == "v2"
    seen: list[str] = []
    for _ in range(40):
        seen = _events(stack, "canary.", "pipeline.manual") + _events(
            stack, "pipeline.promoted", "pipeline.manual"
        )
        if len(seen) >= 2:
            break
        time.sleep(0.5)
    assert sorted(set(seen)) == ["canary.passed", "pipeline.promoted"]


def test_the_canary_deployment_runs_on_the_worker(tmp_path: Path, stack: LocalStack) -> None:
    """`deploy` registers `<name>-canary`; run from the API (as from the UI), it promotes v2."""
    from prefect.deployments import run_deployment  # noqa: PLC0415

    from flowfactory.config import load_project  # noqa: PLC0415
    from flowfactory.deploy import deploy_project  # noqa: PLC0415

    name = "c" + uuid.uuid4().hex[:8]
    root = _project(tmp_path)
    pipeline = root / "deployments/totals.yaml"
    pipeline.write_text(pipeline.read_text().replace("name: totals", f"name: {name}"))
    settings = project_settings(root, stack)
    report = asyncio.run(
        deploy_project(load_project(settings.deployments_dir, settings), settings, prune=False)
    )
    assert f"{name}-canary" in report.deployed

    async def run_from_the_api() -> FlowRun:
        flow_run: FlowRun = await run_deployment(  # type: ignore[misc]
            name=f"canary/{name}-canary", parameters={"name": name}, timeout=180, poll_interval=0.5
        )
        return flow_run

    flow_run = asyncio.run(run_from_the_api())
    assert flow_run.state is not None
    assert (flow_run.state.type.value, flow_run.state.name) == ("COMPLETED", "Promoted")
    live = json.loads((root / f"data/_canary/{name}/live.json").read_text())
    assert live["version"] == "v2"


def test_an_empty_sample_is_inconclusive(tmp_path: Path, stack: LocalStack) -> None:
    root = _project(tmp_path)
    pipeline = root / "deployments/totals.yaml"
    pipeline.write_text(
        pipeline.read_text()
        .replace("name: totals", "name: empty")
        .replace("fraction: 0.25", "fraction: 0.000001")
    )
    result = _cli(["canary", "empty"], root, _env(root, stack))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INCONCLUSIVE" in result.stdout
    assert "the sample is empty" in result.stdout
    assert not (root / "data/_canary/empty/live.json").exists()


@pytest.mark.datadiff
def test_the_demo_candidate_agrees_with_the_sql_on_real_flights(
    tmp_path: Path, stack: LocalStack
) -> None:
    """The data-diff tier on the demo: January 2013 through both versions of flight_delays."""
    from flowfactory.settings import Settings  # noqa: PLC0415
    from flowfactory.stack import LandingZone  # noqa: PLC0415

    root = tmp_path / "demo"
    for folder in ("deployments", "transforms", "contracts"):
        shutil.copytree(REPO / folder, root / folder)
    zone = LandingZone(Settings(project_dir=root))
    zone.prepare()
    zone.land(1)
    env = _env(root, stack)
    for producer in ("ingest_flights", "ingest_weather"):
        result = _cli(["run", producer, "--partition", "year=2013/month=1"], root, env)
        assert result.returncode == 0, result.stdout + result.stderr

    result = _cli(["canary", "flight_delays"], root, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    live = json.loads((root / "data/_canary/flight_delays/live.json").read_text())
    assert live["version"] == "v2"
    assert not (root / "data/flight_delays").exists()  # the canary never writes production
