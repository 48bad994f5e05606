"""Consumer runs created by whoever finds them ready: one run per input state, on any host.

The producer's ``announce`` task, ``flowfactory emit``, the router (for updates posted from
outside) and reconciliation all end here. Each ready consumer gets its run through the Prefect
client (``create_flow_run_from_deployment``) under the idempotency key of its input state
(``scheduling.run_key``). Prefect's database keeps one run per (flow, key), so announcing the
same state again, from another process or machine, gets the existing run back (HTTP 200, where
a new run is a 201): the run is the claim (see ``flowfactory.scheduling.claims``). A run of the
state that failed or crashed is scheduled again, as the UI's Retry does; a cancelled one is left
alone.

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
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar
from uuid import UUID

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
    FlowRunFilterIdempotencyKey,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES
from prefect.settings import Settings as PrefectSettings
from prefect.states import AwaitingRetry, Scheduled, to_state_create
from prefect.utilities.asyncutils import run_coro_as_sync

from flowfactory.orchestration import events
from flowfactory.orchestration.entrypoints import PIPELINE_FLOW
from flowfactory.scheduling import KeyedRun, Readiness, RunPhase, run_key, runs_to_start
from flowfactory.settings import get_settings

__all__ = [
    "RETRY_BUDGET_SECONDS",
    "Cause",
    "ConsumerRun",
    "Outcome",
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
# Keys per flow-run filter: one page of runs answers a batch (at most one run per key).
_KEYS_PER_READ: Final = 200
_PHASES: Final = {
    StateType.COMPLETED: RunPhase.completed,
    StateType.FAILED: RunPhase.failed,
    StateType.CRASHED: RunPhase.failed,
    StateType.CANCELLED: RunPhase.cancelled,
}

_T = TypeVar("_T")


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


async def _create(
    client: PrefectClient, deployment_id: UUID, inputs: Readiness, cause: Cause
) -> tuple[FlowRun, bool]:
    """Create the run of ``inputs`` (or get the one there is); True when it was created now."""
    body = DeploymentFlowRunCreate(
        parameters={"name": inputs.pipeline, "partition": inputs.partition, "state": inputs.state},
        state=to_state_create(Scheduled(message=cause.message)),
        tags=[cause.tag],
        name=_run_name(inputs),
        idempotency_key=run_key(inputs),
    )
    response = await client.request(
        "POST",
        "/deployments/{id}/create_flow_run",
        path_params={"id": deployment_id},
        json=body.model_dump(mode="json", exclude_unset=True),
    )
    return FlowRun.model_validate(response.json()), response.status_code == httpx.codes.CREATED


async def _restart(client: PrefectClient, run: FlowRun, cause: Cause) -> bool:
    """Schedule a failed run again; False when Prefect refused (it moved on meanwhile)."""
    state: State[Any] = AwaitingRetry(message=f"input state not consumed yet; {cause.message}")
    result = await client.set_flow_run_state(run.id, state)
    return result.status is SetStateStatus.ACCEPT


@dataclass(frozen=True)
class _Batch:
    """One call's requests: their client, concurrency gate and deadline."""

    client: PrefectClient
    deployments: dict[str, UUID]
    gate: asyncio.Semaphore
    deadline: float

    async def start(self, inputs: Readiness, cause: Cause) -> ConsumerRun:
        deployment_id = self.deployments.get(inputs.pipeline)
        if deployment_id is None:
            return ConsumerRun(inputs, Outcome.not_deployed)
        client, deadline = self.client, self.deadline
        async with self.gate:
            try:
                try:
                    run, created = await _retrying(
                        lambda: _create(client, deployment_id, inputs, cause), deadline
                    )
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code != httpx.codes.NOT_FOUND:
                        raise
                    # Deleted and deployed again since its id was kept: look it up once more.
                    _forget_deployment(client, inputs.pipeline)
                    ids = await _deployment_ids(client, {inputs.pipeline}, deadline)
                    if inputs.pipeline not in ids:
                        return ConsumerRun(inputs, Outcome.not_deployed)
                    run, created = await _retrying(
                        lambda: _create(client, ids[inputs.pipeline], inputs, cause), deadline
                    )
                outcome = Outcome.created if created else Outcome.existing
                if not created and _phase(run) is RunPhase.failed:
                    restarted = await _retrying(lambda: _restart(client, run, cause), deadline)
                    outcome = Outcome.restarted if restarted else outcome
            except (httpx.HTTPStatusError, httpx.TransportError) as exc:
                return ConsumerRun(inputs, Outcome.failed, error=f"{type(exc).__name__}: {exc}")
        _announce(inputs, run, cause)
        return ConsumerRun(inputs, outcome, run.id)


def _announce(inputs: Readiness, run: FlowRun, cause: Cause) -> None:
    """``pipeline.ready``, related to the run that consumes the state and to its cause."""
    consumer_run = {
        "prefect.resource.id": f"prefect.flow-run.{run.id}",
        "prefect.resource.role": "consumer-run",
        "prefect.resource.name": run.name,
    }
    events.announce_ready(inputs, cause.payload, related=[consumer_run, *cause.related])


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


async def _start_all(
    requests: Sequence[tuple[Readiness, Cause]], concurrency: int, budget: float
) -> list[ConsumerRun]:
    deadline = time.monotonic() + budget
    with _without_client_retries():
        async with _client() as client:
            try:
                names = {inputs.pipeline for inputs, _ in requests}
                ids = await _deployment_ids(client, names, deadline)
            except (httpx.HTTPStatusError, httpx.TransportError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                return [ConsumerRun(inputs, Outcome.failed, error=error) for inputs, _ in requests]
            batch = _Batch(client, ids, asyncio.Semaphore(concurrency), deadline)
            return list(await asyncio.gather(*(batch.start(*r) for r in requests)))


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


async def _read_keyed(keys: Sequence[str], budget: float) -> dict[str, KeyedRun]:
    deadline = time.monotonic() + budget
    found: dict[str, KeyedRun] = {}
    async with get_client() as client:
        for start in range(0, len(keys), _KEYS_PER_READ):
            batch = list(keys[start : start + _KEYS_PER_READ])
            runs = await _retrying(
                lambda batch=batch: client.read_flow_runs(  # type: ignore[misc]
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[PIPELINE_FLOW])),
                    flow_run_filter=FlowRunFilter(
                        idempotency_key=FlowRunFilterIdempotencyKey(any_=batch)
                    ),
                    limit=_KEYS_PER_READ,
                ),
                deadline,
            )
            for run in runs:
                if run.idempotency_key:
                    key = run.idempotency_key
                    found[key] = KeyedRun(key, str(run.id), run.name, _phase(run))
    return found


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
