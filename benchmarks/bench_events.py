"""Latency of data-aware scheduling: from ``dataset.updated`` to the consumer's flow code starting.

On a local stack (a real ``prefect server start`` and a process worker polling every second), a
consumer triggers on an external dataset. For each of N partitions the benchmark lands a file,
announces it the way ``flowfactory emit`` does (``dataset.updated``, readiness, the consumer's
run created under its input state's key), and reads back when the consumer's run was created and
when it started running (its flow code starts right after). It reports p50 and p95 of each stage.

Two more scenarios, each on a stack of its own, each played three ways on that stack, one after
the other: **flowfactory** (the announcer creates the runs), **automations** (the path before
it: one Prefect automation per consumer, RunDeployment on ``dataset.updated``), and the
**floor** (the same number of runs created directly through the Prefect client, as
concurrently as flowfactory does). Each way has consumers of its own; times are the server's
``created`` and ``start_time`` of the last run, from the moment the update was announced:

- fan-out: one update of a dataset that 50 consumers read;
- burst: 300 partitions announced back to back (flowfactory: through one ``Announcer``, which
  creates the runs in the background while the next updates come in); exactly 300 runs, none
  lost or doubled. The work pool runs at most ``BURST_POOL_LIMIT`` at once, so "all started" is
  the worker's throughput.

Each way waits until every run it started has ended before the next way fires, so that none
is measured beside the previous one's runs.

``api_url`` points both at another stack (its deployments are replaced, its workers run the
flows) instead of a SQLite stack of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx

from bench_run import _environment, _free_port, _quiet_prefect_console, deployed_stack
from flowfactory.config import Project, load_project
from flowfactory.data import DataRoot
from flowfactory.orchestration import DATASET_UPDATED, Announcer, announce_update
from flowfactory.settings import Settings

__all__ = ["run", "run_burst", "run_fanout"]

TARGET_P50: Final = 2.0
FANOUT_TARGET_SECONDS: Final = 5.0
BURST_TARGET_SECONDS: Final = 30.0
BURST_POOL_LIMIT: Final = 8
PIPELINE: Final = """\
name: consumer
source:
  path: landing/events/*.csv
  external_dataset: ext_events
trigger: {on: [ext_events], require: any}
destination: {dataset: consumed, partition_by: [p]}
"""


FAN_CONSUMER: Final = """\
name: {name}
source:
  path: landing/fan/*.csv
  external_dataset: ext_fan
{trigger}destination: {{dataset: {name}}}
"""
TRIGGERED: Final = "trigger: {on: [ext_fan], require: any}\n"


@contextlib.contextmanager
def bench_stack(
    settings: Settings,
    api_url: str | None,
    *,
    pool_limit: int | None = None,
    scale_out: bool = False,
) -> Iterator[Project]:
    """A stack of its own with its workers (``api_url`` None), or the project deployed there.

    The stack of its own is the embedded SQLite one, or with ``scale_out`` the production
    topology (PostgreSQL, Redis, two API servers, the services process, two workers).
    ``pool_limit`` caps how many runs the ``flowfactory`` work pool runs at once.
    """
    if api_url is None:
        with deployed_stack(settings, scale_out=scale_out) as project:
            _limit_pool(pool_limit)
            yield project
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: PLC0415

    from flowfactory.deploy import deploy_project  # noqa: PLC0415 - imports prefect

    with (
        _environment({"PREFECT_API_URL": api_url}),
        temporary_settings(updates={PREFECT_API_URL: api_url}),
    ):
        project = load_project(settings.deployments_dir, settings)
        asyncio.run(deploy_project(project, settings, prune=False))
        _limit_pool(pool_limit)
        _quiet_prefect_console()
        yield project


def _limit_pool(limit: int | None) -> None:
    if limit is None:
        return
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.actions import WorkPoolUpdate  # noqa: PLC0415

    async def update() -> None:
        async with get_client() as client:
            await client.update_work_pool("flowfactory", WorkPoolUpdate(concurrency_limit=limit))

    asyncio.run(update())


def _project(root: Path, pipelines: dict[str, str] | None = None) -> Settings:
    (root / "deployments").mkdir(parents=True)
    for name, text in (pipelines or {"consumer": PIPELINE}).items():
        (root / "deployments" / f"{name}.yaml").write_text(text)
    return Settings(
        project_dir=root,
        state_dir=root / "state",
        prefect_api_url=f"http://127.0.0.1:{_free_port()}/api",
    )


async def _run_times(name: str, timeout: float = 120.0) -> tuple[datetime, datetime]:
    """When the consumer's run for a partition was created and when it started running."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            finished = [r for r in runs if r.state is not None and r.state.is_final()]
            if finished and finished[0].start_time is not None and finished[0].created:
                return finished[0].created, finished[0].start_time
            await asyncio.sleep(0.2)
    raise RuntimeError(f"no finished run {name} within {timeout:.0f} s")


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(events: int = 30, *, scale_out: bool = False) -> dict[str, Any]:
    """Announce ``events`` partitions one after another and time each consumer run, on the
    embedded SQLite stack or (``scale_out``) the production topology."""
    with tempfile.TemporaryDirectory(prefix="ff-bench-events-") as tmp:
        settings = _bench_settings(Path(tmp), {"consumer": PIPELINE}, None)
        with deployed_stack(settings, scale_out=scale_out) as project:
            root = DataRoot(settings.data_root_url)
            created: list[float] = []
            started: list[float] = []
            for i in range(1, events + 1):
                landing = Path(settings.data_root_url) / "landing" / "events" / f"p{i}.csv"
                landing.parent.mkdir(parents=True, exist_ok=True)
                landing.write_text(f"p,v\n{i},1\n")
                emitted = time.time()
                announce_update(project, root, "ext_events", f"p={i}", {"bench": "events"})
                made, running = asyncio.run(_run_times(f"consumer[p={i}]"))
                created.append(made.timestamp() - emitted)
                started.append(running.timestamp() - emitted)
    return {
        "events": events,
        "backend": _backend(None, scale_out=scale_out),
        "poll_seconds": settings.poll_seconds,
        "created_p50": statistics.median(created),
        "created_p95": _percentile(created, 95),
        "started_p50": statistics.median(started),
        "started_p95": _percentile(started, 95),
        "started_max": max(started),
        "target_p50": TARGET_P50,
    }


async def _deployment_ids(deployments: list[str]) -> list[Any]:
    from prefect.client.orchestration import get_client  # noqa: PLC0415

    async with get_client() as client:
        return [(await client.read_deployment_by_name(f"pipeline/{d}")).id for d in deployments]


async def _runs_of(deployment_ids: list[Any]) -> list[Any]:
    """Every flow run of the given deployments."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import (  # noqa: PLC0415
        FlowRunFilter,
        FlowRunFilterDeploymentId,
    )

    async with get_client() as client:
        runs: list[Any] = []
        while True:
            page = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids)
                ),
                limit=200,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < 200:  # the page size above
                return runs


def _current_runs(deployment_ids: list[Any], patience: float = 120.0) -> list[Any]:
    """``_runs_of``, read again while the server is too busy creating runs to answer."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return asyncio.run(_runs_of(deployment_ids))
        except httpx.TimeoutException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _wait_for(
    deployment_ids: list[Any], done: Any, expected: int, timeout: float
) -> tuple[list[Any], float]:
    """Poll until ``done(run)`` holds for ``expected`` runs (or the timeout); runs and seconds.

    One request a second: the poll must not be the load that slows the server down.
    """
    started = time.monotonic()
    runs: list[Any] = []
    while time.monotonic() - started < timeout:
        runs = _current_runs(deployment_ids)
        if sum(1 for r in runs if done(r)) >= expected:
            break
        time.sleep(1.0)
    return runs, time.monotonic() - started


def _started(run: Any) -> bool:
    return run.start_time is not None


def _ended(run: Any) -> bool:
    return run.state is not None and run.state.is_final()


def _measure(
    deployments: list[str],
    expected: int,
    fire: Callable[[], object],
    *,
    worker: bool,
    timeout: float,
) -> dict[str, Any]:
    """Fire one mechanism and read back when every run existed and (with a worker) started;
    with a worker, return once every run has ended.

    Times come from the server's own ``created`` and ``start_time`` of each run, against the
    moment ``fire`` was called, so polling adds nothing to them.
    """
    ids = asyncio.run(_deployment_ids(deployments))
    fired = datetime.now(UTC)
    fire()
    runs, _ = _wait_for(ids, lambda _r: True, expected, timeout)
    if worker:
        runs, _ = _wait_for(ids, _started, expected, timeout)
        # The next way starts on a quiet stack, not beside this one's last runs.
        runs, _ = _wait_for(ids, _ended, expected, timeout)
    time.sleep(5)  # late duplicates would show up by now
    runs = _current_runs(ids)
    keys = [(str(r.deployment_id), r.parameters.get("partition")) for r in runs]
    created = [(r.created - fired).total_seconds() for r in runs if r.created]
    started = [(r.start_time - fired).total_seconds() for r in runs if r.start_time]
    return {
        "runs": len(runs),
        "lost": expected - len(set(keys)),
        "duplicates": len(keys) - len(set(keys)),
        "all_created_seconds": max(created) if len(created) >= expected else None,
        "all_started_seconds": max(started) if worker and len(started) >= expected else None,
    }


def _create_directly(items: list[tuple[str, str]]) -> None:
    """The floor: the same runs created straight through the client, as concurrently.

    Prefect's client gives up after its own retries (2, 4 ... 32 s apart) on a server that
    keeps answering 503: such a run is lost, and counted so.
    """
    from prefect.client.orchestration import get_client  # noqa: PLC0415

    async def create() -> None:
        async with get_client() as client:
            names = sorted({name for name, _ in items})
            ids = {n: (await client.read_deployment_by_name(f"pipeline/{n}")).id for n in names}
            gate = asyncio.Semaphore(Settings().run_creation_concurrency)

            async def one(name: str, partition: str) -> None:
                async with gate:
                    await client.create_flow_run_from_deployment(
                        ids[name], parameters={"name": name, "partition": partition}
                    )

            await asyncio.gather(*(one(n, p) for n, p in items), return_exceptions=True)

    asyncio.run(create())


def _automations(names: list[str], dataset: str) -> None:
    """The old path: one automation per consumer, starting it on ``dataset.updated``."""
    from prefect.automations import Automation  # noqa: PLC0415
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.events.actions import RunDeployment  # noqa: PLC0415
    from prefect.events.schemas.automations import EventTrigger  # noqa: PLC0415

    async def install() -> None:
        async with get_client() as client:
            for name in names:
                deployment = await client.read_deployment_by_name(f"pipeline/{name}")
                await Automation(
                    name=f"bench {name} on {dataset}",
                    trigger=EventTrigger(
                        expect={DATASET_UPDATED},
                        match={"prefect.resource.id": f"dataset.{dataset}"},
                        posture="Reactive",
                        threshold=1,
                    ),
                    actions=[
                        RunDeployment(
                            source="selected",
                            deployment_id=deployment.id,
                            parameters={
                                "name": name,
                                "partition": "{{ event.resource.get('dataset.partition', '') }}",
                            },
                        )
                    ],
                ).acreate()

    asyncio.run(install())


def _emit_updates(dataset: str, partitions: list[str]) -> None:
    from prefect.events.worker import EventsWorker  # noqa: PLC0415

    from flowfactory.orchestration import events  # noqa: PLC0415

    for partition in partitions:
        events.emit(DATASET_UPDATED, events.dataset_resource(dataset, partition), {})
    EventsWorker.drain_all(timeout=60)


def _bench_settings(root: Path, pipelines: dict[str, str], api_url: str | None) -> Settings:
    # As root, PostgreSQL runs as the postgres account, which must reach the state folder.
    root.chmod(0o755)
    settings = _project(root, pipelines)
    return settings.model_copy(update={"prefect_api_url": api_url}) if api_url else settings


def _backend(api_url: str | None, *, scale_out: bool) -> str:
    if api_url is not None:
        return api_url
    return "PostgreSQL + Redis" if scale_out else "SQLite"


def run_fanout(
    consumers: int = 50,
    timeout: float = 600.0,
    api_url: str | None = None,
    *,
    scale_out: bool = False,
) -> dict[str, Any]:
    """One update of a dataset that ``consumers`` pipelines read, three ways on one stack.

    flowfactory (the announcer creates the runs), Prefect automations alone (one per consumer
    on ``dataset.updated``), and the floor (the same runs created directly through the client).
    """
    names = {
        way: [f"{way}_{i:02d}" for i in range(consumers)]
        for way in ("flowfactory", "automations", "floor")
    }
    pipelines = {
        name: FAN_CONSUMER.format(name=name, trigger=TRIGGERED if way == "flowfactory" else "")
        for way, listed in names.items()
        for name in listed
    }
    with tempfile.TemporaryDirectory(prefix="ff-bench-fanout-") as tmp:
        settings = _bench_settings(Path(tmp), pipelines, api_url)
        with bench_stack(settings, api_url, scale_out=scale_out) as project:
            landing = Path(settings.data_root_url) / "landing" / "fan" / "part.csv"
            landing.parent.mkdir(parents=True, exist_ok=True)
            landing.write_text("p,v\n1,1\n")
            root = DataRoot(settings.data_root_url)
            _automations(names["automations"], "ext_auto")
            fires: dict[str, Callable[[], object]] = {
                "floor": lambda: _create_directly([(n, "") for n in names["floor"]]),
                "flowfactory": lambda: announce_update(project, root, "ext_fan", "", {}),
                "automations": lambda: _emit_updates("ext_auto", [""]),
            }
            ways = {
                way: _measure(names[way], consumers, fire, worker=True, timeout=timeout)
                for way, fire in fires.items()
            }
    return {"consumers": consumers, "backend": _backend(api_url, scale_out=scale_out), **ways}


def run_burst(
    events: int = 300,
    timeout: float = 900.0,
    api_url: str | None = None,
    *,
    scale_out: bool = False,
) -> dict[str, Any]:
    """``events`` partitions announced back to back, three ways: exactly one run each?

    The worker runs at most BURST_POOL_LIMIT flow runs at once, so that 300 runs do not fork
    300 processes on a small machine; the time until all started is that limit's throughput.
    """
    names = {way: f"{way}_consumer" for way in ("flowfactory", "automations", "floor")}
    pipelines = {
        name: PIPELINE.replace("name: consumer", f"name: {name}").replace(
            "destination: {dataset: consumed", f"destination: {{dataset: {name}_out"
        )
        for name in names.values()
    }
    for way in ("automations", "floor"):  # started by their own mechanism only
        pipelines[names[way]] = pipelines[names[way]].replace(
            "trigger: {on: [ext_events], require: any}\n", ""
        )
    partitions = [f"p={i}" for i in range(1, events + 1)]
    with tempfile.TemporaryDirectory(prefix="ff-bench-burst-") as tmp:
        settings = _bench_settings(Path(tmp), pipelines, api_url)
        with bench_stack(
            settings, api_url, pool_limit=BURST_POOL_LIMIT, scale_out=scale_out
        ) as project:
            root = DataRoot(settings.data_root_url)
            folder = Path(settings.data_root_url) / "landing" / "events"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(1, events + 1):
                (folder / f"p{i}.csv").write_text(f"p,v\n{i},1\n")
            _automations([names["automations"]], "ext_burst")

            def announce_all() -> None:
                with Announcer(project, root) as announcer:
                    for partition in partitions:
                        announcer.update("ext_events", partition, {"bench": "burst"})

            fires: dict[str, Callable[[], object]] = {
                "floor": lambda: _create_directly([(names["floor"], p) for p in partitions]),
                "flowfactory": announce_all,
                "automations": lambda: _emit_updates("ext_burst", partitions),
            }
            ways = {
                way: _measure([names[way]], events, fire, worker=True, timeout=timeout)
                for way, fire in fires.items()
            }
    return {
        "events": events,
        "pool_limit": BURST_POOL_LIMIT,
        "backend": _backend(api_url, scale_out=scale_out),
        **ways,
    }
