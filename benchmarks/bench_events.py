"""Latency of data-aware scheduling: from ``dataset.updated`` to the consumer's flow code starting.

On a local stack (a real ``prefect server start`` and a process worker polling every second), a
consumer triggers on an external dataset. For each of N partitions the benchmark lands a file,
announces it the way ``flowfactory emit`` does (``dataset.updated``, readiness, ``pipeline.ready``),
and reads back when the consumer's run was created and when it started running (its flow code
starts right after). It reports p50 and p95 of each stage.
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
from flowfactory.datasets import DataRoot
from flowfactory.settings import Settings
from flowfactory.triggering import announce_update

__all__ = ["run"]

REPO: Final = Path(__file__).resolve().parent.parent
TARGET_P50: Final = 2.0
PIPELINE: Final = """\
name: consumer
source:
  path: landing/events/*.csv
  external_dataset: ext_events
trigger: {on: [ext_events], require: any}
destination: {dataset: consumed, partition_by: [p]}
"""


def _project(root: Path) -> Settings:
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "pipeline.py").write_text((REPO / "flows" / "pipeline.py").read_text())
    (root / "flows" / "scheduling.py").write_text((REPO / "flows" / "scheduling.py").read_text())
    (root / "deployments").mkdir()
    (root / "deployments" / "consumer.yaml").write_text(PIPELINE)
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
