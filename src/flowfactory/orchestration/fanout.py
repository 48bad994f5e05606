"""Consumer runs created by whoever finds them ready: one run per input state, on any host.

The producer's ``announce`` task, ``flowfactory emit``, the router (for updates posted from
outside) and reconciliation all end here. Each ready consumer gets its run through the Prefect
client (``create_flow_run_from_deployment``) under the idempotency key of its input state
(``scheduling.run_key``). Prefect's database keeps one run per (flow, key), so announcing the
same state again, from another process or machine, gets the existing run back (HTTP 200, where
a new run is a 201): the run is the claim (see ``flowfactory.scheduling.claims``). A run of the
state that failed or crashed is scheduled again, as the UI's Retry does; a cancelled one is left
alone.

Several runs of one deployment are created in one request (Prefect's ``create_flow_run/bulk``,
at most ``_BULK_SIZE`` at a time, one transaction each, keys in sorted order so that two hosts
creating overlapping sets take their row locks in the same order). Its answer gives an id for a
new run and an existing one alike, so the runs it creates carry a label of the request's own,
and one read of the runs tells them apart. A burst of announcements from one process goes
through a ``RunStarter``, which sends in the background whatever has queued up while its
earlier requests were in flight: back-to-back announcements are not a round trip each.

The runs are created concurrently, a bounded number at a time, and each request is retried on
transient answers (SQLite's "database is locked" is a 503) and on connection errors (a server
restarting) until a time budget runs out, so that a busy server loses none. Prefect's own client
retries with 2, 4, 8 ... s pauses; these retries start at 0.1 s, so they are turned off here.
What still cannot be created is reported; reconciliation creates it later, from the data.

Prefect automations do not create these runs: the RunDeployment action (Prefect 3.9.1,
``prefect/server/events/actions.py``) sets the run's idempotency key to "automation <id>, action
<i>, invocation <id>", a new key per firing, so its runs would double the ones created here.
The only automation left on this path starts the router for updates posted from outside, and
the router creates the consumer runs with the same keys.

The UI shows why each run started: its name (``pipeline[partition]``), its ``trigger:<dataset>``
tag, its parameters (partition, input state), the message of its first state (what was updated,
by which run), and the ``pipeline.ready`` event, related to the run created and the producer run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar
from uuid import UUID, uuid4

import httpx
from prefect._internal.concurrency.threads import in_run_sync_loop
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import DeploymentFlowRunCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterIdempotencyKey,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES
from prefect.settings import Settings as PrefectSettings
from prefect.states import AwaitingRetry, Scheduled, to_state_create
from prefect.utilities.asyncutils import run_coro_as_sync
from pydantic import BaseModel

from flowfactory.orchestration import events
from flowfactory.orchestration.entrypoints import PIPELINE_FLOW
from flowfactory.scheduling import KeyedRun, Readiness, RunPhase, run_key, runs_to_start
from flowfactory.settings import get_settings

__all__ = [
    "RETRY_BUDGET_SECONDS",
    "Cause",
    "ConsumerRun",
    "Outcome",
    "RunStarter",
    "completed_keys",
    "consumed_keys",
    "keyed_runs",
    "start_consumer_runs",
    "start_missing_runs",
    "start_runs",
]

RETRY_BUDGET_SECONDS: Final = 60.0
_FIRST_PAUSE: Final = 0.1
_LONGEST_PAUSE: Final = 3.0
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
# Marks the runs a bulk request created: its answer does not tell them from existing ones.
_REQUEST_LABEL: Final = "flowfactory.created-by"
# Runs per bulk request: one transaction each, short enough not to hold SQLite's write lock long.
_BULK_SIZE: Final = 50
# Keys per flow-run filter: one page of runs answers a batch (at most one run per key).
_KEYS_PER_READ: Final = 200
_PHASES: Final = {
    StateType.COMPLETED: RunPhase.completed,
    StateType.FAILED: RunPhase.failed,
    StateType.CRASHED: RunPhase.failed,
    StateType.CANCELLED: RunPhase.cancelled,
}

_T = TypeVar("_T")
_V = TypeVar("_V")


class Outcome(StrEnum):
    """What became of one consumer's run."""

    created = "created"
    existing = "existing"  # the run of this input state was there already
    restarted = "restarted"  # it had failed or crashed: scheduled again
    not_deployed = "not deployed"
    failed = "failed"  # not created within the retry budget: reconciliation creates it


@dataclass(frozen=True)
class Cause:
    """Why consumer runs are started, as each run and its ``pipeline.ready`` event show it."""

    message: str  # the first state's message, e.g. "flights[month=1] updated by run calm-fox"
    tag: str  # e.g. "trigger:flights", "trigger:reconcile"
    payload: dict[str, str] = field(default_factory=dict)
    related: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class ConsumerRun:
    """One ready consumer and the run that consumes its input state."""

    inputs: Readiness
    outcome: Outcome
    flow_run: UUID | None = None
    error: str = ""

    @property
    def pipeline(self) -> str:
        """The consumer's name."""
        return self.inputs.pipeline

    @property
    def partition(self) -> str:
        """The partition the run is for ("" for all the data)."""
        return self.inputs.partition

    @property
    def label(self) -> str:
        """``pipeline[partition]``, the run's name."""
        return _run_name(self.inputs)


def _run_name(inputs: Readiness) -> str:
    return f"{inputs.pipeline}[{inputs.partition}]" if inputs.partition else inputs.pipeline


def _phase(run: FlowRun) -> RunPhase:
    return _PHASES.get(run.state.type, RunPhase.in_flight) if run.state else RunPhase.in_flight


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in _TRANSIENT_STATUS
    return isinstance(exc, httpx.TransportError)


async def _retrying(call: Callable[[], Awaitable[_T]], deadline: float) -> _T:
    """``call()``, again after a short, growing pause while it fails transiently."""
    pause = _FIRST_PAUSE
    while True:
        try:
            return await call()
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            if not _is_transient(exc) or time.monotonic() + pause > deadline:
                raise
        # Jitter spreads the retries of concurrent requests that failed together.
        await asyncio.sleep(pause * (1 + random.random() / 2))  # noqa: S311 - not crypto
        pause = min(pause * 2, _LONGEST_PAUSE)


# Deployment ids by (API URL, pipeline), kept for the process: a deployment keeps its id when
# it is deployed again, and a create that finds it gone (404) looks it up afresh.
_DEPLOYMENT_IDS: dict[tuple[str, str], UUID] = {}


async def _deployment_ids(
    client: PrefectClient, pipelines: set[str], deadline: float
) -> dict[str, UUID]:
    """The ids of the ``pipeline/<name>`` deployments, looking up the ones not known yet."""
    api = str(client.api_url)
    missing = sorted(p for p in pipelines if (api, p) not in _DEPLOYMENT_IDS)
    if missing:
        found = await _retrying(
            lambda: client.read_deployments(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[PIPELINE_FLOW])),
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=missing)),
            ),
            deadline,
        )
        _DEPLOYMENT_IDS.update({(api, d.name): d.id for d in found})
    return {p: _DEPLOYMENT_IDS[api, p] for p in pipelines if (api, p) in _DEPLOYMENT_IDS}


def _forget_deployment(client: PrefectClient, pipeline: str) -> None:
    _DEPLOYMENT_IDS.pop((str(client.api_url), pipeline), None)


def _announce(inputs: Readiness, run_id: UUID, cause: Cause) -> None:
    """``pipeline.ready``, related to the run that consumes the state and to its cause."""
    consumer_run = {
        "prefect.resource.id": f"prefect.flow-run.{run_id}",
        "prefect.resource.role": "consumer-run",
        "prefect.resource.name": _run_name(inputs),
    }
    events.announce_ready(inputs, cause.payload, related=[consumer_run, *cause.related])


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _read_pages(
    client: PrefectClient,
    values: Sequence[_V],
    where: Callable[[list[_V]], FlowRunFilter],
    deadline: float,
) -> list[FlowRun]:
    """The pipeline runs ``where`` selects, a page of ``values`` at a time (one run each)."""
    found: list[FlowRun] = []
    for page in _chunks(values, _KEYS_PER_READ):
        found += await _retrying(
            lambda page=page: client.read_flow_runs(  # type: ignore[misc]
                flow_filter=FlowFilter(name=FlowFilterName(any_=[PIPELINE_FLOW])),
                flow_run_filter=where(list(page)),
                limit=_KEYS_PER_READ,
            ),
            deadline,
        )
    return found


async def _read_runs(
    client: PrefectClient, keys: Sequence[str], deadline: float
) -> dict[str, FlowRun]:
    """The pipeline runs there are for run ``keys``, by key (keys without a run left out)."""
    runs = await _read_pages(
        client,
        keys,
        lambda page: FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=page)),
        deadline,
    )
    return {run.idempotency_key: run for run in runs if run.idempotency_key}


async def _read_runs_by_id(
    client: PrefectClient, ids: Sequence[UUID], deadline: float
) -> dict[UUID, FlowRun]:
    runs = await _read_pages(
        client, ids, lambda page: FlowRunFilter(id=FlowRunFilterId(any_=page)), deadline
    )
    return {run.id: run for run in runs}


def _creation(
    inputs: Readiness, cause: Cause, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The body that creates the run of ``inputs``, under its key, showing its cause."""
    body = DeploymentFlowRunCreate(
        labels=labels or {},
        parameters={"name": inputs.pipeline, "partition": inputs.partition, "state": inputs.state},
        state=to_state_create(Scheduled(message=cause.message)),
        tags=[cause.tag],
        name=_run_name(inputs),
        idempotency_key=run_key(inputs),
    )
    return body.model_dump(mode="json", exclude_unset=True)


async def _create(
    client: PrefectClient, deployment_id: UUID, inputs: Readiness, cause: Cause
) -> tuple[FlowRun, bool]:
    """Create the run of ``inputs`` (or get the one there is); True when it was created now."""
    response = await client.request(
        "POST",
        "/deployments/{id}/create_flow_run",
        path_params={"id": deployment_id},
        json=_creation(inputs, cause),
    )
    return FlowRun.model_validate(response.json()), response.status_code == httpx.codes.CREATED


class _BulkResult(BaseModel):
    flow_run_id: UUID | None = None
    error: str | None = None


class _BulkAnswer(BaseModel):
    """The answer of ``create_flow_run/bulk`` (its schema lives in Prefect's server package)."""

    results: list[_BulkResult]


async def _create_bulk(
    client: PrefectClient,
    deployment_id: UUID,
    requests: Sequence[tuple[Readiness, Cause]],
    label: str,
) -> list[tuple[UUID | None, str]]:
    """Create the runs of ``requests`` in one transaction, each labelled ``label``: each one's
    run id, or its error. A key that has a run already gets that run's id back."""
    response = await client.request(
        "POST",
        "/deployments/{id}/create_flow_run/bulk",  # type: ignore[arg-type] # not in the list yet
        path_params={"id": deployment_id},
        json=[
            {**_creation(inputs, cause), "labels": {_REQUEST_LABEL: label}}
            for inputs, cause in requests
        ],
    )
    answer = _BulkAnswer.model_validate(response.json())
    return [(result.flow_run_id, result.error or "") for result in answer.results]


async def _restart(client: PrefectClient, run_id: UUID, cause: Cause) -> bool:
    """Schedule a failed run again; False when Prefect refused (it moved on meanwhile)."""
    state: State[Any] = AwaitingRetry(message=f"input state not consumed yet; {cause.message}")
    result = await client.set_flow_run_state(run_id, state)
    return result.status is SetStateStatus.ACCEPT


def _failed(requests: Iterable[tuple[Readiness, Cause]], exc: Exception) -> list[ConsumerRun]:
    error = f"{type(exc).__name__}: {exc}"
    return [ConsumerRun(inputs, Outcome.failed, error=error) for inputs, _ in requests]


_RequestError = (httpx.HTTPStatusError, httpx.TransportError)


@dataclass(frozen=True)
class _Batch:
    """Requests started together: their client, concurrency gate and deadline.

    Each request holds the gate while it is sent, so at most the gate's limit are in flight.
    """

    client: PrefectClient
    deployments: dict[str, UUID]
    gate: asyncio.Semaphore
    deadline: float

    async def start_all(self, requests: Sequence[tuple[Readiness, Cause]]) -> list[ConsumerRun]:
        """Each request's run, in order: a request per run, or per ``_BULK_SIZE`` runs when a
        deployment has several."""
        by_pipeline: dict[str, list[int]] = {}
        for index, (inputs, _) in enumerate(requests):
            by_pipeline.setdefault(inputs.pipeline, []).append(index)
        started: dict[int, ConsumerRun] = {}

        async def start_group(indexes: list[int]) -> None:
            chosen = [requests[i] for i in indexes]
            runs = [await self.one(*chosen[0])] if len(chosen) == 1 else await self.many(chosen)
            started.update(zip(indexes, runs, strict=True))

        await asyncio.gather(*(start_group(indexes) for indexes in by_pipeline.values()))
        return [started[i] for i in range(len(requests))]

    async def _on_deployment(
        self, pipeline: str, call: Callable[[UUID], Awaitable[_T]]
    ) -> _T | None:
        """``call(deployment id)``, retried; None when the pipeline is not deployed.

        A 404 means the deployment was deleted and deployed again since its id was kept: the
        id is looked up afresh, once.
        """
        known = self.deployments.get(pipeline)
        if known is None:
            return None
        try:
            return await _retrying(lambda: call(known), self.deadline)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != httpx.codes.NOT_FOUND:
                raise
        _forget_deployment(self.client, pipeline)
        again = (await _deployment_ids(self.client, {pipeline}, self.deadline)).get(pipeline)
        return None if again is None else await _retrying(lambda: call(again), self.deadline)

    async def one(self, inputs: Readiness, cause: Cause) -> ConsumerRun:
        """The run of one input state, by one create request."""
        try:
            async with self.gate:
                found = await self._on_deployment(
                    inputs.pipeline, lambda known: _create(self.client, known, inputs, cause)
                )
        except _RequestError as exc:
            return _failed([(inputs, cause)], exc)[0]
        if found is None:
            return ConsumerRun(inputs, Outcome.not_deployed)
        run, created = found
        answer = (
            ConsumerRun(inputs, Outcome.created, run.id)
            if created
            else await self._existing(inputs, cause, run)
        )
        if answer.flow_run is not None:
            _announce(inputs, answer.flow_run, cause)
        return answer

    async def many(self, requests: Sequence[tuple[Readiness, Cause]]) -> list[ConsumerRun]:
        """The runs of several input states of one deployment, created in bulk."""
        keys = [run_key(inputs) for inputs, _ in requests]
        # The first request of a key creates or restarts its run; its repeats share the answer.
        first: dict[str, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        answers: dict[str, ConsumerRun] = {}

        async def start_chunk(chunk: Sequence[str]) -> None:
            runs = await self._bulk([requests[first[key]] for key in chunk])
            answers.update(zip(chunk, runs, strict=True))

        # Sorted keys: two hosts creating overlapping sets lock the rows in the same order.
        await asyncio.gather(*(start_chunk(c) for c in _chunks(sorted(first), _BULK_SIZE)))
        runs: list[ConsumerRun] = []
        for index, (key, (inputs, cause)) in enumerate(zip(keys, requests, strict=True)):
            answer = answers[key]
            if index != first[key] and answer.outcome is Outcome.created:
                answer = ConsumerRun(inputs, Outcome.existing, answer.flow_run)
            if answer.flow_run is not None:
                _announce(inputs, answer.flow_run, cause)
            runs.append(answer)
        return runs

    async def _bulk(self, requests: Sequence[tuple[Readiness, Cause]]) -> list[ConsumerRun]:
        """Create the runs of ``requests`` (one deployment's) in one request, then read them
        back: the answer gives a run id for a new run and an existing one alike, and only the
        runs created by this request carry its label."""
        label = uuid4().hex
        async with self.gate:
            try:
                answers = await self._on_deployment(
                    requests[0][0].pipeline,
                    lambda known: _create_bulk(self.client, known, requests, label),
                )
            except _RequestError as exc:
                return _failed(requests, exc)
            if answers is None:
                return [ConsumerRun(inputs, Outcome.not_deployed) for inputs, _ in requests]
            ids = [run_id for run_id, _ in answers if run_id is not None]
            try:
                found = await _read_runs_by_id(self.client, ids, self.deadline)
            except _RequestError:
                found = {}  # created or found, unknown which: said created (see below)
        runs: list[ConsumerRun] = []
        for (inputs, cause), (run_id, error) in zip(requests, answers, strict=True):
            if run_id is None:
                runs.append(ConsumerRun(inputs, Outcome.failed, error=error or "not created"))
            elif (run := found.get(run_id)) is None or run.labels.get(_REQUEST_LABEL) == label:
                # Not read back, a run is most likely new; reconciliation restarts a failed one.
                runs.append(ConsumerRun(inputs, Outcome.created, run_id))
            else:
                runs.append(await self._existing(inputs, cause, run))
        return runs

    async def _existing(self, inputs: Readiness, cause: Cause, run: FlowRun) -> ConsumerRun:
        """The run an input state had already: scheduled again if it failed."""
        if _phase(run) is not RunPhase.failed:
            return ConsumerRun(inputs, Outcome.existing, run.id)
        async with self.gate:
            try:
                restarted = await _retrying(
                    lambda: _restart(self.client, run.id, cause), self.deadline
                )
            except _RequestError as exc:
                return _failed([(inputs, cause)], exc)[0]
        return ConsumerRun(inputs, Outcome.restarted if restarted else Outcome.existing, run.id)


# One client per API for the process, kept open on Prefect's "run sync" event loop (where
# ``run_coro_as_sync`` runs every call, and which lives as long as the process): a new client
# costs more than the run it creates (an SSL context, a CSRF token), and announcements come
# back to back.
_CLIENTS: dict[str, PrefectClient] = {}


@contextlib.asynccontextmanager
async def _client() -> AsyncIterator[PrefectClient]:
    if not in_run_sync_loop():  # a loop of the caller's, which may not outlive this call
        async with get_client() as client:
            yield client
        return
    api = str(PREFECT_API_URL.value())
    if api not in _CLIENTS:
        _CLIENTS[api] = await get_client().__aenter__()
    yield _CLIENTS[api]


# The last settings seen, and the same with Prefect's client retries off: building those (what
# ``temporary_settings`` does on every call) takes about 20 ms, and they rarely change.
_WITHOUT_RETRIES: list[tuple[PrefectSettings, PrefectSettings]] = []


@contextlib.contextmanager
def _without_client_retries() -> Iterator[None]:
    """Prefect's client retries off: these requests retry on their own schedule (see the
    module), with no second layer below them."""
    context = get_settings_context()
    if not _WITHOUT_RETRIES or _WITHOUT_RETRIES[0][0] is not context.settings:
        updated = context.settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: 0})
        _WITHOUT_RETRIES[:] = [(context.settings, updated)]
    with SettingsContext(profile=context.profile, settings=_WITHOUT_RETRIES[0][1]):
        yield


async def _start_with(
    client: PrefectClient,
    requests: Sequence[tuple[Readiness, Cause]],
    gate: asyncio.Semaphore,
    budget: float,
) -> list[ConsumerRun]:
    deadline = time.monotonic() + budget
    try:
        names = {inputs.pipeline for inputs, _ in requests}
        ids = await _deployment_ids(client, names, deadline)
    except _RequestError as exc:
        return _failed(requests, exc)
    return await _Batch(client, ids, gate, deadline).start_all(requests)


async def _start_all(
    requests: Sequence[tuple[Readiness, Cause]], concurrency: int, budget: float
) -> list[ConsumerRun]:
    with _without_client_retries():
        async with _client() as client:
            return await _start_with(client, requests, asyncio.Semaphore(concurrency), budget)


def start_runs(
    requests: Sequence[tuple[Readiness, Cause]],
    *,
    concurrency: int | None = None,
    budget: float = RETRY_BUDGET_SECONDS,
) -> list[ConsumerRun]:
    """Make sure each input state has its run, each with its cause; what became of each.

    ``concurrency`` defaults to the ``run_creation_concurrency`` setting.
    """
    if not requests:
        return []
    limit = concurrency or get_settings().run_creation_concurrency
    return run_coro_as_sync(_start_all(requests, limit, budget))


def start_consumer_runs(
    wanted: Sequence[Readiness], cause: Cause, *, concurrency: int | None = None
) -> list[ConsumerRun]:
    """Make sure each state in ``wanted`` has its run, for one cause; what became of each."""
    return start_runs([(inputs, cause) for inputs in wanted], concurrency=concurrency)


_Submitted = tuple[list[tuple[Readiness, Cause]], "Future[list[ConsumerRun]]"]


class RunStarter:
    """Consumer runs started in the background while more requests come in.

    For one process that announces update after update: ``submit`` queues a request and
    returns at once. A thread of the starter's own sends what has queued up whenever one of
    its ``concurrency`` slots is free, all of it together (a deployment's runs in bulk), so a
    burst costs a few requests, not one round trip per announcement. Leaving the ``with``
    block waits for every run; ``close`` returns them in the order submitted.
    """

    def __init__(
        self, *, concurrency: int | None = None, budget: float = RETRY_BUDGET_SECONDS
    ) -> None:
        self._limit = concurrency or get_settings().run_creation_concurrency
        self._budget = budget
        self._submitted: list[Future[list[ConsumerRun]]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Submitted | None] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunStarter:
        # The thread sees the caller's context: Prefect's settings (which API) and its run.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(asyncio.run, self._serve()), name="flowfactory-runs"
        )
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def submit(self, requests: Sequence[tuple[Readiness, Cause]]) -> Future[list[ConsumerRun]]:
        """Queue ``requests``; the future holds what became of each."""
        future: Future[list[ConsumerRun]] = Future()
        self._submitted.append(future)
        if not requests:
            future.set_result([])
        elif self._loop is None or self._queue is None or self._loop.is_closed():
            future.set_exception(RuntimeError("the run starter is not running"))
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (list(requests), future))
        return future

    def close(self) -> list[ConsumerRun]:
        """Wait for every submitted request; what became of each, in the order submitted."""
        if self._thread is not None and self._thread.is_alive():
            if self._loop is not None and self._queue is not None:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
            self._thread.join()
        return [run for future in self._submitted for run in future.result()]

    async def _serve(self) -> None:
        self._loop, self._queue = asyncio.get_running_loop(), asyncio.Queue()
        self._ready.set()
        queue, gate, slots = (
            self._queue,
            asyncio.Semaphore(self._limit),
            asyncio.Semaphore(self._limit),
        )
        sending: set[asyncio.Task[None]] = set()
        try:
            with _without_client_retries():
                async with get_client() as client:
                    closing = False
                    while not closing:
                        first = await queue.get()
                        if first is None:
                            break
                        await slots.acquire()  # meanwhile, more requests queue up
                        together = [first]
                        while not queue.empty():
                            more = queue.get_nowait()
                            if more is None:
                                closing = True
                                break
                            together.append(more)
                        task = asyncio.create_task(self._send(client, together, gate))
                        sending.add(task)
                        task.add_done_callback(sending.discard)
                        task.add_done_callback(lambda _task: slots.release())
                    await asyncio.gather(*sending)
        finally:
            while not queue.empty():  # left when the loop failed: their callers must not hang
                left = queue.get_nowait()
                if left is not None and not left[1].done():
                    left[1].set_exception(RuntimeError("the run starter stopped"))

    async def _send(
        self, client: PrefectClient, together: list[_Submitted], gate: asyncio.Semaphore
    ) -> None:
        requests = [request for submitted, _ in together for request in submitted]
        try:
            runs = await _start_with(client, requests, gate, self._budget)
        except Exception as exc:  # noqa: BLE001 - handed to the callers waiting on it
            for _, future in together:
                future.set_exception(exc)
            return
        for submitted, future in together:
            future.set_result(runs[: len(submitted)])
            runs = runs[len(submitted) :]


async def _read_keyed(keys: Sequence[str], budget: float) -> dict[str, KeyedRun]:
    deadline = time.monotonic() + budget
    with _without_client_retries():
        async with _client() as client:
            runs = await _read_runs(client, keys, deadline)
    return {key: KeyedRun(key, str(run.id), run.name, _phase(run)) for key, run in runs.items()}


def keyed_runs(keys: Iterable[str], budget: float = RETRY_BUDGET_SECONDS) -> dict[str, KeyedRun]:
    """The runs there are for run ``keys`` (keys without a run are left out)."""
    unique = sorted(set(keys))
    return run_coro_as_sync(_read_keyed(unique, budget)) if unique else {}


def consumed_keys(states: Iterable[Readiness]) -> frozenset[str]:
    """The run keys of ``states`` whose run completed: the consumed input states."""
    return completed_keys(run_key(s) for s in states)


def completed_keys(keys: Iterable[str]) -> frozenset[str]:
    """The run keys among ``keys`` whose run completed."""
    return frozenset(k for k, run in keyed_runs(keys).items() if run.phase is RunPhase.completed)


def start_missing_runs(wanted: Sequence[Readiness], cause: Cause) -> list[ConsumerRun]:
    """Start the runs among ``wanted`` that do not exist yet or failed; reconciliation's path.

    One read answers for every state, so a pass over many consumed partitions creates nothing
    and costs one request per 200 of them.
    """
    existing = keyed_runs(run_key(s) for s in wanted)
    return start_consumer_runs(runs_to_start(wanted, existing), cause)
