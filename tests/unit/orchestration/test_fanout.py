"""The retries of consumer-run creation: transient answers are retried until the deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from flowfactory.orchestration.fanout import _retrying


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
