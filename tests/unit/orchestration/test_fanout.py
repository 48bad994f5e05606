"""The retries of consumer-run creation (transient answers are retried until the deadline),
and the background starter's answers when nothing can be created."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from tests.helpers import free_port

from flowfactory.orchestration.fanout import Cause, Outcome, RunStarter, _retrying
from flowfactory.scheduling import Readiness


def _status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/api/deployments/x/create_flow_run")
    response = httpx.Response(code, request=request)
    return httpx.HTTPStatusError(f"{code}", request=request, response=response)


def _flaky(failures: list[Exception]) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "created"

    return calls, call


def test_transient_errors_are_retried_until_the_call_succeeds() -> None:
    """A 503 ("database is locked"), a 502 and a refused connection, then success."""
    refused = httpx.ConnectError("connection refused")
    calls, call = _flaky([_status(503), _status(502), refused])
    result = asyncio.run(_retrying(call, time.monotonic() + 30))
    assert result == "created"
    assert len(calls) == 4


def test_a_client_error_is_not_retried() -> None:
    """A 409 (the parameters break the deployment's schema) is the answer, not a hiccup."""
    calls, call = _flaky([_status(409)])
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(_retrying(call, time.monotonic() + 30))
    assert len(calls) == 1


def test_retries_stop_at_the_deadline() -> None:
    """A server that stays locked: the error is raised once the next pause would pass it."""
    calls, call = _flaky([_status(503)] * 100)
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(_retrying(call, time.monotonic() + 0.5))
    assert 2 <= len(calls) < 10


def test_a_run_starter_answers_every_request_in_order_when_the_server_is_down() -> None:
    """Nothing listens at the API: each queued request ends as failed, in the order submitted,
    once the retry budget is spent; leaving the starter does not hang."""
    api = f"http://127.0.0.1:{free_port()}/api"
    cause = Cause(message="test updated", tag="trigger:test")
    wanted = [Readiness(f"p{i}", f"month={i}", {"src": str(i)}) for i in range(5)]
    with temporary_settings(updates={PREFECT_API_URL: api}), RunStarter(budget=1.0) as starter:
        first = starter.submit([(inputs, cause) for inputs in wanted[:2]])
        starter.submit([])
        starter.submit([(inputs, cause) for inputs in wanted[2:]])
    runs = starter.close()
    assert [r.inputs for r in runs] == wanted
    assert {r.outcome for r in runs} == {Outcome.failed}
    assert all("ConnectError" in r.error for r in runs), runs
    assert [r.inputs for r in first.result()] == wanted[:2]
