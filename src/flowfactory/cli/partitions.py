"""The `partitions` verb: per dataset, its partitions with rows, bytes, last write (when, by which
run), whether it is stale and which consumers are still pending for it (known from the runs on
the Prefect API; unknown when it does not answer).

The rows are built in ``flowfactory.scheduling.partition_view``; this module only prints them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from flowfactory.cli._shared import OutputFormat, api_url, app, project_of, report_errors
from flowfactory.settings import get_settings

if TYPE_CHECKING:
    from flowfactory.scheduling import PartitionRow

__all__ = ["partitions"]


@app.command()
@report_errors
def partitions(
    dataset: Annotated[
        str | None, typer.Argument(help="Dataset name (all datasets when left out).")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Show each dataset's partitions: rows, bytes, last write, stale, pending consumers."""
    settings = get_settings()
    project = project_of(settings)
    url = api_url(settings)
    # Reading partitions loads polars (~0.2 s), asking Prefect for the consumed input states
    # loads Prefect (~1.5 s): only when the verb runs.
    from flowfactory.data import DataRoot  # noqa: PLC0415
    from flowfactory.orchestration.partitions import partition_view  # noqa: PLC0415

    root = DataRoot(settings.data_root_url)
    rows = partition_view(project, root, dataset, api_url=url)
    if output is OutputFormat.json:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    if not rows:
        typer.echo("no partitions written yet")
        return
    for line in _table(rows):
        typer.echo(line)


def _table(rows: list[PartitionRow]) -> list[str]:
    """Aligned text lines: a header, then a line per partition."""
    header = ("dataset", "partition", "rows", "bytes", "written", "run", "state", "pending", "why")
    cells = [
        (
            row.dataset,
            row.partition or "(all)",
            "?" if row.rows is None else f"{row.rows:,}",
            f"{row.bytes:,}",
            row.written_at[:19] if row.written_at else "unknown",
            f"{row.pipeline} {row.flow_run[:8]}" if row.pipeline and row.flow_run else "unknown",
            row.staleness.value,
            (", ".join(row.pending) or "-") if row.pending_known else "unknown",
            "" if row.staleness.value == "fresh" else row.reason,
        )
        for row in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    ]
