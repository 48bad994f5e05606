"""Verbs that show and steer the running system: `status` (live versions, breakers, datasets)
and `breaker open|close|reset`, which force a dependency's circuit breaker for every worker.

The rows `status` prints are built in ``flowfactory.cli.status_rows``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Literal

import typer

from flowfactory.cli._shared import OutputFormat, app, project_of, report_errors
from flowfactory.config import Project
from flowfactory.errors import ConfigError, FlowfactoryError, NotAProjectError
from flowfactory.settings import get_settings

__all__ = ["breaker_app", "breaker_close", "breaker_open", "breaker_reset", "status"]

breaker_app = typer.Typer(
    help="Force a dependency's circuit breaker open or closed, or reset it, for every worker "
    "(needs FLOWFACTORY_BREAKER_REDIS_URL).",
    no_args_is_help=True,
)
app.add_typer(breaker_app, name="breaker")


@app.command()
@report_errors
def status(
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Show live versions, breaker states and the last update of each dataset."""
    # The rows read breakers (purgatory, redis) and datasets (polars): ~0.3 s to import.
    from flowfactory.cli.status_rows import status_rows  # noqa: PLC0415
    from flowfactory.data import DataRoot  # noqa: PLC0415

    settings = get_settings()
    try:
        project: Project | None = project_of(settings)
    except (ConfigError, NotAProjectError):
        project = None  # still show what the shared store knows; `validate` explains the rest
    rows = status_rows(project, DataRoot(settings.data_root_url))
    if output is OutputFormat.json:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    if not rows:
        typer.echo("nothing to show: no pipeline produces a dataset or reaches a dependency")
        return
    width = max(len(row.name) for row in rows)
    for row in rows:
        typer.echo(f"{row.kind:<8} {row.name:<{width}}  {row.state:<13} {row.detail}")


def _force(dependency: str, verb: Literal["open", "close", "reset"]) -> None:
    """Force or reset the breaker of ``dependency`` in the shared store every worker reads."""
    from flowfactory.breaker import Override, registry  # noqa: PLC0415 - purgatory, redis (~0.1 s)

    breakers = registry()
    if breakers.store is None:
        raise FlowfactoryError(
            "breaker state is per process without shared state: set "
            "FLOWFACTORY_BREAKER_REDIS_URL to control breakers fleet-wide"
        )
    if verb == "reset":
        breakers.reset(dependency)
    else:
        override = Override.FORCED_OPEN if verb == "open" else Override.FORCED_CLOSED
        breakers.force(dependency, override)
    typer.echo(f"circuit breaker {dependency}: {verb}")


@breaker_app.command("open")
@report_errors
def breaker_open(dependency: Annotated[str, typer.Argument(help="The dependency's name.")]) -> None:
    """Reject every call to DEPENDENCY on every worker until `close` or `reset`."""
    _force(dependency, "open")


@breaker_app.command("close")
@report_errors
def breaker_close(
    dependency: Annotated[str, typer.Argument(help="The dependency's name.")],
) -> None:
    """Let every call to DEPENDENCY through on every worker until `reset`."""
    _force(dependency, "close")


@breaker_app.command("reset")
@report_errors
def breaker_reset(
    dependency: Annotated[str, typer.Argument(help="The dependency's name.")],
) -> None:
    """Lift any forced state and forget failures: closed, counting afresh."""
    _force(dependency, "reset")
