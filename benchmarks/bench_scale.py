"""flowfactory runs against bare polars on TPC-H ``lineitem``, and the demo run's overhead.

Scale: ``lineitem`` is generated with ``tpchgen-cli`` as Parquet (cached under
``benchmarks/.data/tpch/sf<N>/``, generated only when missing) and landed, as a hard link, in
a throwaway project. Two cases, each one pipeline file:

- **q1**: TPC-H Q1 as a ``sql:`` transform (4 rows out);
- **partitioned**: 12 columns and the ship year, ``partition_by: [ship_year]`` (7 partitions),
  ``key: [l_orderkey, l_linenumber]``.

Each case runs as ``flowfactory run NAME`` in a subprocess (a user's command, against a Prefect
server this benchmark starts once, with the stack's warm executor running as ``flowfactory up``
has it: the command hands the run to it, and the forked run's memory counts as the command's),
as the same command with ``FLOWFACTORY_WARM_START=false`` (``flowfactory-cold``: the command
imports Prefect and runs the flow itself), and as a bare polars script in a subprocess doing
the same query lazily on the streaming engine (``scan_parquet``, the same SQL, ``collect`` or
``sink_parquet(pl.PartitionBy(...))``). All are timed and their peak resident memory measured
(``measured_process``); the outputs are compared (Q1: the frames; partitioned: rows and a
checksum of the content per partition).

Demo: ``ingest_flights`` for one month, as the flow function called in this process against the
same server, and through the worker as a deployment run, against the bare script of
``bench_run`` called in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl
from polars.testing import assert_frame_equal

from bench_run import (
    BARE_SCRIPT as DEMO_BARE_SCRIPT,
)
from bench_run import (
    PARTITION as DEMO_PARTITION,
)
from bench_run import (
    PIPELINE as DEMO_PIPELINE,
)
from bench_run import (
    _drain_prefect_clients,
    _environment,
    _make_project,
    _quiet_prefect_console,
)
from flowfactory.config import load_project
from flowfactory.data import DataRoot, Partition
from flowfactory.orchestration import PIPELINE_ENTRYPOINT
from flowfactory.settings import Settings
from flowfactory.stack import LandingZone, LocalStack
from measured_process import ProcessFigures, run_measured

__all__ = ["CASES", "DATA_DIR", "SIDES", "TARGETS", "clean_data", "lineitem_file", "run"]

DATA_DIR: Final = Path(__file__).resolve().parent / ".data" / "tpch"
TPCHGEN: Final = Path(sys.executable).with_name("tpchgen-cli")
FLOWFACTORY: Final = Path(sys.executable).with_name("flowfactory")
FLOWFACTORY_SIDES: Final = ("flowfactory", "flowfactory-cold")
SIDES: Final = (*FLOWFACTORY_SIDES, "polars")
TARGETS: Final = {"time_ratio": 1.3, "rss_ratio": 1.5, "judged_at_sf": 10.0, "overhead_s": 0.3}
RUN_TIMEOUT: Final = 600.0

Q1_SQL: Final = """\
SELECT l_returnflag, l_linestatus,
       sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty,
       avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc,
       count(*) AS count_order
FROM lineitem
WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90 days'
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
"""

PARTITIONED_COLUMNS: Final = (
    "l_orderkey",
    "l_partkey",
    "l_suppkey",
    "l_linenumber",
    "l_quantity",
    "l_extendedprice",
    "l_discount",
    "l_tax",
    "l_returnflag",
    "l_linestatus",
    "l_shipdate",
    "l_shipmode",
)
PARTITIONED_SQL: Final = """\
SELECT l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice,
       l_discount, l_tax, l_returnflag, l_linestatus, l_shipdate, l_shipmode,
       EXTRACT(YEAR FROM l_shipdate) AS ship_year
FROM lineitem
"""

PIPELINE_TEMPLATE: Final = """\
name: {name}
description: {description}
sources:
  lineitem: {{path: landing/lineitem/*.parquet}}
transform:
  sql: |
{sql}
destination:
{destination}
"""

# The same work as a pipeline, as someone would write it with polars alone.
BARE_TEMPLATE: Final = '''\
"""{description}"""

import sys

import polars as pl

SQL = """
{sql}"""


def main(source: str, out: str) -> None:
    lineitem = pl.scan_parquet(source)
    result = pl.SQLContext(frames={{"lineitem": lineitem}}).execute(SQL)
    {write}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


@dataclass(frozen=True)
class Case:
    """One pipeline and its bare polars twin."""

    name: str
    pipeline: str
    dataset: str
    description: str
    sql: str
    destination: dict[str, Any]
    bare_write: str

    def pipeline_yaml(self) -> str:
        """The pipeline file."""
        destination = [f"  dataset: {self.dataset}"]
        destination += [f"  {k}: [{', '.join(v)}]" for k, v in self.destination.items()]
        return PIPELINE_TEMPLATE.format(
            name=self.pipeline,
            description=self.description,
            sql="\n".join(f"    {line}" for line in self.sql.splitlines()),
            destination="\n".join(destination),
        )

    def bare_script(self) -> str:
        """The bare polars script: ``python script.py LINEITEM OUT``."""
        return BARE_TEMPLATE.format(
            description=self.description, sql=self.sql, write=self.bare_write
        )


CASES: Final = {
    "q1": Case(
        name="q1",
        pipeline="tpch_q1",
        dataset="tpch_q1",
        description="TPC-H Q1, the pricing summary report, over lineitem.",
        sql=Q1_SQL,
        destination={"key": ["l_returnflag", "l_linestatus"]},
        bare_write='result.collect(engine="streaming").write_parquet(out)',
    ),
    "partitioned": Case(
        name="partitioned",
        pipeline="tpch_lineitem_by_year",
        dataset="lineitem_by_year",
        description="Twelve lineitem columns, partitioned by ship year.",
        sql=PARTITIONED_SQL,
        destination={"partition_by": ["ship_year"], "key": ["l_orderkey", "l_linenumber"]},
        bare_write=(
            'result.sink_parquet(pl.PartitionBy(out, key="ship_year"), mkdir=True, '
            'engine="streaming")'
        ),
    ),
}


def _sf_label(sf: float) -> str:
    return f"sf{sf:g}"


def lineitem_file(sf: float) -> tuple[Path, float | None]:
    """The cached lineitem Parquet file of scale factor ``sf``, generated if missing.

    Returns the file and the seconds generation took (None when it was cached). tpchgen-cli
    writes into a temporary sibling folder that is renamed when complete, so an interrupted
    generation is never taken for a cached file.
    """
    folder = DATA_DIR / _sf_label(sf)
    target = folder / "lineitem.parquet"
    if target.is_file():
        return target, None
    if not TPCHGEN.exists():
        raise RuntimeError(
            f"{TPCHGEN} not found: install the dev extra (pip install -e '.[dev]') or "
            "pip install tpchgen-cli==4.0.0"
        )
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{_sf_label(sf)}-", dir=DATA_DIR))
    started = time.perf_counter()
    try:
        argv = [str(TPCHGEN), "parquet", "--scale-factor", f"{sf:g}", "--tables", "lineitem"]
        argv += ["--output-dir", str(partial), "--quiet"]
        print(f"generating TPC-H lineitem at SF{sf:g} into {folder} ...", file=sys.stderr)
        _run_checked(argv)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target, time.perf_counter() - started


def _run_checked(argv: Sequence[str]) -> None:
    """Run a command to its end; raise with its output if it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.strip()}")


def clean_data() -> Path:
    """Delete the cached TPC-H files; returns the folder that held them."""
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    return DATA_DIR


def _make_scale_project(root: Path, lineitem: Path, cases: Sequence[Case]) -> Path:
    """A project with one pipeline per case and the lineitem file landed under its data root."""
    (root / "deployments").mkdir(parents=True)
    for case in cases:
        (root / "deployments" / f"{case.pipeline}.yaml").write_text(case.pipeline_yaml())
        (root / f"bare_{case.name}.py").write_text(case.bare_script())
    landing = root / "data" / "landing" / "lineitem"
    landing.mkdir(parents=True)
    try:
        (landing / lineitem.name).hardlink_to(lineitem)
    except OSError:  # another filesystem
        (landing / lineitem.name).symlink_to(lineitem)
    (root / "logs").mkdir()
    return landing / lineitem.name


def _live_files(data_root: Path, dataset: str) -> dict[str, list[str]]:
    """flowfactory's output as a reader sees it: each partition's files, from its manifest."""
    partitions = DataRoot(str(data_root)).dataset_partitions(dataset)
    return {text: list(files.files) for text, files in partitions.items()}


def _sink_files(out: Path) -> dict[str, list[str]]:
    """The bare script's output: a file, or a folder per partition (``ship_year=1995``)."""
    if out.is_file():
        return {"": [str(out)]}
    return {
        folder.name: [str(f) for f in sorted(folder.glob("*.parquet"))]
        for folder in sorted(out.iterdir())
        if folder.is_dir()
    }


def _q1_equal(ours: list[str], theirs: list[str]) -> bool:
    key = CASES["q1"].destination["key"]
    try:
        assert_frame_equal(
            pl.read_parquet(ours).sort(key), pl.read_parquet(theirs).sort(key), rel_tol=1e-9
        )
    except AssertionError:
        return False
    return True


def _partition_digests(partitions: dict[str, list[str]]) -> dict[str, tuple[int, int, int]]:
    """Per partition (``ship_year=1995``): rows and two sums of row hashes.

    The sums do not depend on row order or on how a partition is split into files, so the
    outputs of two writers compare equal when they hold the same rows.
    """
    row_hash = pl.struct(PARTITIONED_COLUMNS).hash(seed=0)
    digests = {}
    for text, files in partitions.items():
        frame = pl.scan_parquet(files, hive_partitioning=False).select(
            pl.len().cast(pl.Int64).alias("rows"),
            (row_hash % 2**32).sum().alias("low"),
            (row_hash // 2**32).sum().alias("high"),
        )
        rows, low, high = frame.collect(engine="streaming").row(0)
        digests[text] = (rows, low, high)
    return digests


def _outputs_equal(case: Case, data_root: Path, bare: Path) -> bool | None:
    ours = _live_files(data_root, case.dataset)
    if not ours or not bare.exists():
        return None
    theirs = _sink_files(bare)
    if case.name == "q1":
        return _q1_equal(ours[""], theirs[""])
    return _partition_digests(ours) == _partition_digests(theirs)


@dataclass
class _ScaleRun:
    project: Path
    lineitem: Path
    env: dict[str, str]
    rss_limit: int
    warm_pid: int | None

    def measure(self, case: Case, side: str) -> tuple[ProcessFigures, Path]:
        """One run of a side, from an empty output; returns its figures and output path."""
        env, adopt = self.env, None
        if side in FLOWFACTORY_SIDES:
            out = self.project / "data" / case.dataset
            argv = [str(FLOWFACTORY), "run", case.pipeline]
            if side == "flowfactory":
                adopt = self.warm_pid
            else:
                env = {**env, "FLOWFACTORY_WARM_START": "false"}
        else:
            out = self.project / "bare-out" / case.dataset
            out = out if case.name == "partitioned" else out.with_suffix(".parquet")
            script = self.project / f"bare_{case.name}.py"
            argv = [sys.executable, str(script), str(self.lineitem), str(out)]
        shutil.rmtree(out, ignore_errors=True)
        out.unlink(missing_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        log = self.project / "logs" / f"{case.name}-{side}.log"
        figures = run_measured(
            argv, env=env, cwd=self.project, log=log, rss_limit=self.rss_limit, adopt=adopt
        )
        if figures.returncode != 0 and not figures.over_limit:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"{' '.join(argv)} exited {figures.returncode}:\n{tail}")
        return figures, out


def _mib(n: int) -> float:
    return n / 2**20


def _case_result(
    case: Case, sf: float, rows_in: int, figures: dict[str, list[ProcessFigures]]
) -> dict[str, Any]:
    sides: dict[str, Any] = {}
    for side, runs in figures.items():
        ok = [f for f in runs if f.ok]
        sides[side] = {
            "runs": [asdict(f) for f in runs],
            "over_limit": any(f.over_limit for f in runs),
            "median_seconds": statistics.median(f.seconds for f in ok) if ok else None,
            "peak_rss_mib": _mib(max(f.peak_rss_bytes for f in runs)),
        }
    result: dict[str, Any] = {"case": case.name, "sf": sf, "rows_in": rows_in, **sides}
    theirs = sides.get("polars")
    cold = sides.get("flowfactory-cold")
    if cold and theirs and cold["median_seconds"] and theirs["median_seconds"]:
        result["cold_time_ratio"] = cold["median_seconds"] / theirs["median_seconds"]
        result["cold_rss_ratio"] = cold["peak_rss_mib"] / theirs["peak_rss_mib"]
    ours = sides.get("flowfactory")
    if ours and theirs and ours["median_seconds"] and theirs["median_seconds"]:
        result["time_ratio"] = ours["median_seconds"] / theirs["median_seconds"]
        result["rss_ratio"] = ours["peak_rss_mib"] / theirs["peak_rss_mib"]
        if sf == TARGETS["judged_at_sf"]:
            result["meets_targets"] = (
                result["time_ratio"] <= TARGETS["time_ratio"]
                and result["rss_ratio"] <= TARGETS["rss_ratio"]
            )
    return result


def _scale(
    root: Path,
    *,
    env: dict[str, str],
    scale_factors: Sequence[float],
    cases: Sequence[Case],
    sides: Sequence[str],
    repeats: int,
    rss_limit: int,
    warm_pid: int | None,
) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    results, generated = [], {}
    for sf in scale_factors:
        cached, seconds = lineitem_file(sf)
        generated[f"{sf:g}"] = seconds
        project = root / "tpch" / _sf_label(sf)
        lineitem = _make_scale_project(project, cached, cases)
        rows_in = int(pl.scan_parquet(lineitem).select(pl.len()).collect().item())
        runner = _ScaleRun(
            project,
            lineitem,
            {**env, "FLOWFACTORY_PROJECT_DIR": str(project)},
            rss_limit,
            warm_pid,
        )
        for case in cases:
            figures: dict[str, list[ProcessFigures]] = {side: [] for side in sides}
            outputs: dict[str, Path] = {}
            for _ in range(repeats):
                for side in sides:  # interleaved, so drift on a busy machine hits both
                    measured, outputs[side] = runner.measure(case, side)
                    figures[side].append(measured)
            result = _case_result(case, sf, rows_in, figures)
            if "polars" in outputs and len(outputs) > 1:
                # Every flowfactory side writes the same dataset; the last one is compared.
                result["outputs_equal"] = _outputs_equal(case, project / "data", outputs["polars"])
            results.append(result)
        shutil.rmtree(project / "data" / "landing")
        for side_out in (project / "data", project / "bare-out"):
            shutil.rmtree(side_out, ignore_errors=True)  # SF10 outputs are gigabytes
    return results, generated


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _deployment_run() -> dict[str, float]:
    """One deployment run through the worker: the caller's wait and the server's timestamps."""
    from prefect.client.schemas.objects import FlowRun  # noqa: PLC0415
    from prefect.deployments import run_deployment  # noqa: PLC0415

    started = time.perf_counter()
    flow_run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync: no coroutine
        name=f"pipeline/{DEMO_PIPELINE}",
        parameters={"name": DEMO_PIPELINE, "partition": DEMO_PARTITION},
        poll_interval=0.2,
        timeout=RUN_TIMEOUT,
    )
    waited = time.perf_counter() - started
    state = flow_run.state
    if state is None or not state.is_completed():
        raise RuntimeError(f"deployment run of {DEMO_PIPELINE} ended {state!r}")
    created, start, end = flow_run.created, flow_run.start_time, flow_run.end_time
    if created is None or start is None or end is None:
        raise RuntimeError(f"deployment run {flow_run.id} has no created/start/end time")
    return {
        "caller_seconds": waited,
        "created_to_completed_seconds": (end - created).total_seconds(),
        "created_to_running_seconds": (start - created).total_seconds(),
        "flow_seconds": (end - start).total_seconds(),
    }


def _demo(settings: Settings, stack: LocalStack, repeats: int) -> dict[str, Any]:
    """The demo month in-process and through the worker, against bare polars in-process."""
    from prefect.flows import Flow, load_flow_from_entrypoint  # noqa: PLC0415

    from flowfactory.deploy import deploy_project  # noqa: PLC0415 - imports prefect
    from flowfactory.orchestration.flows import engine_settings  # noqa: PLC0415 - imports prefect

    root = settings.project_dir
    zone = LandingZone(settings)
    zone.prepare()
    zone.land(1)
    asyncio.run(
        deploy_project(load_project(settings.deployments_dir, settings), settings, prune=False)
    )
    stack.start_worker("flowfactory")
    csv_path = str(Path(settings.data_root_url) / "landing" / "flights" / "2013-01.csv")
    script = root / "bare_flights.py"
    script.write_text(DEMO_BARE_SCRIPT)
    bare_main = runpy.run_path(str(script), run_name="bare")["main"]
    bare_out = str(root / "bare-flights.parquet")
    flow: Flow[..., Any] = load_flow_from_entrypoint(PIPELINE_ENTRYPOINT)
    _quiet_prefect_console()
    # Warm-ups: the first deployment run also waits for the worker to start.
    _deployment_run()
    inprocess: list[float] = []
    bare: list[float] = []
    worker: list[dict[str, float]] = []
    # In-process the way `flowfactory run` calls the flow: under flowfactory's engine settings.
    with engine_settings(settings):
        flow(DEMO_PIPELINE, DEMO_PARTITION)
        bare_main(csv_path, bare_out)
        for _ in range(repeats):
            inprocess.append(_timed(lambda: flow(DEMO_PIPELINE, DEMO_PARTITION)))
            bare.append(_timed(lambda: bare_main(csv_path, bare_out)))
            worker.append(_deployment_run())
    stack.check_alive()
    produced = pl.read_parquet(
        DataRoot(settings.data_root_url).dataset_files("flights", Partition.parse(DEMO_PARTITION))
    )
    median = {
        "flow_inprocess": statistics.median(inprocess),
        "bare_inprocess": statistics.median(bare),
        **{k: statistics.median(w[k] for w in worker) for k in worker[0]},
    }
    best = {
        "flow_inprocess": min(inprocess),
        "bare_inprocess": min(bare),
        **{k: min(w[k] for w in worker) for k in worker[0]},
    }
    # What each way of running costs on top of the same work done by bare polars.
    overhead = {
        k: median[k] - median["bare_inprocess"]
        for k in ("flow_inprocess", "created_to_completed_seconds", "flow_seconds")
    }
    return {
        "pipeline": DEMO_PIPELINE,
        "partition": DEMO_PARTITION,
        "repeats": repeats,
        "rows": produced.height,
        "outputs_identical": produced.equals(pl.read_parquet(bare_out)),
        "seconds": {"flow_inprocess": inprocess, "bare_inprocess": bare, "worker": worker},
        "median_seconds": median,
        "best_seconds": best,
        "overhead_seconds_median": overhead,
        "meets_target": overhead["flow_inprocess"] <= TARGETS["overhead_s"],
        "worker_poll_seconds": settings.poll_seconds,
    }


def _available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 8 * 2**30


@contextlib.contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="flowfactory-bench-scale-")).resolve()
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _stopped_after(stack: LocalStack) -> Iterator[None]:
    """Stop the stack on the way out; after a failure, show the end of each of its logs."""
    try:
        yield
    except Exception:
        tails = (f"--- last lines of {m.log_path}:\n{m.tail()}\n" for m in stack.processes)
        sys.stderr.write("".join(tails))
        raise
    finally:
        _drain_prefect_clients()  # while the server still answers
        stack.stop()


def run(
    *,
    scale_factors: Sequence[float] = (1.0, 10.0),
    cases: Sequence[str] = tuple(CASES),
    sides: Sequence[str] = SIDES,
    repeats: int = 1,
    demo_repeats: int = 5,
    rss_limit: int | None = None,
    demo: bool = True,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Start one server, run the scale cases, then the demo month; stop everything."""
    limit = rss_limit if rss_limit is not None else _available_memory() // 2
    with _workspace(keep_data) as root:
        settings = _make_project(root)
        stack = LocalStack(settings)
        with (
            _environment({"FLOWFACTORY_PROJECT_DIR": str(root)}),
            stack.client_environment(),
            _stopped_after(stack),
        ):
            started = time.perf_counter()
            stack.start_server()
            os.environ.update(stack.env())
            server_seconds = time.perf_counter() - started
            warm_pid = None
            if "flowfactory" in sides:  # a running stack's executor, as `flowfactory up` has
                socket = stack.start_warm_executor()
                os.environ["FLOWFACTORY_WARM_SOCKET"] = str(socket)
                deadline = time.monotonic() + 120
                while not socket.exists():  # preloading takes a few seconds
                    if time.monotonic() > deadline:
                        raise RuntimeError("the warm executor did not listen within 120 s")
                    time.sleep(0.1)
                warm_pid = next(m.process.pid for m in stack.processes if m.name == "warm-executor")
            scale, generated = _scale(
                root,
                env=dict(os.environ),
                scale_factors=scale_factors,
                cases=[CASES[c] for c in cases],
                sides=sides,
                repeats=repeats,
                rss_limit=limit,
                warm_pid=warm_pid,
            )
            demo_result = _demo(settings, stack, demo_repeats) if demo else None
    return {
        "scale_factors": list(scale_factors),
        "cases": list(cases),
        "sides": list(sides),
        "repeats": repeats,
        "rss_limit_mib": _mib(limit),
        "targets": TARGETS,
        "server_start_seconds": server_seconds,
        "generation_seconds": generated,
        "data_dir": str(DATA_DIR),
        "workspace": str(root) if keep_data else None,
        "runs": scale,
        "demo": demo_result,
    }
