"""A run whose output breaks its locked contract writes nothing, fails naming the columns, and
emits schema.incompatible, on a real Prefect server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from tests.helpers import cli_env, read_partition, write_project

from flowfactory.config import load_project
from flowfactory.schema import lock_project
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

FLOWFACTORY = str(Path(sys.executable).with_name("flowfactory"))
PIPELINE = """\
name: {name}
source: {{path: landing/orders.csv}}
transform:
  sql: SELECT CAST(id AS BIGINT) AS id, CAST(amount AS DOUBLE) AS amount, note FROM source
destination: {{dataset: {name}, key: [id]}}
schema: {{compatibility: forward}}
"""
ORDERS = "id,amount,note\n1,10.5,a\n2,3.0,b\n"


def _project(tmp_path: Path, name: str) -> Path:
    root = write_project(
        tmp_path,
        {
            f"deployments/{name}.yaml": PIPELINE.format(name=name),
            "data/landing/orders.csv": ORDERS,
        },
    )
    settings = Settings(project_dir=root)
    assert lock_project(load_project(settings.deployments_dir, settings), settings).ok
    return root


def _run(root: Path, name: str, stack: LocalStack) -> subprocess.CompletedProcess[str]:
    env = cli_env(stack.api_url, FLOWFACTORY_PROJECT_NAME=root.name)
    return subprocess.run(
        [FLOWFACTORY, "run", name],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def _events(dataset: str) -> list[Event]:
    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=["schema.incompatible"]),
                resource=EventResourceFilter(id=[f"dataset.{dataset}"]),
            ),
            limit=10,
        )
    return list(page.events)


def _wait_for_event(dataset: str, timeout: float = 60) -> Event:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = asyncio.run(_events(dataset))
        if found:
            return found[0]
        time.sleep(1)
    raise AssertionError(f"no schema.incompatible event for dataset.{dataset}")


def test_run_that_drops_a_contracted_column_writes_nothing(
    tmp_path: Path, stack: LocalStack
) -> None:
    """Dropping `amount` from the transform fails the run before the write, naming `amount`."""
    name = "contract_drop"
    root = _project(tmp_path, name)
    path = root / "deployments" / f"{name}.yaml"
    path.write_text(path.read_text().replace(" CAST(amount AS DOUBLE) AS amount,", ""))
    result = _run(root, name, stack)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "breaks the contract" in result.stderr
    assert "column dropped: amount" in result.stderr
    assert not (root / "data" / name).exists()
    event = _wait_for_event(name)
    assert event.payload["columns"] == ["amount"]
    assert event.payload["changes"][0]["kind"] == "column_dropped"


def test_run_with_duplicate_keys_writes_nothing(tmp_path: Path, stack: LocalStack) -> None:
    """Rows that break key uniqueness are refused, whatever the schema says."""
    name = "contract_dupes"
    root = _project(tmp_path, name)
    (root / "data" / "landing" / "orders.csv").write_text(ORDERS + "2,4.0,c\n")
    result = _run(root, name, stack)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "duplicate keys: id" in result.stderr
    assert not (root / "data" / name).exists()


def test_run_within_its_contract_writes(tmp_path: Path, stack: LocalStack) -> None:
    """The unchanged pipeline passes its own contract and lands its data."""
    name = "contract_ok"
    root = _project(tmp_path, name)
    result = _run(root, name, stack)
    assert result.returncode == 0, result.stdout + result.stderr
    written = read_partition(root / "data", name)
    assert written["id"].to_list() == [1, 2]
