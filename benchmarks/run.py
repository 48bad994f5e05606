"""Run the benchmarks, print one table of figures and ratios, write results/latest.json.

Usage: .venv/bin/python benchmarks/run.py
       [--only load|run|events|mechanisms|schema|diff|breaker] [--api-url URL]
       [--load-repeats N] [--run-repeats K] [--schema-repeats S]
       [--diff-rows 1000000 10000000] [--diff-no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

import bench_breaker
import bench_diff
import bench_events
import bench_load
import bench_mechanisms
import bench_run
import bench_schema

RESULTS: Final = Path(__file__).resolve().parent / "results" / "latest.json"
HEADER: Final = ("bench", "case", "best", "median", "per item", "ratio (median)", "target")


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def _load_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    best, median = result["best_seconds"], result["median_seconds"]
    per_file, ratio = result["per_file_ms_median"], result["ratio_median"]
    targets, met = result["targets"], result["meets_targets"]
    target = f"< {targets['seconds']:g} s, <= {targets['ratio']:g}x"
    labels = {
        "bare": "(a) yaml.load CSafeLoader",
        "load": "(b) load_project",
        "build": "(c) load + specs + render",
    }
    rows: list[tuple[str, ...]] = []
    for key, label in labels.items():
        verdict = "" if key == "bare" else f"{target}: {'met' if met[key] else 'MISSED'}"
        rows.append(
            (
                "load",
                label,
                _s(best[key]),
                _s(median[key]),
                f"{per_file[key]:.3f} ms/file",
                f"{ratio[key]:.2f}x (a)",
                verdict,
            )
        )
    peak = result["peak_mib"]
    rows.append(
        (
            "load",
            "peak memory, tracemalloc",
            "",
            "",
            "",
            f"{peak['build'] / peak['bare']:.1f}x (a)",
            f"(c) {peak['build']:.1f} MiB, (a) {peak['bare']:.1f} MiB",
        )
    )
    return rows


def _run_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    best, median = result["best_seconds"], result["median_seconds"]
    ratio, overhead = result["ratio_median"], result["overhead_seconds_median"]
    rows: list[tuple[str, ...]] = []
    for key, label, against in (
        ("bare_subprocess", "bare polars, subprocess", ""),
        ("deployment", "deployment run via worker", "bare_subprocess"),
        ("bare_inprocess", "bare polars, in-process", ""),
        ("flow_inprocess", "flow called in-process", "bare_inprocess"),
    ):
        rows.append(
            (
                "run",
                label,
                _s(best[key]),
                _s(median[key]),
                f"{result['rows']:,} rows",
                f"{ratio[key]:.2f}x" if against else "1.00x",
                f"overhead +{overhead[key]:.2f} s" if against else "",
            )
        )
    return rows


def _seconds_or_missing(value: float | None) -> str:
    return "not all" if value is None else f"{value:.1f} s"


def _way_rows(
    name: str, result: dict[str, Any], count: int, target: float
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for way in ("flowfactory", "automations", "floor"):
        seen = result[way]
        created = seen["all_created_seconds"]
        exact = seen["lost"] == 0 and seen["duplicates"] == 0
        verdict = ""
        if way == "flowfactory":
            fast = created is not None and created <= target
            verdict = f"<= {target:g} s, exact: {'met' if fast and exact else 'MISSED'}"
        rows.append(
            (
                "events",
                f"{name}: {way}",
                _seconds_or_missing(created),
                _seconds_or_missing(seen["all_started_seconds"]),
                f"{seen['runs']}/{count} runs",
                f"lost {seen['lost']}, duplicates {seen['duplicates']}",
                verdict,
            )
        )
    return rows


def _fanout_burst_rows(fanout: dict[str, Any], burst: dict[str, Any]) -> list[tuple[str, ...]]:
    """Best = all runs created, median = all runs started, from the update (see bench_events)."""
    n, events = fanout["consumers"], burst["events"]
    return [
        *_way_rows(f"fan-out 1 -> {n}", fanout, n, bench_events.FANOUT_TARGET_SECONDS),
        *_way_rows(
            f"burst of {events}, pool limit {burst['pool_limit']}",
            burst,
            events,
            bench_events.BURST_TARGET_SECONDS,
        ),
    ]


def _event_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    n = result["events"]
    met = "met" if result["started_p50"] <= result["target_p50"] else "MISSED"
    return [
        (
            "events",
            "run created after event",
            f"p50 {result['created_p50']:.2f} s",
            f"p95 {result['created_p95']:.2f} s",
            f"{n} events",
            "",
            "",
        ),
        (
            "events",
            "flow code starts after event",
            f"p50 {result['started_p50']:.2f} s",
            f"p95 {result['started_p95']:.2f} s",
            f"{n} events",
            f"max {result['started_max']:.2f} s",
            f"p50 <= {result['target_p50']:.0f} s: {met}",
        ),
    ]


def _mechanism_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for item in result["scenarios"]:
        for mechanism in ("compound", "readiness"):
            seen = item[mechanism]
            latency = "-" if seen["latency"] is None else f"{seen['latency']:.2f} s"
            verdict = "right" if seen["runs"] == item["expected"] else "WRONG"
            rows.append(
                (
                    "trigger",
                    f"{mechanism}: {item['scenario']}",
                    f"{seen['runs']} run(s)",
                    f"expected {item['expected']}",
                    f"skipped {seen['skipped']}",
                    latency,
                    verdict,
                )
            )
    return rows


def _schema_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for key, label in (("demo", "demo pipelines"), ("generated", "generated pipelines")):
        item = result[key]
        n = item["pipelines"]
        static, sample = item["static_seconds"], item["sample_seconds"]
        verdict = "met" if item["meets_target"] else "MISSED"
        rows.append(
            (
                "schema",
                f"{label}: check, static ({n})",
                _s(static["best"]),
                _s(static["median"]),
                f"{item['static_ms_per_pipeline']:.2f} ms/pipeline",
                "1.00x",
                f"< {item['target_ms']:g} ms/pipeline: {verdict}",
            )
        )
        rows.append(
            (
                "schema",
                f"{label}: run on a sample ({n})",
                _s(sample["best"]),
                _s(sample["median"]),
                f"{item['sample_ms_per_pipeline']:.2f} ms/pipeline",
                f"{item['ratio_median']:.2f}x",
                "",
            )
        )
    return rows


def _breaker_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    per_call, overhead = result["per_call_us"], result["overhead_us"]
    met = result["meets_targets"]
    target_call, target_reject = result["targets"]["overhead_us"], result["targets"]["rejection_us"]

    def verdict(key: str, text: str) -> str:
        return f"{text}: {'met' if met[key] else 'MISSED'}"

    rows: list[tuple[str, ...]] = [
        ("breaker", "closed: unwrapped await", "", f"{per_call['unwrapped']:.2f} us", "", "", "")
    ]
    for key, label in (
        ("purgatory", "closed: purgatory decorator"),
        ("flowfactory", "closed: breaker.acall"),
        ("flowfactory_block", "closed: async with guard()"),
    ):
        check = verdict("overhead", f"<= {target_call:g} us") if key == "flowfactory" else ""
        rows.append(
            (
                "breaker",
                label,
                "",
                f"{per_call[key]:.2f} us",
                f"+{overhead[key]:.2f} us",
                f"{per_call[key] / per_call['purgatory']:.2f}x purgatory",
                check,
            )
        )
    reject, memory = result["per_rejection_us"], result["memory_mib_after_100k"]
    rows.extend(
        (
            "breaker",
            f"open: rejection, {key}",
            "",
            f"{reject[key]:.2f} us",
            f"{memory[key]:.2f} MiB/100k",
            f"{reject[key] / reject['purgatory']:.2f}x purgatory",
            verdict("rejection", f"<= {target_reject:g} us") if key == "flowfactory" else "",
        )
        for key in ("purgatory", "flowfactory")
    )
    storm = result["storm"]
    for concurrency, pair in storm["by_concurrency"].items():
        without = pair["without_breaker"]["upstream_requests"]
        with_it = pair["with_breaker"]["upstream_requests"]
        check = ""
        if concurrency == "1":
            check = verdict("storm", f"<= {storm['threshold'] + storm['probes']}")
        rows.append(
            (
                "breaker",
                f"storm {storm['tasks']}x{storm['retries']} retries, {concurrency} in flight",
                f"{without} req",
                f"{with_it} req",
                "upstream requests",
                f"{with_it / without:.3f}x",
                check,
            )
        )
    return rows


def _diff_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    targets = result["targets"]
    for size in result["sizes"].values():
        n = size["rows"]
        for method in ("flowfactory", "flowfactory-identical", "datacompy", "reladiff"):
            figures = size.get(method)
            if figures is None:
                continue
            if "error" in figures:
                rows.append(
                    ("diff", f"{method} {n:,} rows", "error", "", "", "", figures["error"][0])
                )
                continue
            ratio, verdict = "", ""
            if method in ("datacompy", "reladiff"):
                ratio = f"{size[f'ratio_{method}']:.2f}x flowfactory"
                met = size[f"ratio_{method}"] >= targets[method]
                agrees = "same counts" if size.get(f"agrees_{method}") else "COUNTS DIFFER"
                verdict = f">= {targets[method]:g}x: {'met' if met else 'MISSED'}; {agrees}"
            elif method == "flowfactory-identical":
                met = size["identical_rows_per_second"] >= targets["identical_rows_per_second"]
                verdict = f">= 3M rows/s: {'met' if met else 'MISSED'}"
            memory = (
                f"peak {figures['peak_rss_mib']:,.0f} MiB (inputs {figures['rss_loaded_mib']:,.0f})"
            )
            rows.append(
                (
                    "diff",
                    f"{method} {n:,} rows, {memory}",
                    _s(figures["best"]),
                    _s(figures["median"]),
                    f"{n / figures['median'] / 1e6:.2f} M rows/s",
                    ratio,
                    verdict,
                )
            )
    return rows


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.ljust(width) if i < 2 or i == len(row) - 1 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEADER), rule, *(line(r) for r in rows)])


def _notes(results: dict[str, Any]) -> list[str]:
    notes = []
    if "fanout" in results:
        notes.append(
            "events fan-out/burst: best = seconds from the announcement until the last run "
            "existed, median = until the last run started (server timestamps), one measurement "
            f"each, on {results['fanout']['api_url']}; automations = one Prefect automation "
            "per consumer on dataset.updated, floor = the runs created directly, concurrently"
        )
    if "load" in results:
        load = results["load"]
        kinds = ", ".join(f"{k} {v}" for k, v in load["kinds"].items())
        notes.append(
            f"load: {load['files']:,} files + _defaults.yaml ({load['bytes_per_file']:.0f} B/file; "
            f"sources: {kinds}); best/median of {load['repeats']}, first (cold) run of (c) "
            f"{load['first_seconds']['build']:.3f} s; targets judged on the median"
        )
    if "run" in results:
        run = results["run"]
        notes.append(
            f"run: {run['pipeline']} {run['partition']}, best/median of {run['repeats']} after "
            f"a warm-up each; worker polls every {run['worker_poll_seconds']:g} s; "
            f"stack start + deploy {run['stack_start_and_deploy_seconds']:.1f} s; "
            f"outputs identical: {run['outputs_identical']}"
        )
        notes.append(
            "run ratios: deployment run / bare subprocess, in-process flow / bare in-process"
        )
    if "schema" in results:
        schema = results["schema"]
        notes.append(
            f"schema: median of {schema['repeats']} interleaved repeats (3 for the generated "
            f"project); static = check_project with the data folder moved away; sample = each "
            f"pipeline run on the first {schema['sample_rows']:,} rows of every file source, "
            "upstream outputs kept in memory; loading the files is not included "
            f"(demo {schema['demo']['load_seconds']:.3f} s, generated "
            f"{schema['generated']['load_seconds']:.3f} s); ratio = sample / static"
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the selected benchmarks and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        choices=["load", "run", "events", "mechanisms", "schema", "diff", "breaker"],
        help="run one benchmark only",
    )
    parser.add_argument("--events", type=int, default=30, help="events for bench_events (>= 30)")
    parser.add_argument(
        "--api-url",
        help="bench_events fan-out and burst: the Prefect API of another stack (its workers run "
        "the flows) instead of a SQLite stack of their own",
    )
    parser.add_argument("--load-repeats", type=int, default=7, help="N for bench_load (>= 5)")
    parser.add_argument("--run-repeats", type=int, default=7, help="K for bench_run (>= 5)")
    parser.add_argument("--schema-repeats", type=int, default=5, help="N for bench_schema")
    parser.add_argument(
        "--diff-rows",
        type=int,
        nargs="+",
        default=[1_000_000, 10_000_000],
        help="table sizes for bench_diff",
    )
    parser.add_argument("--diff-no-peers", action="store_true", help="bench_diff: flowfactory only")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    results: dict[str, Any] = {}
    rows: list[tuple[str, ...]] = []
    if args.only in (None, "load"):
        results["load"] = bench_load.run(repeats=args.load_repeats)
        rows += _load_rows(results["load"])
    if args.only in (None, "run"):
        results["run"] = bench_run.run(repeats=args.run_repeats)
        rows += _run_rows(results["run"])
    if args.only in (None, "events"):
        results["events"] = bench_events.run(events=args.events)
        rows += _event_rows(results["events"])
        results["fanout"] = bench_events.run_fanout(api_url=args.api_url)
        results["burst"] = bench_events.run_burst(api_url=args.api_url)
        rows += _fanout_burst_rows(results["fanout"], results["burst"])
    if args.only in (None, "mechanisms"):
        results["mechanisms"] = bench_mechanisms.run()
        rows += _mechanism_rows(results["mechanisms"])
    if args.only in (None, "schema"):
        results["schema"] = bench_schema.run(repeats=args.schema_repeats)
        rows += _schema_rows(results["schema"])
    if args.only in (None, "diff"):
        results["diff"] = bench_diff.run(sizes=tuple(args.diff_rows), peers=not args.diff_no_peers)
        rows += _diff_rows(results["diff"])
    if args.only in (None, "breaker"):
        results["breaker"] = bench_breaker.run()
        rows += _breaker_rows(results["breaker"])
    results["environment"] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        **{name: version(name) for name in ("flowfactory", "prefect", "polars", "pyyaml")},
        "total_seconds": time.perf_counter() - started,
    }

    print(_table(rows))
    for note in _notes(results):
        print(f"* {note}")
    env = results["environment"]
    print(
        f"* python {env['python']}, prefect {env['prefect']}, polars {env['polars']}, "
        f"{env['cpus']} CPUs; total {env['total_seconds']:.0f} s"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"* wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
