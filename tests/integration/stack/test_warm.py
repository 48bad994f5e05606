"""The warm executor: runs are forks of a preloaded server, streams and signals pass through."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def _silent_api() -> Iterator[str]:
    """An API URL that accepts connections and never answers: a run waits in its first call."""
    with socket.socket() as silent_api:
        silent_api.bind(("127.0.0.1", 0))
        silent_api.listen(8)
        yield f"http://127.0.0.1:{silent_api.getsockname()[1]}/api"


def _forked_then_stopped(
    server_pid: int, start: Callable[[], subprocess.Popen[str]], signum: signal.Signals
) -> None:
    """``start`` a caller that the server forks a run for; ``signum`` to the caller ends it."""
    before = set(_children_of(server_pid))
    caller = start()
    deadline = time.monotonic() + 30
    forked: set[int] = set()
    while not forked and time.monotonic() < deadline:
        forked = set(_children_of(server_pid)) - before
        time.sleep(0.05)
    assert forked, "no run was forked from the warm server"
    assert caller.poll() is None
    caller.send_signal(signum)
    caller.communicate(timeout=30)
    assert caller.returncode != 0
    deadline = time.monotonic() + 10
    while forked & set(_children_of(server_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not forked & set(_children_of(server_pid)), f"the forked run outlived {signum.name}"


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
    with _silent_api() as api_url:
        env = {
            **os.environ,
            SOCKET_ENV: str(path),
            "PREFECT_API_URL": api_url,
            "PREFECT__FLOW_RUN_ID": str(uuid.uuid4()),
        }
        _forked_then_stopped(server_pid, lambda: _launch([], env), signal.SIGTERM)


@pytest.mark.parametrize("socket_env", [None, "/nonexistent/warm.sock"])
def test_without_a_server_the_launcher_is_the_plain_engine(socket_env: str | None) -> None:
    env = {key: value for key, value in os.environ.items() if key != SOCKET_ENV}
    if socket_env:
        env[SOCKET_ENV] = socket_env
    launched = _launch(["not-a-uuid"], env)
    _out, err = launched.communicate(timeout=120)
    assert launched.returncode == 1
    assert "Invalid flow run id" in err


def _flowfactory(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("flowfactory")), *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_flowfactory_run_answers_the_same_warm_and_cold(
    warm_server: tuple[Path, int], tmp_path: Path
) -> None:
    (tmp_path / "deployments").mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFACTORY_")}
    answers = []
    for env in ({**base, SOCKET_ENV: str(warm_server[0])}, {**base, SOCKET_ENV: "/nonexistent"}):
        ran = _flowfactory(["run", "nope"], env, tmp_path)
        out, err = ran.communicate(timeout=120)
        answers.append((ran.returncode, out, err.replace(str(tmp_path), "<project>")))
    warm, cold = answers
    assert warm == cold
    assert warm[0] == 1
    assert "nope" in warm[2]
    assert "Traceback" not in warm[2]


def test_flowfactory_run_is_a_fork_of_the_executor_and_ctrl_c_reaches_it(
    warm_server: tuple[Path, int], tmp_path: Path
) -> None:
    path, server_pid = warm_server
    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments" / "copy.yaml").write_text(
        "name: copy\nsource: {path: landing/*.csv}\ndestination: {dataset: copied}\n"
    )
    (tmp_path / "data" / "landing").mkdir(parents=True)
    (tmp_path / "data" / "landing" / "a.csv").write_text("id\n1\n")
    with _silent_api() as api_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFACTORY_")},
            SOCKET_ENV: str(path),
            "PREFECT_API_URL": api_url,
        }
        _forked_then_stopped(
            server_pid, lambda: _flowfactory(["run", "copy"], env, tmp_path), signal.SIGINT
        )
