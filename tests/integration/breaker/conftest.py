"""Real servers for the breaker's integration tests: an HTTP upstream and a redis-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.redis_server import running_redis
from tests.upstream import Upstream, running_upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A healthy upstream on loopback; tests switch it (slow requests hang until released)."""
    with running_upstream(slow_seconds=10.0) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server per test module."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url
