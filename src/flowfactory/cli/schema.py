"""The `schema` verbs: lock each dataset's output contract, and check changes against it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from flowfactory.cli._shared import app, project_of, report_errors
from flowfactory.settings import get_settings

__all__ = ["SchemaFormat", "schema_app", "schema_check", "schema_lock"]

schema_app = typer.Typer(
    name="schema",
    help="Output contracts: lock each dataset's schema, check changes against it.",
    no_args_is_help=True,
)
app.add_typer(schema_app)


class SchemaFormat(StrEnum):
    """How `schema check` reports."""

    text = "text"
    json = "json"
    github = "github"


@schema_app.command("lock")
@report_errors
def schema_lock(
    names: Annotated[
        list[str] | None, typer.Argument(help="Pipelines or datasets (default: all).")
    ] = None,
) -> None:
    """Write contracts/<dataset>.json from each output schema, derived without reading data."""
    from flowfactory.schema import lock_project  # noqa: PLC0415 - loads polars (~0.2 s)

    settings = get_settings()
    report = lock_project(project_of(settings), settings, names)
    if report.text():
        typer.echo(report.text())
    if not report.ok:
        raise typer.Exit(1)


@schema_app.command("check")
@report_errors
def schema_check(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Pipelines or datasets (default: all); their downstream too."),
    ] = None,
    output: Annotated[SchemaFormat, typer.Option("--format")] = SchemaFormat.text,
) -> None:
    """Re-derive every output schema and judge its changes; exit 1 on a breaking change."""
    from flowfactory.schema import check_project  # noqa: PLC0415 - loads polars (~0.2 s)

    settings = get_settings()
    report = check_project(project_of(settings), settings, names)
    if output is SchemaFormat.json:
        typer.echo(report.json())
    elif output is SchemaFormat.github:
        text = report.github()
        if text:
            typer.echo(text)
        typer.echo(report.text().splitlines()[-1])
    else:
        typer.echo(report.text())
    if not report.ok:
        raise typer.Exit(1)
