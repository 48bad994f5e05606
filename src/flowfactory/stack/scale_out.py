"""The scale-out topology on one machine: the processes a production deployment spreads over
several, started and stopped together by ``flowfactory up --scale-out`` / ``demo --scale-out``
and by the scale-out integration tests.

- PostgreSQL (a cluster of its own in ``<state>/postgres``) holds Prefect's database;
- one ``redis-server`` is Prefect's message broker, event cache, causal ordering, lease
  storage and Docket queue, and holds the circuit breakers' shared state (its db 0);
- API servers run ``prefect server start --no-services``; one ``prefect server services
  start`` process runs the services (triggers and automations, the scheduler, the event
  persister, late runs), fed by the API servers through Redis;
- each worker is a ``flowfactory worker`` process with its own state folder (PREFECT_HOME,
  warm executor, logs), the workers alternating between the API servers.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from flowfactory.errors import StackError
from flowfactory.orchestration import api_is_healthy
from flowfactory.stack.local import LocalStack, free_port
from flowfactory.stack.postgres import PostgresCluster, find_postgres_bin

__all__ = ["DOCKET_DB", "MESSAGING_DB", "ScaleOutStack", "prefect_server_environment"]

MESSAGING_DB: Final = 1  # the breakers keep db 0, as with a throwaway redis-server of `up`
DOCKET_DB: Final = 2
_PREFECT: Final = str(Path(sys.executable).with_name("prefect"))
_FLOWFACTORY: Final = str(Path(sys.executable).with_name("flowfactory"))


def prefect_server_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """What every API server and the services process need: the shared database, and Redis
    in place of the in-memory bus, cache and queues that only work inside one process."""
    parts = urlsplit(redis_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    return {
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        # Migrated once before any server starts; servers starting together must not race.
        "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": host,
        "PREFECT_REDIS_MESSAGING_PORT": str(port),
        "PREFECT_REDIS_MESSAGING_DB": str(MESSAGING_DB),
        "PREFECT_SERVER_DOCKET_URL": f"redis://{host}:{port}/{DOCKET_DB}",
    }


@dataclass
class ScaleOutStack(LocalStack):
    """PostgreSQL, Redis, ``api_servers`` API servers, the services process and ``workers``
    workers; ``settings.prefect_api_url`` names the first API server, the others get free
    ports. A context manager stops them all."""

    workers: int = 2
    api_servers: int = 2
    api_urls: list[str] = field(default_factory=list, init=False)
    worker_apis: dict[str, str] = field(default_factory=dict, init=False)
    redis_url: str | None = field(default=None, init=False)
    database_url: str | None = field(default=None, init=False)
    _server_env: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.workers < 1 or self.api_servers < 1:
            raise StackError("the scale-out topology needs at least one API server and worker")

    def env(self) -> dict[str, str]:
        """The local stack's environment with the database and Redis of this topology."""
        return {**super().env(), **self._server_env}

    def start_redis(self, timeout: float = 15.0) -> str | None:
        """The topology's redis-server also holds breaker state, unless the settings name
        another Redis for it (then None, as nothing new is shared)."""
        del timeout  # started with the server: Prefect needs it first
        if self.settings.breaker_redis_url is not None:
            return None
        return self.redis_url

    def start_server(self, timeout: float = 180.0) -> None:
        """Redis, PostgreSQL, the migrations, then the API servers and the services process;
        returns when every API server is healthy."""
        host, port = self.settings.api_host_port
        self._refuse_taken_port(host, port)
        self.redis_url = self._start_redis_server()
        if self.settings.breaker_redis_url is None:
            self.extra_env = {**self.extra_env, "FLOWFACTORY_BREAKER_REDIS_URL": self.redis_url}
        self.database_url = self._start_postgres()
        self._server_env = prefect_server_environment(self.database_url, self.redis_url)
        self._run_to_log("migrate", [_PREFECT, "server", "database", "upgrade", "-y"], timeout)
        ports = [port, *(free_port(host) for _ in range(self.api_servers - 1))]
        self.api_urls = [f"http://{host}:{p}/api" for p in ports]
        # Only the first API server registers the block types: servers registering together on
        # a fresh database insert the same rows, and all but one fail to start.
        registers = [True] + [False] * (len(ports) - 1)
        apis = [
            self._spawn(
                f"api-{i}",
                [_PREFECT, "server", "start", "--host", host, "--port", str(p), "--no-services"],
                {**self.env(), "PREFECT_API_BLOCKS_REGISTER_ON_START": str(first).lower()},
            )
            for i, (p, first) in enumerate(zip(ports, registers, strict=True), start=1)
        ]
        self._spawn("services", [_PREFECT, "server", "services", "start"], self.env())
        for api, url in zip(apis, self.api_urls, strict=True):
            self._wait_until(
                api,
                functools.partial(api_is_healthy, url, timeout=1.0),
                timeout,
                f"the API server at {url} did not become healthy",
            )
        self.check_alive()

    def _start_postgres(self) -> str:
        cluster = PostgresCluster(self.state / "postgres", free_port(), find_postgres_bin())
        cluster.prepare_folder()
        if not cluster.initialized:
            self._run_to_log("initdb", cluster.initdb_argv(), 120.0)
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
        server = self._spawn("postgres", cluster.server_argv(), self.env(), signal.SIGINT)
        self._wait_until(
            server,
            lambda: subprocess.run(cluster.ready_argv(), check=False).returncode == 0,
            60.0,
            "PostgreSQL did not accept connections",
        )
        exists = self._run_to_log("postgres-setup", cluster.database_exists_argv(), 30.0)
        if exists.strip() != "1":
            self._run_to_log("postgres-setup", cluster.create_database_argv(), 30.0)
        self._run_to_log("postgres-setup", cluster.create_extension_argv(), 30.0)
        return cluster.url

    def _run_to_log(self, name: str, argv: list[str], timeout: float) -> str:
        """Run a one-off step to completion; its output goes to ``logs/<name>.log`` and is
        returned. StackError with the output's tail if it fails."""
        log_path = self.state / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                argv,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.settings.project_dir,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"{name} did not finish within {timeout:.0f} s") from None
        except OSError as error:
            raise StackError(f"{name} could not start {argv[0]}: {error.strerror}") from None
        with log_path.open("a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise StackError(
                f"{name} exited with code {done.returncode}; last lines of {log_path}:\n{tail}"
            )
        return done.stdout

    def stop(self, timeout: float = 30.0) -> None:
        """Stop everything; each worker first stops the processes it started itself."""
        super().stop(timeout)

    def worker_state(self, name: str) -> Path:
        """The state folder of worker ``name``."""
        return self.state / "workers" / name

    def start_workers(self, pools: list[str]) -> None:
        """Start ``workers`` ``flowfactory worker`` processes serving every pool in ``pools``,
        each with its own state folder, worker ``i`` talking to API server ``i``."""
        if not self.api_urls:
            raise StackError("start the servers before the workers")
        client_only = {k: v for k, v in self.env().items() if k not in self._server_env}
        for i in range(self.workers):
            name = f"worker-{i + 1}"
            url = self.api_urls[i % len(self.api_urls)]
            env = {
                **client_only,
                "PREFECT_API_URL": url,
                "FLOWFACTORY_PREFECT_API_URL": url,
                "FLOWFACTORY_STATE_DIR": str(self.worker_state(name)),
            }
            argv = [_FLOWFACTORY, "worker", "--name", name]
            for pool in pools:
                argv += ["--pool", pool]
            self._spawn(name, argv, env)
            self.worker_apis[name] = url

    def topology(self) -> list[str]:
        """What runs where, for the terminal."""
        lines = [
            f"PostgreSQL: {self.database_url} (cluster in {self.state / 'postgres'})",
            (
                f"Redis: {self.redis_url} (Prefect's messaging on db {MESSAGING_DB}, "
                f"Docket on db {DOCKET_DB}, breakers on db 0)"
            ),
            *(f"API server (--no-services): {url}" for url in self.api_urls),
            "services: `prefect server services start` (triggers, scheduler, event persister)",
        ]
        lines += [
            f"{name}: `flowfactory worker` via {url} (state in {self.worker_state(name)})"
            for name, url in self.worker_apis.items()
        ]
        lines.append(f"logs: {self.state / 'logs'}")
        return lines
