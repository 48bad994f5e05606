"""One consumer run per input state, across processes and a server restart, and a fan-out.

Consumer runs are created by whoever announces an update, under the idempotency key of the
input state; Prefect's database keeps one run per key. Here two announcing processes repeat the
same updates while two `flowfactory worker` processes race to run what they create, and the
server restarts between the two halves of the inputs (the second half is announced while it is
down, so the announcers retry until it is back).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from prefect.client.schemas.objects import FlowRun
from tests.helpers import FLOWFACTORY, cli_env, free_port, read_partition, write_project
from tests.integration.conftest import project_settings
from tests.integration.test_data_aware import _deploy, _drain, _join_of_two, _land

from flowfactory.config import load_project
from flowfactory.data import DataRoot
from flowfactory.orchestration import Outcome, announce_update
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

MONTHS = range(1, 5)
A_ROWS: dict[str, list[Any]] = {"id": [1, 2], "amount": [10.0, 5.0]}
B_ROWS: dict[str, list[Any]] = {"id": [1, 2], "note": ["x", "y"]}

# Run in a separate process: announce each partition of DATASET twice, print the outcomes.
ANNOUNCER = textwrap.dedent(
    """\
    import json, sys
    from prefect.events.worker import EventsWorker
    from flowfactory.config import load_project
    from flowfactory.data import DataRoot
    from flowfactory.orchestration import announce_update
    from flowfactory.settings import get_settings

    dataset, months = sys.argv[1], [int(m) for m in sys.argv[2].split(",")]
    settings = get_settings()
    project = load_project(settings.deployments_dir, settings)
    root = DataRoot(settings.data_root_url)
    outcomes = []
    for _ in range(2):
        for month in months:
            for run in announce_update(project, root, dataset, f"month={month}", {}):
                outcomes.append([run.label, run.outcome.value, str(run.flow_run)])
    EventsWorker.drain_all(timeout=20)
    print(json.dumps(outcomes))
    """
)


def _project(p: str, pool: str) -> dict[str, str]:
    """`{p}_join` needs a month of both `{p}_a` and `{p}_b`; `{p}_copy` copies each `{p}_a`."""
    files = {path: f"{text}work_pool: {pool}\n" for path, text in _join_of_two(p).items()}
    files[f"deployments/{p}_copy.yaml"] = f"""\
name: {p}_copy
source: {{dataset: {p}_a, external: true}}
destination: {{dataset: {p}_copied, partition_by: [month], key: [id]}}
trigger: {{on: [{p}_a]}}
work_pool: {pool}
"""
    return files


@pytest.fixture
def restartable(tmp_path: Path, stack: LocalStack) -> Iterator[LocalStack]:
    """A server of the test's own (the session's must not restart), without a worker."""
    base = tmp_path / "own-server"
    base.mkdir()
    settings = Settings(
        project_dir=base,
        state_dir=base / "state",
        prefect_api_url=f"http://127.0.0.1:{free_port()}/api",
        poll_seconds=0.5,
    )
    local = LocalStack(settings, extra_env=dict(stack.extra_env))
    _drain()  # the events worker is cached with its URL: start afresh on the other server
    try:
        local.start_server()
        with local.client_environment():
            yield local
            _drain()
    finally:
        local.stop()
        _drain()


def _start_worker(root: Path, api_url: str, pool: str, state: Path) -> subprocess.Popen[bytes]:
    """`flowfactory worker` in a process of its own, its output in ``state``/output.log."""
    state.mkdir(parents=True)
    with (state / "output.log").open("wb") as output:
        return subprocess.Popen(
            [str(FLOWFACTORY), "worker", "--pool", pool],
            cwd=root,
            env=cli_env(api_url, FLOWFACTORY_STATE_DIR=str(state)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _start_announcer(root: Path, api_url: str, dataset: str) -> subprocess.Popen[str]:
    months = ",".join(str(m) for m in MONTHS)
    return subprocess.Popen(
        [sys.executable, "-c", ANNOUNCER, dataset, months],
        cwd=root,
        env=cli_env(api_url, FLOWFACTORY_PROJECT_DIR=str(root)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outcomes(announcers: list[subprocess.Popen[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    for process in announcers:
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        found.extend(json.loads(stdout.strip().splitlines()[-1]))
    return found


async def _runs(deployment: str) -> list[FlowRun]:
    async with get_client() as client:
        found = await client.read_deployment_by_name(deployment)
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[found.id])),
            limit=200,
        )


def _all_final(
    deployments: list[str], count: int, timeout: float = 300
) -> dict[str, list[FlowRun]]:
    """The runs of each deployment once it has ``count`` and every run there is ended."""
    deadline = time.monotonic() + timeout
    runs: dict[str, list[FlowRun]] = {}
    while time.monotonic() < deadline:
        runs = {d: asyncio.run(_runs(d)) for d in deployments}
        if all(
            len(found) >= count and all(r.state is not None and r.state.is_final() for r in found)
            for found in runs.values()
        ):
            return runs
        time.sleep(1)
    states = {d: [(r.name, r.state and r.state.name) for r in found] for d, found in runs.items()}
    raise AssertionError(f"not every run ended within {timeout:.0f} s: {states}")


def _one_completed_run_per_month(runs: list[FlowRun]) -> None:
    names = Counter(r.name for r in runs)
    assert all(n == 1 for n in names.values()), names
    assert sorted(r.parameters["partition"] for r in runs) == [f"month={m}" for m in MONTHS]
    assert {r.state.name for r in runs if r.state} == {"Completed"}, [
        (r.name, r.state and r.state.name, r.state and r.state.message) for r in runs
    ]
    assert len({r.idempotency_key for r in runs}) == len(runs)


def test_two_announcers_two_workers_and_a_restart_give_one_run_per_state(
    tmp_path: Path, restartable: LocalStack
) -> None:
    """Duplicate announcements from two processes, two workers, a restart: one run per state."""
    p = "x" + uuid.uuid4().hex[:8]
    pool = f"{p}-pool"
    root = write_project(tmp_path / "project", _project(p, pool))
    api_url = restartable.api_url
    settings = Settings(project_dir=root, prefect_api_url=api_url, project_name=root.name)
    _deploy(settings)
    workers = [_start_worker(root, api_url, pool, tmp_path / f"worker-{i}") for i in range(2)]
    try:
        for month in MONTHS:
            _land(settings, f"{p}_a", {**A_ROWS, "month": [month, month]}, f"month={month}")
        first = _outcomes([_start_announcer(root, api_url, f"{p}_a") for _ in range(2)])
        # Two processes, each announcing every month twice: every copy run created once.
        created = Counter(label for label, outcome, _ in first if outcome == Outcome.created)
        assert created == Counter({f"{p}_copy[month={m}]": 1 for m in MONTHS}), first
        assert {o for _, o, _ in first} <= {Outcome.created, Outcome.existing}, first
        assert len({run for _, _, run in first}) == len(MONTHS), first
        _all_final([f"pipeline/{p}_copy"], len(MONTHS))

        restartable.stop()
        for month in MONTHS:
            _land(settings, f"{p}_b", {**B_ROWS, "month": [month, month]}, f"month={month}")
        # Announced while the server is down: the announcers retry until it is back.
        announcers = [_start_announcer(root, api_url, f"{p}_b") for _ in range(2)]
        time.sleep(3)
        restartable.start_server()
        second = _outcomes(announcers)
        created = Counter(label for label, outcome, _ in second if outcome == Outcome.created)
        assert created == Counter({f"{p}_join[month={m}]": 1 for m in MONTHS}), second

        # And once more from here, as reconciliation would after a restart: nothing new.
        project = load_project(settings.deployments_dir, settings)
        again = announce_update(project, DataRoot(settings.data_root_url), f"{p}_b", "month=1", {})
        assert [(r.label, r.outcome) for r in again] == [(f"{p}_join[month=1]", Outcome.existing)]

        runs = _all_final([f"pipeline/{p}_copy", f"pipeline/{p}_join"], len(MONTHS))
        time.sleep(5)  # a late duplicate would show up by now
        runs = _all_final([f"pipeline/{p}_copy", f"pipeline/{p}_join"], len(MONTHS))
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    for found in runs.values():
        _one_completed_run_per_month(found)
    for month in MONTHS:
        joined = read_partition(root / "data", f"{p}_joined", f"month={month}")
        assert joined.sort("id")["note"].to_list() == ["x", "y"]


FAN = 50


def test_one_update_creates_one_run_for_each_of_50_consumers(
    tmp_path: Path, stack: LocalStack
) -> None:
    """50 consumers of one dataset: 50 runs from one announcement, none more from a second."""
    p = "f" + uuid.uuid4().hex[:8]
    idle = f"{p}-idle"  # no worker serves it: the runs stay Scheduled, and only their count matters
    files = {
        f"deployments/{p}_fan{i:02d}.yaml": f"""\
name: {p}_fan{i:02d}
source: {{dataset: {p}_src, external: true}}
destination: {{dataset: {p}_out{i:02d}}}
trigger: {{on: [{p}_src], partition: all}}
work_pool: {idle}
"""
        for i in range(FAN)
    }
    root = write_project(tmp_path, files)
    settings = project_settings(root, stack)
    project = _deploy(settings)
    _land(settings, f"{p}_src", {"id": [1], "month": [1]})
    data = DataRoot(settings.data_root_url)

    first = announce_update(project, data, f"{p}_src", "", {})
    second = announce_update(project, data, f"{p}_src", "", {})
    _drain()

    assert Counter(r.outcome for r in first) == Counter({Outcome.created: FAN}), first
    assert Counter(r.outcome for r in second) == Counter({Outcome.existing: FAN}), second
    assert [r.flow_run for r in first] == [r.flow_run for r in second]
    runs = [run for i in range(FAN) for run in asyncio.run(_runs(f"pipeline/{p}_fan{i:02d}"))]
    assert len(runs) == FAN
    assert sorted(r.name for r in runs) == sorted(f"{p}_fan{i:02d}" for i in range(FAN))
    assert {r.id for r in runs} == {r.flow_run for r in first}
