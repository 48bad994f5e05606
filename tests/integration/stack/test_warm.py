"""The warm executor: runs are forks of a preloaded server, streams and signals pass through."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowfactory.stack import LAUNCHER, SOCKET_ENV, launcher_command


def _children_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(part) for part in children.read_text().split()] if children.exists() else []


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    path = tmp_path_factory.mktemp("warm") / "warm.sock"
    server = subprocess.Popen([sys.executable, "-m", "flowfactory.stack.warm", str(path)])
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert server.poll() is None, "the warm server exited while preloading"
            assert time.monotonic() < deadline, "the warm server did not listen within 60 s"
            time.sleep(0.05)
        yield path, server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)


def _launch(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_pool_command_runs_the_launcher_by_path() -> None:
    assert launcher_command().split() == [sys.executable, str(LAUNCHER)]
    assert LAUNCHER.exists()


def test_warm_run_reports_through_the_callers_streams_and_exit_code(
    warm_server: tuple[Path, int],
) -> None:
    path, server_pid = warm_server
    launched = _launch(["not-a-uuid"], {**os.environ, SOCKET_ENV: str(path)})
    _out, err = launched.communicate(timeout=60)
    assert launched.returncode == 1
    assert "Invalid flow run id" in err  # written by the forked run to the launcher's stderr
    assert "Traceback" not in err.split("Invalid flow run id")[0]
    os.kill(server_pid, 0)  # the server survives its child's failure


def test_a_run_is_a_fork_of_the_server_and_a_signal_reaches_it(
    warm_server: tuple[Path, int],
) -> None:
    path, server_pid = warm_server
    # An API that accepts connections and never answers keeps the run waiting in its first call.
    with socket.socket() as silent_api:
        silent_api.bind(("127.0.0.1", 0))
        silent_api.listen(8)
        port = silent_api.getsockname()[1]
        env = {
            **os.environ,
            SOCKET_ENV: str(path),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT__FLOW_RUN_ID": str(uuid.uuid4()),
        }
        before = set(_children_of(server_pid))
        launched = _launch([], env)
        deadline = time.monotonic() + 30
        forked: set[int] = set()
        while not forked and time.monotonic() < deadline:
            forked = set(_children_of(server_pid)) - before
            time.sleep(0.05)
        assert forked, "no run was forked from the warm server"
        assert launched.poll() is None
        launched.send_signal(signal.SIGTERM)
        launched.communicate(timeout=30)
        assert launched.returncode != 0
        deadline = time.monotonic() + 10
        while forked & set(_children_of(server_pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not forked & set(_children_of(server_pid)), "the forked run outlived SIGTERM"


@pytest.mark.parametrize("socket_env", [None, "/nonexistent/warm.sock"])
def test_without_a_server_the_launcher_is_the_plain_engine(socket_env: str | None) -> None:
    env = {key: value for key, value in os.environ.items() if key != SOCKET_ENV}
    if socket_env:
        env[SOCKET_ENV] = socket_env
    launched = _launch(["not-a-uuid"], env)
    _out, err = launched.communicate(timeout=120)
    assert launched.returncode == 1
    assert "Invalid flow run id" in err
