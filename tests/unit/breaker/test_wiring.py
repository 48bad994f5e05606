"""Which dependency a source touches, the events a transition makes, status rows, and the CLI
verbs without shared state."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.breaker_helpers import breaker_project, run_flowfactory

from flowfactory.breaker import (
    BreakerRegistry,
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


def test_status_lists_project_dependencies(tmp_path: Path) -> None:
    root = breaker_project(tmp_path)
    project = load_project(root / "deployments", Settings(project_dir=root))
    rows = breaker_rows(project, BreakerRegistry())
    assert [(r.kind, r.name, r.state) for r in rows] == [("breaker", "s3.bucket", "closed")]
    assert "this process only" in rows[0].detail


def test_cli_control_needs_shared_state(tmp_path: Path) -> None:
    done = run_flowfactory(breaker_project(tmp_path), "breaker", "open", "s3.bucket")
    assert done.returncode == 1
    assert "FLOWFACTORY_BREAKER_REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr
