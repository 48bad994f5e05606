"""Reading an `http:` source: the API's block, one GET through its breaker, its answer checked
(size, JSON, shape) and turned into a frame of records."""

from __future__ import annotations

import json
from typing import Any

import httpx
import polars as pl

from flowfactory.blocks import HttpJsonApi
from flowfactory.breaker import Breaker
from flowfactory.config import HttpEndpoint, HttpSource
from flowfactory.errors import BadDataError

__all__ = ["fetch_records", "is_client_error", "read_http"]

TOO_MANY_REQUESTS = 429


def is_client_error(exc: Exception) -> bool:
    """A 4xx other than 429: the API is up and said no, which is no sign of an outage."""
    if not isinstance(exc, httpx.HTTPStatusError):
        return False
    status = exc.response.status_code
    return 400 <= status < 500 and status != TOO_MANY_REQUESTS


def read_http(source: HttpSource, breaker: Breaker | None = None) -> pl.DataFrame:
    """GET the endpoint of the source's block (through ``breaker``) as a frame of records."""
    api = HttpJsonApi.load(source.http.block, _sync=True)  # type: ignore[call-arg] # sync task
    assert isinstance(api, HttpJsonApi)  # noqa: S101 - narrows Prefect's dispatching type
    return fetch_records(api, source.http, breaker)


class _AnswerTooLargeError(BadDataError):
    """An answer over the endpoint's size limit: the API is up, so it counts against nothing."""


def _neutral(exc: Exception) -> bool:
    return is_client_error(exc) or isinstance(exc, _AnswerTooLargeError)


def fetch_records(
    api: HttpJsonApi, endpoint: HttpEndpoint, breaker: Breaker | None
) -> pl.DataFrame:
    """GET ``endpoint`` from ``api`` and turn its list of records into a frame.

    The body is read in chunks and refused past ``max_size``, so a runaway answer cannot fill
    the worker's memory. An answer that is not JSON (a gateway's error page, say) counts
    against the API's breaker; one of the wrong shape or size does not: the API answered.
    """
    where = f"{endpoint.block}{endpoint.path}"
    if breaker is None:
        data = _get_json(api, endpoint, where)
    else:
        with breaker.guard(ignore=_neutral):
            data = _get_json(api, endpoint, where)
    under = ""
    for key in endpoint.records.split(".") if endpoint.records else []:
        if not isinstance(data, dict) or key not in data:
            raise BadDataError(f"{where}: no {endpoint.records!r} in the answer")
        data = data[key]
        under = f" under {endpoint.records!r}"
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise BadDataError(f"{where}: expected a list of records{under}, got {_kind_of(data)}")
    return pl.from_dicts(data, infer_schema_length=None) if data else pl.DataFrame()


def _get_json(api: HttpJsonApi, endpoint: HttpEndpoint, where: str) -> Any:
    limit = int(endpoint.max_size)
    with (
        api.client() as http,
        http.stream("GET", endpoint.path, params=endpoint.params) as response,
    ):
        response.raise_for_status()
        kind = response.headers.get("content-type") or "no content type"
        body = bytearray()
        for chunk in response.iter_bytes():
            body.extend(chunk)
            if len(body) > limit:
                raise _AnswerTooLargeError(
                    f"{where}: the answer is over http.max_size ({limit:,} bytes)"
                )
    try:
        return json.loads(body)
    except ValueError as exc:
        head = " ".join(bytes(body[:80]).decode(errors="replace").split())
        raise BadDataError(f"{where}: the answer is not JSON ({kind}): {head}") from exc


def _kind_of(data: object) -> str:
    if isinstance(data, dict):
        return "an object"
    if isinstance(data, list):
        odd = next(row for row in data if not isinstance(row, dict))
        return f"a list of {type(odd).__name__}"
    return type(data).__name__
