"""Reading an `http:` source: the API's block, one GET through its breaker, records to a frame."""

from __future__ import annotations

import httpx
import polars as pl

from flowfactory.blocks import HttpJsonApi
from flowfactory.breaker import Breaker
from flowfactory.config import HttpSource
from flowfactory.errors import PipelineRunError

__all__ = ["is_client_error", "read_http"]

TOO_MANY_REQUESTS = 429


def is_client_error(exc: Exception) -> bool:
    """A 4xx other than 429: the API is up and said no, which is no sign of an outage."""
    if not isinstance(exc, httpx.HTTPStatusError):
        return False
    status = exc.response.status_code
    return 400 <= status < 500 and status != TOO_MANY_REQUESTS


def read_http(source: HttpSource, breaker: Breaker | None = None) -> pl.DataFrame:
    """GET the endpoint (through ``breaker``) and turn its list of records into a frame."""
    endpoint = source.http
    api = HttpJsonApi.load(endpoint.block, _sync=True)  # type: ignore[call-arg] # sync task
    assert isinstance(api, HttpJsonApi)  # noqa: S101 - narrows Prefect's dispatching type
    if breaker is None:
        data = api.get_json(endpoint.path, endpoint.params)
    else:
        with breaker.guard(ignore=is_client_error):
            data = api.get_json(endpoint.path, endpoint.params)
    for key in endpoint.records.split(".") if endpoint.records else []:
        if not isinstance(data, dict) or key not in data:
            raise PipelineRunError(f"{endpoint.block}{endpoint.path}: no {endpoint.records!r}")
        data = data[key]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise PipelineRunError(f"{endpoint.block}{endpoint.path}: expected a list of records")
    return pl.from_dicts(data, infer_schema_length=None) if data else pl.DataFrame()
