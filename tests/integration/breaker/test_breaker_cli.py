"""`flowfactory breaker open|reset` and `status` on a real redis-server shared with a worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.breaker_helpers import breaker_project, run_flowfactory

from flowfactory.breaker import BreakerRegistry, RedisStore

pytestmark = pytest.mark.integration


def test_cli_forces_a_breaker_fleet_wide(tmp_path: Path, redis_url: str) -> None:
    RedisStore(redis_url).client.flushdb()
    root = breaker_project(tmp_path)
    done = run_flowfactory(root, "breaker", "open", "s3.bucket", redis_url=redis_url)
    assert done.returncode == 0, done.stderr
    shown = run_flowfactory(root, "status", "--format", "json", redis_url=redis_url)
    assert shown.returncode == 0, shown.stderr
    rows = [row for row in json.loads(shown.stdout) if row["kind"] == "breaker"]
    assert rows == [
        {
            "kind": "breaker",
            "name": "s3.bucket",
            "state": "forced-open",
            "detail": "0 failure(s), fleet-wide",
        }
    ]
    # A worker in another process sees it: rejected without calling.
    worker = BreakerRegistry(store=RedisStore(redis_url, timeout=5.0))
    calls: list[int] = []
    with pytest.raises(Exception, match="forced-open"):
        worker.get("s3.bucket").call(calls.append, 1)
    assert calls == []
    assert (
        run_flowfactory(root, "breaker", "reset", "s3.bucket", redis_url=redis_url).returncode == 0
    )
    worker.get("s3.bucket").call(calls.append, 1)
    assert calls == [1]
    text = run_flowfactory(root, "status", redis_url=redis_url).stdout
    assert "s3.bucket" in text
    assert "closed" in text
