"""Latency of data-aware scheduling: from ``dataset.updated`` to the consumer's flow code starting.

On a local stack (a real ``prefect server start`` and a process worker polling every second), a
consumer triggers on an external dataset. For each of N partitions the benchmark lands a file,
announces it the way ``flowfactory emit`` does (``dataset.updated``, readiness, ``pipeline.ready``),
and reads back when the consumer's run was created and when it started running (its flow code
starts right after). It reports p50 and p95 of each stage.

Two more scenarios, each on a stack of its own:

- fan-out: one update of a dataset that 50 consumers trigger on; every consumer must start;
- burst: 300 partitions announced back to back; the consumer must get exactly 300 runs. No
  worker runs here, so what is counted is the event path alone (event, readiness check,
  automation, run creation), not the worker's capacity to run 300 flows at once.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from bench_run import _free_port, deployed_stack
from flowfactory.data import DataRoot
from flowfactory.orchestration import announce_update
from flowfactory.settings import Settings

__all__ = ["run", "run_burst", "run_fanout"]

TARGET_P50: Final = 2.0
PIPELINE: Final = """\
name: consumer
source:
  path: landing/events/*.csv
  external_dataset: ext_events
trigger: {on: [ext_events], require: any}
destination: {dataset: consumed, partition_by: [p]}
"""


FAN_CONSUMER: Final = """\
name: fan_{i:02d}
source:
  path: landing/fan/*.csv
  external_dataset: ext_fan
trigger: {{on: [ext_fan], require: any}}
destination: {{dataset: fan_{i:02d}}}
"""


def _project(root: Path, pipelines: dict[str, str] | None = None) -> Settings:
    (root / "deployments").mkdir(parents=True)
    for name, text in (pipelines or {"consumer": PIPELINE}).items():
        (root / "deployments" / f"{name}.yaml").write_text(text)
    return Settings(
        project_dir=root,
        state_dir=root / "state",
        prefect_api_url=f"http://127.0.0.1:{_free_port()}/api",
    )


async def _run_times(name: str, timeout: float = 120.0) -> tuple[datetime, datetime]:
    """When the consumer's run for a partition was created and when it started running."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            finished = [r for r in runs if r.state is not None and r.state.is_final()]
            if finished and finished[0].start_time is not None and finished[0].created:
                return finished[0].created, finished[0].start_time
            await asyncio.sleep(0.2)
    raise RuntimeError(f"no finished run {name} within {timeout:.0f} s")


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(events: int = 30) -> dict[str, Any]:
    """Announce ``events`` partitions one after another and time each consumer run."""
    with tempfile.TemporaryDirectory(prefix="ff-bench-events-") as tmp:
        settings = _project(Path(tmp))
        with deployed_stack(settings) as project:
            root = DataRoot(settings.data_root_url)
            created: list[float] = []
            started: list[float] = []
            for i in range(1, events + 1):
                landing = Path(settings.data_root_url) / "landing" / "events" / f"p{i}.csv"
                landing.parent.mkdir(parents=True, exist_ok=True)
                landing.write_text(f"p,v\n{i},1\n")
                emitted = time.time()
                announce_update(project, root, "ext_events", f"p={i}", {"bench": "events"})
                made, running = asyncio.run(_run_times(f"consumer[p={i}]"))
                created.append(made.timestamp() - emitted)
                started.append(running.timestamp() - emitted)
    return {
        "events": events,
        "poll_seconds": settings.poll_seconds,
        "created_p50": statistics.median(created),
        "created_p95": _percentile(created, 95),
        "started_p50": statistics.median(started),
        "started_p95": _percentile(started, 95),
        "started_max": max(started),
        "target_p50": TARGET_P50,
    }


async def _runs_of(deployments: list[str]) -> list[Any]:
    """Every flow run of the named deployments of the ``pipeline`` flow."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import (  # noqa: PLC0415
        FlowRunFilter,
        FlowRunFilterDeploymentId,
    )

    async with get_client() as client:
        ids = [(await client.read_deployment_by_name(f"pipeline/{d}")).id for d in deployments]
        runs: list[Any] = []
        while True:
            page = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=ids)),
                limit=200,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < 200:  # the page size above
                return runs


def _any_run(_run: object) -> bool:
    return True


def _wait_for(
    deployments: list[str], done: Any, expected: int, timeout: float
) -> tuple[list[Any], float]:
    """Poll until ``done(run)`` holds for ``expected`` runs (or the timeout); runs and seconds."""
    started = time.monotonic()
    runs: list[Any] = []
    while time.monotonic() - started < timeout:
        runs = asyncio.run(_runs_of(deployments))
        if sum(1 for r in runs if done(r)) >= expected:
            break
        time.sleep(0.5)
    return runs, time.monotonic() - started


def run_fanout(consumers: int = 50, timeout: float = 600.0) -> dict[str, Any]:
    """One update of a dataset that ``consumers`` pipelines trigger on: do they all start?"""
    names = [f"fan_{i:02d}" for i in range(consumers)]
    pipelines = {name: FAN_CONSUMER.format(i=i) for i, name in enumerate(names)}
    with tempfile.TemporaryDirectory(prefix="ff-bench-fanout-") as tmp:
        settings = _project(Path(tmp), pipelines)
        with deployed_stack(settings) as project:
            landing = Path(settings.data_root_url) / "landing" / "fan" / "part.csv"
            landing.parent.mkdir(parents=True, exist_ok=True)
            landing.write_text("p,v\n1,1\n")
            announce_update(project, DataRoot(settings.data_root_url), "ext_fan", "", {})
            created, created_s = _wait_for(names, _any_run, consumers, timeout)
            runs, started_s = _wait_for(
                names, lambda r: r.start_time is not None, consumers, timeout
            )
    per_deployment = {str(r.deployment_id) for r in runs if r.start_time is not None}
    return {
        "consumers": consumers,
        "runs_created": len(created),
        "consumers_started": len(per_deployment),
        "runs_started": sum(1 for r in runs if r.start_time is not None),
        "all_created_seconds": created_s,
        "all_started_seconds": started_s,
    }


def run_burst(events: int = 300, timeout: float = 600.0) -> dict[str, Any]:
    """``events`` partitions announced back to back: exactly one consumer run each?"""
    with tempfile.TemporaryDirectory(prefix="ff-bench-burst-") as tmp:
        settings = _project(Path(tmp))
        with deployed_stack(settings, worker=False) as project:
            root = DataRoot(settings.data_root_url)
            folder = Path(settings.data_root_url) / "landing" / "events"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(1, events + 1):
                (folder / f"p{i}.csv").write_text(f"p,v\n{i},1\n")
            started = time.monotonic()
            for i in range(1, events + 1):
                announce_update(project, root, "ext_events", f"p={i}", {"bench": "burst"})
            announced_s = time.monotonic() - started
            runs, created_s = _wait_for(["consumer"], _any_run, events, timeout)
            # Late duplicates would show up after the last expected run: wait a little longer.
            time.sleep(5)
            runs = asyncio.run(_runs_of(["consumer"]))
    partitions = [r.parameters.get("partition") for r in runs]
    return {
        "events": events,
        "runs": len(runs),
        "distinct_partitions": len(set(partitions)),
        "lost": events - len(set(partitions)),
        "duplicates": len(partitions) - len(set(partitions)),
        "announce_seconds": announced_s,
        "all_created_seconds": announced_s + created_s,
    }
