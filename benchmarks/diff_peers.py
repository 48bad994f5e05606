"""One diff method, timed in a process of its own: ``python diff_peers.py METHOD DIR REPEATS``.

Runs under the project's virtualenv (``flowfactory``, ``flowfactory-identical``) or under the
peers' (``datacompy``, ``reladiff``: they need polars < 1.45, see bench_diff.py), so it imports
only what its method needs. Prints one JSON object: seconds per repeat, the resident memory
after loading the inputs and at its peak (MiB), and what the method found.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

KEY = "id"


def _rss_mib() -> float:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _flowfactory(folder: Path, repeats: int, *, identical: bool) -> tuple[list[float], Any]:
    import polars as pl  # noqa: PLC0415

    from flowfactory.canary import diff_frames  # noqa: PLC0415

    v1 = pl.read_parquet(folder / "v1.parquet")
    v2 = pl.read_parquet(folder / ("v1_shuffled.parquet" if identical else "v2.parquet"))
    loaded = _rss_mib()
    times, report = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        report = diff_frames(v1, v2, [KEY])
        report.markdown()
        report.differing_rows()
        times.append(time.perf_counter() - started)
    assert report is not None
    found = {
        "verdict": report.verdict.value,
        "rows_changed": report.rows_changed,
        "unequal_values": report.unequal_values,
        "per_column": {c.column: c.unequal for c in report.columns},
    }
    return times, (loaded, found)


def _datacompy(folder: Path, repeats: int) -> tuple[list[float], Any]:
    import datacompy  # noqa: PLC0415
    import polars as pl  # noqa: PLC0415

    v1 = pl.read_parquet(folder / "v1.parquet")
    v2 = pl.read_parquet(folder / "v2.parquet")
    loaded = _rss_mib()
    times, compare = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        compare = datacompy.PolarsCompare(v1, v2, join_columns=KEY, abs_tol=0, rel_tol=0)
        compare.report(sample_count=10)
        times.append(time.perf_counter() - started)
    assert compare is not None
    per_column = {s["column"]: s["unequal_cnt"] for s in compare.column_stats if s["column"] != KEY}
    found = {
        "matches": compare.matches(),
        "rows_changed": compare.intersect_rows.height - compare.count_matching_rows(),
        "unequal_values": sum(per_column.values()),
        "per_column": per_column,
        "datacompy": datacompy.__version__,
        "polars": pl.__version__,
    }
    return times, (loaded, found)


def _reladiff(folder: Path, repeats: int) -> tuple[list[float], Any]:
    import duckdb  # noqa: PLC0415
    import reladiff  # noqa: PLC0415

    database = folder / "peers.duckdb"
    if not database.exists():
        with duckdb.connect(str(database)) as con:
            for table in ("v1", "v2"):
                source = folder / f"{table}.parquet"
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?)", [str(source)])  # noqa: S608 - fixed names
    with duckdb.connect(str(database), read_only=True) as con:
        described = con.execute("DESCRIBE v1").fetchall()
    columns = tuple(str(row[0]) for row in described if row[0] != KEY)
    loaded = _rss_mib()
    times, stats = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        t1 = reladiff.connect_to_table(f"duckdb://{database}", "v1", KEY)
        t2 = reladiff.connect_to_table(f"duckdb://{database}", "v2", KEY)
        diff = reladiff.diff_tables(
            t1.replace(extra_columns=columns),
            t2.replace(extra_columns=columns),
            algorithm=reladiff.Algorithm.JOINDIFF,
        )
        rows = sum(1 for _ in diff)
        stats = diff.get_stats_dict()
        times.append(time.perf_counter() - started)
    assert stats is not None
    found = {
        "rows_changed": stats["updated"],
        "exclusive": [stats["exclusive_A"], stats["exclusive_B"]],
        "diff_lines": rows,
        "reladiff": reladiff.__version__ if hasattr(reladiff, "__version__") else "",
        "duckdb": duckdb.__version__,
    }
    return times, (loaded, found)


def main() -> int:
    """Run one method and print its figures as JSON."""
    method, folder, repeats = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    if method == "flowfactory":
        times, (loaded, found) = _flowfactory(folder, repeats, identical=False)
    elif method == "flowfactory-identical":
        times, (loaded, found) = _flowfactory(folder, repeats, identical=True)
    elif method == "datacompy":
        times, (loaded, found) = _datacompy(folder, repeats)
    elif method == "reladiff":
        times, (loaded, found) = _reladiff(folder, repeats)
    else:
        raise SystemExit(f"unknown method {method}")
    print(
        json.dumps(
            {
                "method": method,
                "seconds": times,
                "rss_loaded_mib": loaded,
                "peak_rss_mib": _peak_mib(),
                "found": found,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
