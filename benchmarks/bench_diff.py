"""The canary's keyed diff against datacompy and reladiff's joindiff, on the same tables.

Two tables of N rows x 10 columns (an Int64 key and nine value columns: Int32, Int64, two
Float64, two text, Boolean, Date, Float32; 1% nulls in two of them) are generated from a fixed
seed and written as Parquet. v2 differs from v1 in 0.1% of the value cells, chosen at random,
and its rows are shuffled. Each method runs in a process of its own, so that its peak memory is
its own:

- **flowfactory**: ``flowfactory.canary.diff.diff_frames`` with the full report (markdown and the
  differing-rows table), polars 2.x in the project's virtualenv; also on two identical tables
  (v1 against v1 shuffled), the common canary case;
- **datacompy** 1.1.0 ``PolarsCompare`` plus its text report. It requires polars < 1.45, so it
  runs from a separate virtualenv, ``.bench-venv/`` (created on first use, gitignored);
- **reladiff** 0.6.0 joindiff on DuckDB (same virtualenv), tables loaded into a DuckDB file
  before timing, every diff row consumed.

Loading the inputs is not timed. Figures: best and median seconds of the repeats, rows/s,
ratios of the peers' medians to flowfactory's, and peak resident memory (MiB) with the memory
after loading for scale.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

__all__ = ["ensure_peer_venv", "make_tables", "run"]

REPO: Final = Path(__file__).resolve().parent.parent
PEER_VENV: Final = REPO / ".bench-venv"
PEER_PINS: Final = (
    "polars==1.44.2",
    "datacompy==1.1.0",
    "reladiff==0.6.0",
    "duckdb==2.0.0",
    "numpy==2.4.6",
)
WORKER: Final = Path(__file__).resolve().parent / "diff_peers.py"
CHANGED_FRACTION: Final = 0.001
VALUE_COLUMNS: Final = ("i32", "i64", "f64a", "f64b", "s_small", "s_free", "b", "d", "f32")
TARGETS: Final = {"datacompy": 1.5, "reladiff": 5.0, "identical_rows_per_second": 3_000_000}


def ensure_peer_venv() -> Path:
    """The peers' interpreter; the virtualenv is created with pinned versions when missing."""
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ".pins"
    wanted = "\n".join(PEER_PINS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *PEER_PINS],
        check=True,
    )
    marker.write_text(wanted)
    return python


def make_tables(rows: int, folder: Path, seed: int = 0) -> int:
    """Write v1, v2 (0.1% of cells changed, shuffled) and v1 shuffled; return cells changed."""
    rng = np.random.default_rng(seed)
    v1 = pl.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "i32": rng.integers(0, 1_000, rows, dtype=np.int32),
            "i64": rng.integers(0, 10**12, rows, dtype=np.int64),
            "f64a": rng.normal(100, 15, rows),
            "f64b": rng.random(rows) * 1e6,
            "s_small": rng.choice(np.array(["AU", "US", "GB", "DE", "FR", "JP"]), rows),
            "s_free": rng.integers(0, 10**9, rows),
            "b": rng.random(rows) < 0.5,
            "d": rng.integers(0, 2_000, rows, dtype=np.int32),
            "f32": rng.random(rows).astype(np.float32),
        }
    ).with_columns(
        pl.format("cust-{}", pl.col("s_free")).alias("s_free"),
        (pl.date(2020, 1, 1) + pl.duration(days=pl.col("d"))).alias("d"),
    )
    nulls = pl.Series(rng.random(rows) < 0.01)
    v1 = v1.with_columns(
        pl.when(nulls).then(None).otherwise(pl.col("f64a")).alias("f64a"),
        pl.when(nulls).then(None).otherwise(pl.col("s_small")).alias("s_small"),
    )
    cells = rows * len(VALUE_COLUMNS)
    changes = round(cells * CHANGED_FRACTION)
    flat = rng.choice(cells, size=changes, replace=False)
    at_row, at_column = np.divmod(flat, len(VALUE_COLUMNS))
    edits = []
    for j, name in enumerate(VALUE_COLUMNS):
        mask = np.zeros(rows, dtype=bool)
        mask[at_row[at_column == j]] = True
        column, dtype = pl.col(name), v1.schema[name]
        if dtype == pl.Boolean:
            new = ~column
        elif dtype == pl.String:
            new = column.fill_null("") + "_x"
        elif dtype == pl.Date:
            new = column + pl.duration(days=1)
        elif dtype.is_float():
            new = column.fill_null(0.0) + 1.0
        else:
            new = column + 1
        edits.append(pl.when(pl.Series(mask)).then(new).otherwise(column).alias(name))
    v2 = v1.with_columns(edits).sample(fraction=1.0, shuffle=True, seed=seed + 1)
    v1.write_parquet(folder / "v1.parquet")
    v2.write_parquet(folder / "v2.parquet")
    v1.sample(fraction=1.0, shuffle=True, seed=seed + 2).write_parquet(
        folder / "v1_shuffled.parquet"
    )
    return changes


def _measure(python: Path, method: str, folder: Path, repeats: int) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(WORKER), method, str(folder), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if done.returncode != 0:
        return {"method": method, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["best"] = min(result["seconds"])
    result["median"] = statistics.median(result["seconds"])
    return result


def run(
    sizes: tuple[int, ...] = (1_000_000, 10_000_000),
    repeats: int = 3,
    peer_repeats: dict[str, int] | None = None,
    peers: bool = True,
) -> dict[str, Any]:
    """Diff the generated tables at each size with every method; return the figures."""
    peer_repeats = peer_repeats or {"datacompy": 2, "reladiff": 1}
    peer_python = ensure_peer_venv() if peers else None
    out: dict[str, Any] = {"sizes": {}, "targets": TARGETS, "peer_pins": list(PEER_PINS)}
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
            folder = Path(tmp)
            started = time.perf_counter()
            changes = make_tables(rows, folder)
            size: dict[str, Any] = {
                "rows": rows,
                "cells_changed": changes,
                "generate_seconds": time.perf_counter() - started,
            }
            size["flowfactory"] = _measure(Path(sys.executable), "flowfactory", folder, repeats)
            size["flowfactory-identical"] = _measure(
                Path(sys.executable), "flowfactory-identical", folder, repeats
            )
            if peer_python is not None:
                for method, count in peer_repeats.items():
                    size[method] = _measure(peer_python, method, folder, count)
            ours = size["flowfactory"].get("median")
            for method in ("datacompy", "reladiff"):
                theirs = size.get(method, {}).get("median")
                if ours and theirs:
                    size[f"ratio_{method}"] = theirs / ours
            ours_found = size["flowfactory"].get("found", {})
            for method in ("datacompy", "reladiff"):
                theirs_found = size.get(method, {}).get("found")
                if theirs_found is not None:
                    same_rows = theirs_found["rows_changed"] == ours_found.get("rows_changed")
                    same_columns = theirs_found.get("per_column", ours_found.get("per_column"))
                    size[f"agrees_{method}"] = same_rows and same_columns == ours_found.get(
                        "per_column"
                    )
            identical = size["flowfactory-identical"].get("median")
            if identical:
                size["identical_rows_per_second"] = rows / identical
            out["sizes"][str(rows)] = size
    return out


if __name__ == "__main__":
    print(
        json.dumps(run(sizes=(int(sys.argv[1]),) if len(sys.argv) > 1 else (1_000_000,)), indent=2)
    )
