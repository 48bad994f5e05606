"""Verbs about the two versions of a pipeline: run a canary of v2 against v1, and choose by hand
which one production runs use (promote, rollback)."""

from __future__ import annotations

from typing import Annotated

import typer

from flowfactory.cli._shared import (
    PipelineName,
    app,
    check_partition,
    report_errors,
    require_api,
    require_project,
)
from flowfactory.settings import get_settings

__all__ = ["canary", "promote", "rollback"]


@app.command()
@report_errors
def canary(
    name: PipelineName,
    partition: Annotated[
        str | None, typer.Option(help="Sample one partition only, e.g. year=2013/month=1.")
    ] = None,
) -> None:
    """Run v1 and candidate v2 of a pipeline on a sample, diff them, promote v2 if they agree."""
    check_partition(partition)
    settings = get_settings()
    require_project(settings)
    require_api(settings)
    from flowfactory.orchestration import run_canary_now  # noqa: PLC0415 - loads Prefect (~1.5 s)

    promoted, text = run_canary_now(name, partition, settings)
    typer.echo(text)
    if not promoted:
        raise typer.Exit(1)


def _change_live(name: str, version: str, by: str) -> None:
    """Make ``version`` of pipeline ``name`` live and say what changed."""
    from flowfactory.canary import parse_version  # noqa: PLC0415 - loads polars (~0.2 s)

    chosen = parse_version(version)
    # No require_api: the change holds without an API (only its event needs one), and the URL
    # main() names by default keeps Prefect from starting a server of its own.
    from flowfactory.orchestration import change_live_version  # noqa: PLC0415 - loads Prefect

    before, after, sent = change_live_version(name, chosen, get_settings(), by=by)
    change = "unchanged" if before.version == after.version else f"was {before.version}"
    typer.echo(f"{name}: {after.version} is live ({change})")
    if not sent:
        typer.echo("note: no Prefect API answered; the change holds, but no event was sent")


@app.command()
@report_errors
def promote(
    name: PipelineName,
    version: Annotated[str, typer.Argument(help="v1 (the transform) or v2 (the candidate).")],
) -> None:
    """Make a version of a pipeline live for production runs, without a redeploy."""
    _change_live(name, version, "flowfactory promote")


@app.command()
@report_errors
def rollback(name: PipelineName) -> None:
    """Return a pipeline's production runs to v1 (its `transform:`)."""
    _change_live(name, "v1", "flowfactory rollback")
