"""`flowfactory init`: a new project with one example pipeline that runs at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowfactory.cli._shared import app, print_error, report_errors
from flowfactory.errors import ExistingFilesError

__all__ = ["init"]


@app.command()
@report_errors
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder of the new project (default: the current one).")
    ] = Path(),
) -> None:
    """Start a project: pipeline files, an example with its data, tests, CI and prefect.yaml."""
    # flowfactory.deploy loads Prefect (~1.5 s); rendering prefect.yaml needs it.
    from flowfactory.deploy.scaffold import EXAMPLE_PIPELINE, scaffold  # noqa: PLC0415

    try:
        report = scaffold(directory)
    except ExistingFilesError as exc:
        print_error(f"error: {directory} already has these files; nothing was written:")
        for path in exc.paths:
            print_error(f"  {path}")
        raise typer.Exit(1) from None
    for path in report.written:
        typer.echo(f"wrote {path}")
    for path, addition in report.kept.items():
        typer.echo(f"kept your {path}; add this to it:\n\n{addition.rstrip()}\n")
    where = "" if directory == Path() else f"cd {directory} && "
    typer.echo(
        f"next: {where}flowfactory validate, then `flowfactory up` in another terminal, then "
        f"`flowfactory run {EXAMPLE_PIPELINE}` and `flowfactory deploy`"
    )
