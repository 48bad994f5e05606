"""Two ways to run a consumer once both of its inputs have a partition, measured side by side.

(a) Prefect's own: a compound trigger (``require: all``) over the two inputs' ``dataset.updated``
    events, keyed by partition with ``for_each``, with a 10 s ``within`` window;
(b) flowfactory's: readiness derived from the data when an input is written, announced as
    ``pipeline.ready`` with an id per input state (what ``trigger: {require: all}`` compiles to).

Both listen to the same announcements in four scenarios (a new partition each): the inputs land
1 s apart; they land 15 s apart (beyond the window); one input is corrected after the consumer
ran; an announcement is duplicated. The benchmark counts the consumer runs each mechanism
started and their latency from the last announcement. The right counts are 1, 1, 2 and 1.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import polars as pl

from bench_run import _free_port, deployed_stack
from flowfactory.config import Project
from flowfactory.data import DataRoot, write_dataset
from flowfactory.orchestration import PIPELINE_ENTRYPOINT, announce_update
from flowfactory.settings import Settings

__all__ = ["run"]

WINDOW: Final = timedelta(seconds=10)
SETTLE: Final = 8.0
_SOURCES: Final = """\
sources:
  a: {dataset: cmp_a, external: true}
  b: {dataset: cmp_b, external: true}
transform:
  sql: SELECT a.p, a.v + b.v AS v FROM a JOIN b USING (p)
"""
PIPELINES: Final = {
    "readiness.yaml": "name: readiness\n"
    + _SOURCES
    + "destination: {dataset: out_readiness, partition_by: [p]}\n"
    + "trigger: {on: [cmp_a, cmp_b], require: all}\n",
    "compound.yaml": "name: compound\n"
    + _SOURCES
    + "destination: {dataset: out_compound, partition_by: [p]}\n",
}
# (scenario, steps): each step is (input, value, seconds to wait before the next step)
SCENARIOS: Final = [
    ("inputs 1 s apart", [("a", 1, 1.0), ("b", 1, 0.0)]),
    ("inputs 15 s apart (window 10 s)", [("a", 1, 15.0), ("b", 1, 0.0)]),
    ("input corrected after the run", [("a", 1, 1.0), ("b", 1, SETTLE), ("a", 2, 0.0)]),
    ("announcement duplicated", [("a", 1, 0.5), ("a", 1, 1.0), ("b", 1, 0.0)]),
]
EXPECTED: Final = [1, 1, 2, 1]


def _project(root: Path) -> Settings:
    (root / "deployments").mkdir(parents=True)
    for name, text in PIPELINES.items():
        (root / "deployments" / name).write_text(text)
    return Settings(
        project_dir=root,
        state_dir=root / "state",
        prefect_api_url=f"http://127.0.0.1:{_free_port()}/api",
    )


async def _add_compound_trigger(settings: Settings) -> None:
    """Prefect's way: the `compound` deployment starts on a compound trigger of both inputs."""
    from prefect.events import DeploymentCompoundTrigger, EventTrigger  # noqa: PLC0415
    from prefect.flows import Flow  # noqa: PLC0415

    def child(dataset: str) -> EventTrigger:
        return EventTrigger(
            expect={"dataset.updated"},
            match={"prefect.resource.id": f"dataset.{dataset}"},
            for_each={"dataset.partition"},
        )

    trigger = DeploymentCompoundTrigger(
        name="compound: both inputs updated",
        require="all",
        within=WINDOW,
        triggers=[child("cmp_a"), child("cmp_b")],
        parameters={
            "name": "compound",
            "partition": "{{ event.resource.get('dataset.partition', '') }}",
        },
    )
    flow = await Flow.afrom_source(str(settings.project_dir), PIPELINE_ENTRYPOINT)
    deployment = await flow.ato_deployment(
        name="compound",
        parameters={"name": "compound"},
        work_pool_name="flowfactory",
        triggers=[trigger],
    )
    await deployment.aapply()


def _land(project: Project, root: DataRoot, dataset: str, partition: int, value: int) -> None:
    destination = project.get("compound").config.destination.model_copy(update={"dataset": dataset})
    frame = pl.DataFrame({"p": [partition], "v": [value]})
    write_dataset(root, frame, destination)
    announce_update(project, root, dataset, f"p={partition}", {"bench": "mechanisms"})


async def _runs(name: str) -> list[tuple[str, float]]:
    """(state name, start time) of every run called ``name``."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName  # noqa: PLC0415

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )
    return [
        (
            (r.state.name if r.state else None) or "?",
            r.start_time.timestamp() if r.start_time else float("nan"),
        )
        for r in runs
    ]


_FINAL: Final = frozenset({"Completed", "Skipped", "Failed", "Crashed", "Cancelled"})


def _settled(partition: int, quiet: float = SETTLE, timeout: float = 90.0) -> dict[str, Any]:
    """Every run of both mechanisms, once all are final and none appeared for ``quiet`` s."""
    deadline = time.monotonic() + timeout
    last_change, previous = time.monotonic(), None
    while True:
        seen = {m: asyncio.run(_runs(f"{m}[p={partition}]")) for m in ("compound", "readiness")}
        states = sorted(s for runs in seen.values() for s, _ in runs)
        if states != previous:
            last_change, previous = time.monotonic(), states
        settled = all(s in _FINAL for s in states)
        if (settled and time.monotonic() - last_change >= quiet) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def _scenario(
    project: Project, root: DataRoot, partition: int, steps: list[tuple[str, int, float]]
) -> dict[str, Any]:
    last = 0.0
    for dataset, value, pause in steps:
        last = time.time()
        _land(project, root, f"cmp_{dataset}", partition, value)
        time.sleep(pause)
    seen = _settled(partition)
    result: dict[str, Any] = {}
    for mechanism in ("compound", "readiness"):
        runs = seen[mechanism]
        executed = [start for state, start in runs if state == "Completed"]
        result[mechanism] = {
            "states": [state for state, _ in runs],
            "runs": len(executed),
            "skipped": sum(state == "Skipped" for state, _ in runs),
            # Latency of the first run that started after the last announcement.
            "latency": min((t - last for t in executed if t >= last), default=None),
        }
    return result


def run() -> dict[str, Any]:
    """Play every scenario against both mechanisms on one local stack."""
    with tempfile.TemporaryDirectory(prefix="ff-bench-mechanisms-") as tmp:
        settings = _project(Path(tmp))
        with deployed_stack(settings) as project:
            asyncio.run(_add_compound_trigger(settings))
            root = DataRoot(settings.data_root_url)
            scenarios = [
                {"scenario": name, "expected": expected, **_scenario(project, root, i, steps)}
                for i, ((name, steps), expected) in enumerate(
                    zip(SCENARIOS, EXPECTED, strict=True), start=1
                )
            ]
    return {"window_seconds": WINDOW.total_seconds(), "scenarios": scenarios}
