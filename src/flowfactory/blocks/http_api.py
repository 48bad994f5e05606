"""A Prefect block describing an HTTP JSON API: base URL, headers (one from a Secret), timeouts."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from pydantic import Field

__all__ = ["HttpJsonApi"]


class HttpJsonApi(Block):
    """An HTTP API that answers JSON; flowfactory's `http:` sources read through it."""

    _block_type_name: ClassVar[str] = "HTTP JSON API"
    _block_type_slug: ClassVar[str] = "http-json-api"
    _description: ClassVar[str] = (
        "Base URL, headers and timeouts of an HTTP JSON API read by flowfactory `http:` sources."
    )

    base_url: str = Field(description="Scheme, host and base path, e.g. https://api.example.org/v1")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers sent as they are.")
    secret_header: str = Field(
        default="Authorization", description="The header that carries the secret, if one is set."
    )
    secret: Secret[str] | None = Field(
        default=None, description="A Secret block whose value goes in `secret_header`."
    )
    secret_prefix: str = Field(default="Bearer ", description="Put before the secret's value.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Read and write timeout.")
    connect_timeout_seconds: float = Field(default=5.0, gt=0, description="Connect timeout.")

    def client(self) -> httpx.Client:
        """An httpx client for this API (the caller closes it)."""
        headers = dict(self.headers)
        if self.secret is not None:
            headers[self.secret_header] = f"{self.secret_prefix}{self.secret.get()}"
        timeout = httpx.Timeout(self.timeout_seconds, connect=self.connect_timeout_seconds)
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``path`` and decode the JSON; raises ``httpx.HTTPStatusError`` on 4xx and 5xx."""
        with self.client() as http:
            response = http.get(path, params=params)
            response.raise_for_status()
            return response.json()
