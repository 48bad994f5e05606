"""Is a Prefect API there? Asked before a command talks to one, so that a missing server is a
one-line message instead of a stack of retries and a traceback."""

from __future__ import annotations

import httpx

__all__ = ["api_is_healthy"]


def api_is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect API answers its health check at ``api_url``."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200
