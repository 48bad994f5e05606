"""Loading 1,000 pipeline files: flowfactory's loader against a bare libyaml load of the same files.

Three cases, timed in the same process over the same files (read from disk each time):

(a) ``yaml.load(text, Loader=yaml.CSafeLoader)`` of every file, the floor;
(b) ``load_project``: positioned YAML, defaults merge, pydantic validation, set checks;
(c) (b) then ``render_prefect_yaml``, which builds every deployment spec and writes the file.
"""

from __future__ import annotations

import gc
import random
import statistics
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import yaml

from flowfactory.config import load_project
from flowfactory.deploy import render_prefect_yaml
from flowfactory.settings import Settings

__all__ = ["generate_project", "run"]

PIPELINES: Final = 1_000
TARGET_SECONDS: Final = 1.0
TARGET_RATIO: Final = 3.0
SEED: Final = 20130101

_DEFAULTS: Final = """\
# Merged into every pipeline file of this folder; a pipeline's own keys win (tags add up).
owner: data-platform
tags: [generated]
work_pool: flowfactory
retries: {attempts: 2, delay: 5s, backoff: exponential, jitter: 0.2}
"""

_DOMAINS: Final = (
    "sales",
    "orders",
    "payments",
    "inventory",
    "marketing",
    "web",
    "support",
    "finance",
    "logistics",
    "hr",
    "flights",
    "weather",
)
_ENTITIES: Final = (
    "customers",
    "invoices",
    "sessions",
    "shipments",
    "refunds",
    "tickets",
    "campaigns",
    "products",
    "stores",
    "employees",
    "carriers",
    "events",
)
_VERBS: Final = ("daily", "monthly", "clean", "enriched", "stats", "rollup", "latest", "joined")
_TAGS: Final = ("ingest", "stats", "pii", "finance", "gold", "silver", "bronze", "sla", "adhoc")
_OWNERS: Final = ("analytics", "data-platform", "growth", "finance-eng", "ops")
_TIMEZONES: Final = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
_CRONS: Final = (
    "0 * * * *",
    "15 * * * *",
    "0 6 * * *",
    "30 2 * * 1-5",
    "*/10 * * * *",
    "0 0 1 * *",
)
_INTERVALS: Final = ("15m", "1h", "1h30m", "2d", "3600", "45s")
_PARTITIONS: Final = ((), ("year", "month"), ("day",), ("region",), ("year", "month", "day"))
_PYTHON_TARGETS: Final = (
    "transforms.flights:clean_flights",
    "transforms.flights:carrier_stats",
    "transforms.sales.orders:dedupe",
    "transforms.common:enrich",
    "transforms.web.sessions:sessionize",
)
_FORMATS: Final = ("csv", "csv", "csv", "parquet", "jsonl")


def _file_source(rng: random.Random, domain: str, entity: str, indent: str) -> list[str]:
    """A file source's keys (a path under the landing zone or an object-store URL)."""
    fmt = rng.choice(_FORMATS)
    if rng.random() < 0.15:
        path = f"s3://lake-{domain}/raw/{entity}/*.{fmt}"
    else:
        path = f"landing/{domain}/{entity}/*.{fmt}"
    lines = [f"{indent}path: {path}"]
    if fmt == "csv" and rng.random() < 0.6:
        nulls = rng.choice(('["NA"]', '["", "NULL"]', '["\\\\N"]'))
        schema = rng.choice(("null", "1000", "10000"))
        sep = rng.choice((",", ",", ";", "|"))
        lines.append(
            f'{indent}csv: {{separator: "{sep}", null_values: {nulls}, '
            f"infer_schema_length: {schema}}}"
        )
    return lines


def _sql(rng: random.Random, tables: list[str], key: list[str]) -> list[str]:
    """A multi-line SQL transform over ``tables`` (the first one drives the join)."""
    first = tables[0]
    measures = rng.sample(["amount", "quantity", "delay", "duration", "price"], k=rng.randint(1, 3))
    select = [*key] + [f"sum({m}) AS total_{m}" for m in measures] + ["count(*) AS n"]
    lines = ["  sql: |", f"    SELECT {', '.join(select)}", f"    FROM {first}"]
    lines += [f"    LEFT JOIN {t} USING (id)" for t in tables[1:]]
    if rng.random() < 0.5:
        lines.append("    WHERE amount IS NOT NULL AND status <> 'cancelled'")
    lines.append(f"    GROUP BY {', '.join(key)}")
    return lines


def _inputs(
    rng: random.Random, kind: str, domain: str, entity: str, produced: list[str]
) -> tuple[list[str], list[str]]:
    """The ``source:``/``sources:`` lines of a pipeline and the table names they define."""
    if kind == "file":
        return ["source:", *_file_source(rng, domain, entity, "  ")], ["source"]
    if kind == "dataset":
        # Producers come first: only datasets of earlier files, mostly recent ones (chains).
        return [f"source: {{dataset: {rng.choice(produced[-200:])}}}"], ["source"]
    if kind == "external":
        return [f"source: {{dataset: ext_{domain}_{entity}, external: true}}"], ["source"]
    tables = [f"t{i}_{d}" for i, d in enumerate(rng.sample(produced, k=rng.randint(2, 4)))]
    lines = ["sources:", *(f"  {t}: {{dataset: {t.split('_', 1)[1]}}}" for t in tables)]
    if rng.random() < 0.4:
        tables.append("ref")
        lines += ["  ref:", *_file_source(rng, "reference", entity, "    ")]
    if rng.random() < 0.2:
        tables.append("ext")
        lines.append(f"  ext: {{dataset: ext_{domain}_{entity}, external: true}}")
    return lines, tables


def _schedule_and_retries(rng: random.Random) -> list[str]:
    """Optional ``schedule:``, ``retries:`` and ``work_pool:`` lines."""
    lines = []
    roll = rng.random()
    if roll < 0.5:
        cron, timezone = rng.choice(_CRONS), rng.choice(_TIMEZONES)
        lines.append(f'schedule: {{cron: "{cron}", timezone: {timezone}}}')
    elif roll < 0.7:
        lines += ["schedule:", f"  interval: {rng.choice(_INTERVALS)}"]
        if rng.random() < 0.5:
            lines.append(f"  timezone: {rng.choice(_TIMEZONES)}")
    if rng.random() < 0.4:
        lines += [
            "retries:",
            f"  attempts: {rng.randint(0, 5)}",
            f"  delay: {rng.choice(('1s', '30s', '2m', 10))}",
            f"  backoff: {rng.choice(('constant', 'exponential'))}",
        ]
    if rng.random() < 0.1:
        lines.append("work_pool: flowfactory-heavy")
    return lines


def _pipeline(rng: random.Random, index: int, produced: list[str]) -> tuple[str, str, str, str]:
    """One pipeline file: (file name, text, kind, dataset it produces)."""
    domain, entity, verb = rng.choice(_DOMAINS), rng.choice(_ENTITIES), rng.choice(_VERBS)
    name = f"{domain}_{entity}_{verb}_{index:04d}"
    dataset = f"{domain}_{entity}_{index:04d}"
    partition = list(rng.choice(_PARTITIONS))
    key = [*partition, *rng.sample(["id", "customer_id", "store_id", "sku"], k=rng.randint(1, 2))]
    roll = rng.random()
    kind = (
        "file"
        if index < 30 or roll < 0.35
        else "dataset"
        if roll < 0.6
        else "external"
        if roll < 0.68
        else "multi"
    )
    lines = ["# yaml-language-server: $schema=./pipeline.schema.json"]
    if rng.random() < 0.9:  # else the name comes from the file name
        lines.append(f"name: {name}")
    if rng.random() < 0.8:
        lines.append(f'description: "{verb.title()} {entity} of {domain}, pipeline #{index}."')
    if rng.random() < 0.3:
        lines.append(f"owner: {rng.choice(_OWNERS)}")
    lines.append(f"tags: [{', '.join(rng.sample(_TAGS, k=rng.randint(1, 4)))}]")
    source_lines, tables = _inputs(rng, kind, domain, entity, produced)
    lines += source_lines
    transform_roll = rng.random()
    if kind == "multi" or transform_roll < 0.55:
        lines += ["transform:", *_sql(rng, tables, key)]
    elif transform_roll < 0.85:
        lines.append(f"transform: {{python: {rng.choice(_PYTHON_TARGETS)}}}")
    lines += ["destination:", f"  dataset: {dataset}"]
    if partition:
        lines.append(f"  partition_by: [{', '.join(partition)}]")
    lines.append(f"  key: [{', '.join(key)}]")
    lines += _schedule_and_retries(rng)
    return f"p{index:04d}_{name}.yaml", "\n".join(lines) + "\n", kind, dataset


def generate_project(folder: Path, count: int = PIPELINES, seed: int = SEED) -> Counter[str]:
    """Write ``count`` varied, valid pipeline files and ``_defaults.yaml``; return the kinds."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_defaults.yaml").write_text(_DEFAULTS)
    kinds: Counter[str] = Counter()
    produced: list[str] = []
    for index in range(count):
        file_name, text, kind, dataset = _pipeline(rng, index, produced)
        (folder / file_name).write_text(text)
        kinds[kind] += 1
        produced.append(dataset)
    return kinds


# ------------------------------------------------------------------------------------------------


def _bare_yaml(folder: Path) -> int:
    """(a) Every file of the folder through libyaml's safe loader, nothing else."""
    data = [
        yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        for path in sorted(folder.glob("*.yaml"))
    ]
    return len(data)


def _load(folder: Path, settings: Settings) -> int:
    """(b) flowfactory's loader: load, validate, check the set."""
    return len(load_project(folder, settings).pipelines)


def _load_and_build(folder: Path, settings: Settings) -> int:
    """(c) Load, then build every deployment spec and render them into prefect.yaml."""
    project = load_project(folder, settings)
    text = render_prefect_yaml(project)
    return len(project.pipelines) + (1 if text else 0)


def _time_once(fn: Callable[[], int]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _peak_mib(fn: Callable[[], int]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / (1 << 20)


def run(repeats: int = 7, count: int = PIPELINES) -> dict[str, Any]:
    """Generate the files, time the three cases ``repeats`` times (interleaved), report."""
    with tempfile.TemporaryDirectory(prefix="flowfactory-bench-load-") as tmp:
        folder = Path(tmp)
        kinds = generate_project(folder, count)
        settings = Settings(project_dir=folder)
        cases: dict[str, Callable[[], int]] = {
            "bare": lambda: _bare_yaml(folder),
            "load": lambda: _load(folder, settings),
            "build": lambda: _load_and_build(folder, settings),
        }
        loaded = cases["load"]()  # also checks that the generated set is valid
        assert loaded == count, f"loaded {loaded} of {count} pipelines"
        first = {name: _time_once(fn) for name, fn in cases.items()}
        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for i in range(repeats):
            # Rotate the order so that no case always runs right after the same other one.
            for name in names[i % len(names) :] + names[: i % len(names)]:
                times[name].append(_time_once(cases[name]))
        peaks = {name: _peak_mib(cases[name]) for name in ("bare", "build")}
        sizes = [p.stat().st_size for p in folder.glob("*.yaml")]
    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    return {
        "files": count,
        "kinds": dict(sorted(kinds.items())),
        "bytes_per_file": statistics.mean(sizes),
        "repeats": repeats,
        "seconds": times,
        "first_seconds": first,
        "best_seconds": best,
        "median_seconds": median,
        "per_file_ms_median": {k: v * 1000 / count for k, v in median.items()},
        "ratio_median": {k: median[k] / median["bare"] for k in median},
        "ratio_best": {k: best[k] / best["bare"] for k in best},
        "peak_mib": peaks,
        "targets": {"seconds": TARGET_SECONDS, "ratio": TARGET_RATIO},
        "meets_targets": {
            k: median[k] < TARGET_SECONDS and median[k] / median["bare"] <= TARGET_RATIO
            for k in ("load", "build")
        },
    }
