"""One real Prefect server (`prefect server start`, SQLite) and one process worker per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)
from tests.helpers import free_port

from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A running server and a worker on the `flowfactory` pool, shared by every test."""
    base = tmp_path_factory.mktemp("stack")
    settings = Settings(
        project_dir=base,
        state_dir=base / "state",
        prefect_api_url=f"http://127.0.0.1:{free_port()}/api",
        poll_seconds=0.5,
    )
    # Task-run rows are not asserted on; recording them makes SQLite lock and the client back off.
    stack = LocalStack(
        settings, extra_env={"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false"}
    )
    saved = os.environ.get("PREFECT_API_URL")
    try:
        stack.start_server()
        stack.start_worker("flowfactory")
        os.environ["PREFECT_API_URL"] = stack.api_url
        with temporary_settings(
            updates={PREFECT_API_URL: stack.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        ):
            yield stack
    finally:
        stack.stop()
        if saved is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved


def project_settings(root: Path, stack: LocalStack) -> Settings:
    """Settings of a test project that talks to the session's server."""
    return Settings(project_dir=root, prefect_api_url=stack.api_url, project_name=root.name)
