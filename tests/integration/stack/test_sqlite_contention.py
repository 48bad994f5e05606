"""The local stack's SQLite server under replay-like load: writers wait for the lock, none fails."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from prefect.events.worker import EventsWorker
from tests.helpers import FLOWFACTORY, cli_env, write_project
from tests.integration.conftest import project_settings
from tests.integration.test_data_aware import _wait_for_runs

from flowfactory.config import load_project
from flowfactory.data import DataRoot
from flowfactory.deploy import deploy_project
from flowfactory.orchestration import announce_update
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

PARTITIONS = 8


def _files(p: str) -> dict[str, str]:
    files = {
        f"deployments/{p}_copy.yaml": f"""\
name: {p}_copy
source: {{path: landing/{p}/*.csv, external_dataset: {p}_landed}}
trigger: {{on: [{p}_landed]}}
destination: {{dataset: {p}_copied, partition_by: [month], key: [id]}}
""",
        f"deployments/{p}_sum.yaml": f"""\
name: {p}_sum
source: {{dataset: {p}_copied}}
transform:
  sql: SELECT month, count(*) AS n FROM source GROUP BY month
trigger: {{on: [{p}_copied]}}
destination: {{dataset: {p}_summed, partition_by: [month], key: [month]}}
""",  # noqa: S608 - a pipeline file that holds SQL, not a query built from input
        f"deployments/{p}_manual.yaml": f"""\
name: {p}_manual
source: {{path: landing/{p}/*.csv}}
destination: {{dataset: {p}_manual, key: [id]}}
""",
    }
    for month in range(1, PARTITIONS + 1):
        rows = "".join(f"{month * 100 + i},{month}\n" for i in range(20))
        files[f"data/landing/{p}/month={month}.csv"] = f"id,month\n{rows}"
    return files


def _cli(root: Path, api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLOWFACTORY), *args],
        cwd=root,
        env=cli_env(api_url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_run_and_a_deploy_during_replay_activity_leave_no_lock_error(
    tmp_path: Path, stack: LocalStack
) -> None:
    """Automations creating runs, a redeploy and a manual run at once: no 'database is locked'."""
    p = "c" + uuid.uuid4().hex[:8]
    root = write_project(tmp_path, _files(p))
    settings = project_settings(root, stack)
    project = load_project(settings.deployments_dir, settings)
    asyncio.run(deploy_project(project, settings, prune=False))
    server_log = stack.state / "logs" / "server.log"
    before = server_log.stat().st_size

    calls: dict[str, subprocess.CompletedProcess[str]] = {}

    def user() -> None:
        calls["deploy"] = _cli(root, stack.api_url, "deploy")
        calls["run"] = _cli(root, stack.api_url, "run", f"{p}_manual")

    second_terminal = threading.Thread(target=user)
    second_terminal.start()
    data = DataRoot(settings.data_root_url)
    for month in range(1, PARTITIONS + 1):
        announce_update(project, data, f"{p}_landed", f"month={month}", {"source": "test"})
    EventsWorker.drain_all(timeout=30)
    second_terminal.join(timeout=600)

    assert calls["deploy"].returncode == 0, calls["deploy"].stdout + calls["deploy"].stderr
    assert calls["run"].returncode == 0, calls["run"].stdout + calls["run"].stderr
    assert f"{p}_manual: Completed" in calls["run"].stdout
    assert len(_wait_for_runs(f"pipeline/{p}_copy", PARTITIONS, timeout=300)) == PARTITIONS
    assert len(_wait_for_runs(f"pipeline/{p}_sum", PARTITIONS, timeout=300)) >= PARTITIONS
    with server_log.open("rb") as log:
        log.seek(before)
        written = log.read().decode(errors="replace")
    locked = [line for line in written.splitlines() if "database is locked" in line]
    assert locked == [], "\n".join(locked[:5])


def test_open_websockets_do_not_hold_back_http_requests(stack: LocalStack) -> None:
    """Prefect caps a SQLite server at 100 requests at once; each running flow holds two
    WebSockets. With 120 open, an HTTP request must still be answered, not wait for a socket."""
    from websockets.asyncio.client import connect  # noqa: PLC0415 - Prefect's own dependency

    ws_url = stack.api_url.replace("http://", "ws://") + "/events/out"

    async def check() -> int:
        async with contextlib.AsyncExitStack() as sockets:
            for _ in range(120):
                await sockets.enter_async_context(connect(ws_url, open_timeout=30))
            async with httpx.AsyncClient(timeout=30) as client:
                return (await client.get(f"{stack.api_url}/health")).status_code

    assert asyncio.run(check()) == 200
