"""Breakers inside real pipeline runs on the session's Prefect server, with an HTTP source."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.worker import EventsWorker
from prefect.states import State
from tests.helpers import REPO
from tests.integration.conftest import project_settings
from tests.upstream import Upstream, running_upstream

from flowfactory.blocks import HttpJsonApi
from flowfactory.breaker import registry
from flowfactory.data import DataRoot, read_dataset
from flowfactory.orchestration import run_pipeline
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

OPEN_SECONDS = 15  # long enough for the second run to meet the open circuit


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """The HTTP API the pipeline reads."""
    with running_upstream() as server:
        yield server


@flow(name="breaker-pipeline")
def pipeline_flow(name: str, project_dir: str) -> Any:
    """Run one pipeline in this process (so its breaker is this process's)."""
    return run_pipeline(name, settings=Settings(project_dir=Path(project_dir)))


def _run(name: str, settings: Settings) -> State[Any]:
    state: State[Any] = pipeline_flow(name, str(settings.project_dir), return_state=True)
    return state


async def _read_events(name: str, resource_id: str) -> list[Event]:
    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[name]),
                resource=EventResourceFilter(id=[resource_id]),
            ),
            limit=10,
        )
    return list(page.events)


def _wait_for_event(name: str, resource_id: str, timeout: float = 30) -> list[Event]:
    EventsWorker.drain_all(timeout=30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = asyncio.run(_read_events(name, resource_id))
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {name} event for {resource_id} within {timeout:.0f} s")


def test_http_source_down_then_up(stack: LocalStack, tmp_path: Path, upstream: Upstream) -> None:
    block = f"bk-{uuid.uuid4().hex[:8]}"
    token = Secret(value="s3cr3t")
    token.save(f"{block}-token")
    HttpJsonApi(base_url=upstream.url, headers={"X-Client": "flowfactory"}, secret=token).save(
        block
    )
    dependency = f"http.{block}"
    CustomWebhookNotificationBlock(
        name="breaker",
        url=f"{upstream.url}/hook",
        json_data={"text": "{{subject}} | {{body}}"},
        allow_private_urls=True,
    ).save(f"{block}-hook")
    root = tmp_path / "project"
    (root / "deployments").mkdir(parents=True)
    (root / "deployments" / "airports.yaml").write_text(
        f"name: airports_http\n"
        f"source: {{http: {{block: {block}, path: /airports, records: items}}}}\n"
        "destination: {dataset: airports_http}\n"
        "retries: {attempts: 3, delay: 0s}\n"
        f"circuit_breaker: {{failure_threshold: 2, reset_after: {OPEN_SECONDS}s, jitter: 0, "
        f"notify: custom-webhook/{block}-hook}}\n"
    )
    settings = project_settings(root, stack)

    upstream.set("down")
    first = _run("airports_http", settings)
    assert first.is_failed()
    # Two attempts reach the API and open the circuit; the third retry is not spent.
    assert upstream.requests == 2
    opened_at = time.monotonic()

    second = _run("airports_http", settings)
    assert second.is_failed()
    assert f"circuit breaker '{dependency}' is open" in (second.message or "")
    assert upstream.requests == 2  # rejected without calling, and no retries burned

    opened = _wait_for_event("circuit-breaker.opened", f"circuit-breaker.{dependency}")
    assert opened[0].payload["failure_count"] == 2
    assert opened[0].payload["last_error"] == "RemoteProtocolError"
    deadline = time.monotonic() + 30
    while not upstream.posted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(upstream.posted) == 1  # the pipeline asked to be told when it opens
    assert f"circuit breaker opened: {dependency}" in upstream.posted[0].decode()

    upstream.set("healthy")
    time.sleep(max(0.0, OPEN_SECONDS + 0.5 - (time.monotonic() - opened_at)))
    third = _run("airports_http", settings)
    assert third.is_completed(), third.message
    assert upstream.requests == 3  # one probe, which closed the circuit
    assert registry().get(dependency).state() == "closed"
    assert upstream.headers_seen[-1]["authorization"] == "Bearer s3cr3t"
    assert upstream.headers_seen[-1]["x-client"] == "flowfactory"
    frame = read_dataset(DataRoot(settings.data_root_url), "airports_http", None).collect()
    assert sorted(frame["faa"].to_list()) == ["JFK", "LGA"]
    _wait_for_event("circuit-breaker.half-opened", f"circuit-breaker.{dependency}")
    _wait_for_event("circuit-breaker.closed", f"circuit-breaker.{dependency}")


@pytest.mark.parametrize("how", [["-m", "flowfactory.blocks"], ["-f", "blocks/http_json_api.py"]])
def test_block_type_registers_with_prefect_cli(stack: LocalStack, how: list[str]) -> None:
    prefect = Path(sys.executable).with_name("prefect")
    done = subprocess.run(
        [str(prefect), "block", "register", *how],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PREFECT_API_URL": stack.api_url},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully registered 1 block" in done.stdout
