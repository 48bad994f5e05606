"""Which dependency a source touches, the events a transition makes, status and the CLI verbs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.redis_server import running_redis

from flowfactory.breaker import (
    BreakerRegistry,
    RedisStore,
    Transition,
    dependency_of_url,
    guarded,
    source_dependency,
)
from flowfactory.cli.status_rows import breaker_rows
from flowfactory.config import CircuitBreakerConfig, DatasetSource, FileSource, load_project
from flowfactory.errors import PipelineRunError
from flowfactory.orchestration import source_breaker, transition_event
from flowfactory.settings import Settings

FLOWFACTORY = Path(sys.executable).with_name("flowfactory")


@pytest.mark.parametrize(
    ("url", "dependency"),
    [
        ("s3://bucket/landing/*.csv", "s3.bucket"),
        ("https://Example.org:8443/x.csv", "https.example.org:8443"),
        ("simplecache::s3://b/x.csv", "simplecache"),
        ("file:///tmp/x.csv", None),
        ("memory://x.csv", None),
    ],
)
def test_dependency_of_url(url: str, dependency: str | None) -> None:
    assert dependency_of_url(url) == dependency


def test_source_dependency_merges_and_skips() -> None:
    pipeline = CircuitBreakerConfig(failure_threshold=7)
    remote = FileSource(path="s3://bucket/x.csv")
    assert source_dependency(remote, pipeline) == ("s3.bucket", pipeline)
    named = FileSource.model_validate(
        {"path": "s3://bucket/x.csv", "circuit_breaker": {"dependency": "lake", "jitter": 0}}
    )
    found = source_dependency(named, pipeline)
    assert found is not None
    assert found[0] == "lake"
    assert found[1].failure_threshold == 7
    assert found[1].jitter == 0
    off = FileSource.model_validate(
        {"path": "s3://bucket/x.csv", "circuit_breaker": {"enabled": False}}
    )
    assert source_dependency(off, pipeline) is None
    assert source_dependency(FileSource(path="landing/x.csv"), pipeline) is None
    assert source_dependency(DatasetSource(dataset="a"), pipeline) is None


def test_one_breaker_per_dependency_across_pipelines() -> None:
    breakers = BreakerRegistry()
    first = source_breaker(FileSource(path="s3://bucket/a.csv"), CircuitBreakerConfig(), breakers)
    second = source_breaker(
        FileSource(path="s3://bucket/b/*.csv"), CircuitBreakerConfig(), breakers
    )
    assert first is not None
    assert first is second


def test_no_files_is_not_a_failure() -> None:
    breakers = BreakerRegistry()
    breaker = breakers.get("s3.bucket", CircuitBreakerConfig(failure_threshold=1))

    def nothing() -> None:
        raise PipelineRunError("no files match s3://bucket/x.csv")

    for _ in range(3):
        with pytest.raises(PipelineRunError):
            guarded(breaker, nothing)
    assert breaker.state() == "closed"


def test_transition_event_names_and_payload() -> None:
    opened = Transition("s3.bucket", "closed", "open", 30.0, failures=5, last_error="OSError")
    name, resource, payload = transition_event(opened)
    assert name == "circuit-breaker.opened"
    assert resource["prefect.resource.id"] == "circuit-breaker.s3.bucket"
    assert payload["failure_count"] == 5
    assert payload["retry_after"] == 30.0
    assert payload["last_error"] == "OSError"
    half = transition_event(Transition("s3.bucket", "open", "half-open", None))
    assert half[0] == "circuit-breaker.half-opened"
    closed = transition_event(Transition("s3.bucket", "half-open", "closed", None))
    assert closed[0] == "circuit-breaker.closed"


def test_open_transition_carries_failures_and_error() -> None:
    breakers = BreakerRegistry()
    heard: list[Transition] = []
    breakers.add_listener(heard.append)
    breaker = breakers.get("svc", CircuitBreakerConfig(failure_threshold=2))
    for _ in range(2):
        with pytest.raises(TimeoutError), breaker.guard():
            raise TimeoutError
    assert [(t.new, t.failures, t.last_error) for t in heard] == [("open", 2, "TimeoutError")]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the CLI tests."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _project(root: Path) -> Path:
    folder = root / "deployments"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.yaml").write_text(
        "name: a\nsource: {path: 's3://bucket/x.csv'}\ndestination: {dataset: a}\n"
    )
    return root


def _cli(root: Path, *args: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFACTORY_")}
    env["FLOWFACTORY_PROJECT_DIR"] = str(root)
    if redis_url:
        env["FLOWFACTORY_BREAKER_REDIS_URL"] = redis_url
    return subprocess.run(
        [str(FLOWFACTORY), *args], capture_output=True, text=True, env=env, cwd=root, check=False
    )


def test_status_lists_project_dependencies(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = load_project(root / "deployments", Settings(project_dir=root))
    rows = breaker_rows(project, BreakerRegistry())
    assert [(r.kind, r.name, r.state) for r in rows] == [("breaker", "s3.bucket", "closed")]
    assert "this process only" in rows[0].detail


def test_cli_forces_a_breaker_fleet_wide(tmp_path: Path, redis_url: str) -> None:
    RedisStore(redis_url).client.flushdb()
    root = _project(tmp_path)
    done = _cli(root, "breaker", "open", "s3.bucket", redis_url=redis_url)
    assert done.returncode == 0, done.stderr
    shown = _cli(root, "status", "--format", "json", redis_url=redis_url)
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
    assert _cli(root, "breaker", "reset", "s3.bucket", redis_url=redis_url).returncode == 0
    worker.get("s3.bucket").call(calls.append, 1)
    assert calls == [1]
    text = _cli(root, "status", redis_url=redis_url).stdout
    assert "s3.bucket" in text
    assert "closed" in text


def test_cli_control_needs_shared_state(tmp_path: Path) -> None:
    done = _cli(_project(tmp_path), "breaker", "open", "s3.bucket")
    assert done.returncode == 1
    assert "FLOWFACTORY_BREAKER_REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr
