"""The local stack: a real `prefect server start` on SQLite in the state folder, and workers.

Used by ``flowfactory up`` and ``demo`` and by the integration tests, so that what users run
is what the tests run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Self

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker

from flowfactory.errors import StackError
from flowfactory.orchestration import api_is_healthy
from flowfactory.settings import Settings
from flowfactory.stack._warm_launch import socket_path
from flowfactory.stack.warm import SOCKET_ENV, launcher_command

SQLITE_SERVER: Final = "flowfactory.stack.sqlite_server"

__all__ = ["SQLITE_SERVER", "LocalStack", "free_port", "port_is_free"]

_PREFECT: Final = str(Path(sys.executable).with_name("prefect"))
# The server's writers, batched so that fewer transactions queue for SQLite's one write lock
# (see flowfactory.stack.sqlite_server): task-run events are recorded 50 at a time (Prefect's
# default is one per transaction), events persisted 200 at a time, both at least once a second
# or five. A lock error that still happens is logged, never hidden.
_SQLITE_SERVER_ENV: Final = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",
}


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class _Managed:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    stop_signal: signal.Signals = signal.SIGTERM

    def tail(self, lines: int = 25) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def exited(self) -> StackError | None:
        """The error to raise when the process has exited, None while it runs."""
        if self.process.poll() is None:
            return None
        return StackError(
            f"{self.name} exited with code {self.process.returncode}; "
            f"last lines of {self.log_path}:\n{self.tail()}"
        )


@dataclass
class LocalStack:
    """Starts and stops the processes of the local stack; a context manager stops them all."""

    settings: Settings
    extra_env: Mapping[str, str] = field(default_factory=dict)
    processes: list[_Managed] = field(default_factory=list)
    warm_socket: Path | None = None

    @property
    def api_url(self) -> str:
        """The API this stack serves."""
        return self.settings.prefect_api_url

    @property
    def state(self) -> Path:
        """The state folder (created on demand)."""
        path = self.settings.state_path
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self) -> dict[str, str]:
        """The environment of every process of the stack, and of clients that talk to it."""
        state = self.state
        return {
            **os.environ,
            "PREFECT_HOME": str(state / "prefect-home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{state / 'prefect.db'}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false",
            **_SQLITE_SERVER_ENV,
            # Flow runs find their project through the deployment's working directory, so one
            # worker serves any number of projects; only the API address is pinned here.
            "FLOWFACTORY_PREFECT_API_URL": self.api_url,
            **self.extra_env,
        }

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> _Managed:
        log_path = self.state / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        process = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.settings.project_dir,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )
        managed = _Managed(name, process, log_path, log, stop_signal)
        self.processes.append(managed)
        return managed

    @staticmethod
    def _wait_until(
        managed: _Managed, ready: Callable[[], bool], timeout: float, what: str
    ) -> None:
        """Poll ``ready`` until it holds; StackError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (error := managed.exited()) is not None:
                raise error
            if ready():
                return
            time.sleep(0.25)
        raise StackError(f"{what} within {timeout:.0f} s; see {managed.log_path}")

    def _refuse_taken_port(self, host: str, port: int) -> None:
        if not port_is_free(host, port):
            raise StackError(
                f"{host}:{port} is already in use (another `flowfactory up` or Prefect server?). "
                "Stop it, or pick another port with "
                f"FLOWFACTORY_PREFECT_API_URL=http://{host}:{port + 1}/api"
            )

    def start_server(self, timeout: float = 120.0) -> None:
        """Start `prefect server start` and wait until its API is healthy."""
        host, port = self.settings.api_host_port
        self._refuse_taken_port(host, port)
        # `prefect server start`, with write transactions that wait for the lock instead of
        # failing on it (see flowfactory.stack.sqlite_server).
        server = self._spawn(
            "server",
            [sys.executable, "-m", SQLITE_SERVER, "--host", host, "--port", str(port)],
            self.env(),
        )
        self._wait_until(
            server,
            lambda: api_is_healthy(self.api_url, timeout=1.0),
            timeout,
            "the Prefect server did not become healthy",
        )

    def start_redis(self, timeout: float = 15.0) -> str | None:
        """Start a throwaway ``redis-server`` for shared breaker state; None when not installed.

        Workers, the warm executor and this process then share one circuit per dependency, so a
        breaker that one run opened is still open for the next. Nothing is persisted.
        """
        if shutil.which("redis-server") is None:
            return None
        url = self._start_redis_server(timeout)
        self.extra_env = {**self.extra_env, "FLOWFACTORY_BREAKER_REDIS_URL": url}
        return url

    def _start_redis_server(self, timeout: float = 15.0) -> str:
        """Start ``redis-server`` on a free loopback port, unpersisted; returns ``redis://.../0``."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)"
            )
        port = free_port()
        argv = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]
        redis = self._spawn("redis", argv, self.env())
        self._wait_until(
            redis,
            lambda: not port_is_free("127.0.0.1", port),
            timeout,
            f"redis-server did not listen on port {port}",
        )
        return f"redis://127.0.0.1:{port}/0"

    def start_warm_executor(self) -> Path:
        """Start the warm executor (see flowfactory.stack.warm) once; returns its socket."""
        if self.warm_socket is None:
            path = socket_path(self.state)
            self._spawn(
                "warm-executor",
                [sys.executable, "-m", "flowfactory.stack.warm", str(path)],
                self.env(),
            )
            self.warm_socket = path
        return self.warm_socket

    def _use_warm_launcher(self, pool: str) -> None:
        """Make ``pool`` start runs through the warm launcher (creating the pool if missing)."""
        template = ProcessWorker.get_default_base_job_template()
        template["variables"]["properties"]["command"]["default"] = launcher_command()
        with (
            temporary_settings(updates={PREFECT_API_URL: self.api_url}),
            get_client(sync_client=True) as client,
        ):
            try:
                client.read_work_pool(pool)
            except ObjectNotFound:
                client.create_work_pool(
                    WorkPoolCreate(name=pool, type="process", base_job_template=template)
                )
            else:
                client.update_work_pool(pool, WorkPoolUpdate(base_job_template=template))

    def start_workers(self, pools: list[str]) -> None:
        """Serve each of ``pools`` with a worker of this stack."""
        for pool in pools:
            self.start_worker(pool)

    def start_worker(self, pool: str, name: str | None = None) -> None:
        """Start a process worker on ``pool`` that polls for runs every ``poll_seconds``, named
        ``name`` (default: Prefect's, with a random suffix) and running at most
        ``worker_limit`` runs at once when that is set."""
        env = self.env()
        env["PREFECT_WORKER_QUERY_SECONDS"] = str(self.settings.poll_seconds)
        env["PREFECT_WORKER_PREFETCH_SECONDS"] = "5"
        if self.settings.warm_start:
            env[SOCKET_ENV] = str(self.start_warm_executor())
            self._use_warm_launcher(pool)
        argv = [_PREFECT, "worker", "start", "--pool", pool, "--type", "process"]
        if name is not None:
            argv += ["--name", name]
        if self.settings.worker_limit is not None:
            argv += ["--limit", str(self.settings.worker_limit)]
        self._spawn(f"worker-{pool}", argv, env)

    def topology(self) -> list[str]:
        """What runs where, for the terminal."""
        return [
            f"Prefect server: {self.api_url} (SQLite in {self.state / 'prefect.db'})",
            f"logs: {self.state / 'logs'}",
        ]

    def check_alive(self) -> None:
        """Raise StackError if a process of the stack has exited."""
        for managed in self.processes:
            if (error := managed.exited()) is not None:
                raise error

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every process this stack started, workers first, then the server."""
        for managed in reversed(self.processes):
            if managed.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(managed.process.pid, managed.stop_signal)
        deadline = time.monotonic() + timeout
        for managed in reversed(self.processes):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                managed.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(managed.process.pid, signal.SIGKILL)
                managed.process.wait()
            managed.log.close()
        self.processes.clear()

    @contextlib.contextmanager
    def client_environment(self) -> Iterator[None]:
        """Point this process's Prefect client at the stack for the duration."""
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            yield

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
