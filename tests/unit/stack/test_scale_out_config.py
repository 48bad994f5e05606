"""What the scale-out topology tells its processes and how it runs PostgreSQL, without running
anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowfactory.errors import StackError
from flowfactory.settings import Settings
from flowfactory.stack import (
    DOCKET_DB,
    MESSAGING_DB,
    PostgresCluster,
    ScaleOutStack,
    prefect_server_environment,
)

BIN = Path("/usr/lib/postgresql/15/bin")


def test_servers_share_the_database_and_use_redis_for_everything_in_memory() -> None:
    env = prefect_server_environment("postgresql+asyncpg://prefect@h:5/prefect", "redis://r:7/0")
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://prefect@h:5/prefect"
    assert env["PREFECT_API_DATABASE_MIGRATE_ON_START"] == "false"
    for name in ("PREFECT_MESSAGING_BROKER", "PREFECT_MESSAGING_CACHE"):
        assert env[name] == "prefect_redis.messaging"
    assert env["PREFECT_SERVER_EVENTS_CAUSAL_ORDERING"] == "prefect_redis.ordering"
    assert env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] == "prefect_redis.lease_storage"
    assert (env["PREFECT_REDIS_MESSAGING_HOST"], env["PREFECT_REDIS_MESSAGING_PORT"]) == ("r", "7")
    assert env["PREFECT_REDIS_MESSAGING_DB"] == str(MESSAGING_DB)
    assert env["PREFECT_SERVER_DOCKET_URL"] == f"redis://r:7/{DOCKET_DB}"
    assert 0 not in {MESSAGING_DB, DOCKET_DB}  # db 0 holds the breakers' state


def test_as_root_postgres_runs_as_its_system_account(tmp_path: Path) -> None:
    cluster = PostgresCluster(tmp_path, 5433, BIN, euid=0)
    argv = cluster.server_argv()
    assert argv[:4] == ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    assert argv[4] == str(BIN / "postgres")
    assert cluster.initdb_argv()[0] == "setpriv"


def test_as_a_user_postgres_runs_as_that_user_on_loopback(tmp_path: Path) -> None:
    cluster = PostgresCluster(tmp_path, 5433, BIN, euid=1000)
    argv = cluster.server_argv()
    assert argv[0] == str(BIN / "postgres")
    assert argv[argv.index("-p") + 1] == "5433"
    assert argv[argv.index("-k") + 1] == str(tmp_path)
    assert "listen_addresses=127.0.0.1" in argv
    assert cluster.url == "postgresql+asyncpg://prefect@127.0.0.1:5433/prefect"
    assert "--pgdata" in cluster.initdb_argv()
    assert cluster.initdb_argv()[cluster.initdb_argv().index("--pgdata") + 1] == str(
        tmp_path / "data"
    )
    assert not cluster.initialized


def test_a_long_folder_gets_a_short_socket_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 100)
    socket_dir = PostgresCluster(deep, 5433, BIN, euid=1000).socket_dir
    assert socket_dir != deep
    assert len(str(socket_dir / ".s.PGSQL.65535")) < 108
    assert socket_dir == PostgresCluster(deep, 5434, BIN, euid=1000).socket_dir  # stable


def test_the_topology_needs_a_worker(tmp_path: Path, clean_env: None) -> None:
    with pytest.raises(StackError, match="at least one API server and worker"):
        ScaleOutStack(Settings(project_dir=tmp_path), workers=0)


def test_workers_start_after_the_servers(tmp_path: Path, clean_env: None) -> None:
    with pytest.raises(StackError, match="start the servers before the workers"):
        ScaleOutStack(Settings(project_dir=tmp_path)).start_workers(["flowfactory"])
