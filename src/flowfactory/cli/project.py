"""Verbs about the project's pipeline files: validate them, render prefect.yaml, deploy them,
draw their lineage, and print the JSON Schema editors check them against."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flowfactory.cli._shared import (
    OutputFormat,
    app,
    print_error,
    project_of,
    report_errors,
    require_api,
    require_project,
)
from flowfactory.config import (
    DEFAULTS_FILE,
    load_pipeline,
    load_project,
    load_yaml,
    pipeline_json_schema,
)
from flowfactory.errors import ConfigError, Problem
from flowfactory.settings import Settings, get_settings

__all__ = ["GraphFormat", "deploy", "graph", "render", "schema_json", "validate"]


@app.command()
@report_errors
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Pipeline files or folders (default: deployments/)."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Check every pipeline file and the dataset graph; print one positioned error per problem."""
    settings = get_settings()
    if not paths:
        require_project(settings)
    targets = paths or [settings.deployments_dir]
    problems: list[Problem] = []
    names: list[str] = []
    for target in targets:
        try:
            if target.is_dir():
                names.extend(load_project(target, settings).names)
            else:
                names.append(_pipeline_name(target, settings))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if output is OutputFormat.json:
        typer.echo(
            json.dumps(
                {"ok": not problems, "pipelines": names, "problems": [asdict(p) for p in problems]},
                indent=2,
            )
        )
        raise typer.Exit(1 if problems else 0)
    if problems:
        raise ConfigError(problems)
    typer.echo(f"{len(names)} pipeline(s) valid: {', '.join(names)}")


def _pipeline_name(path: Path, settings: Settings) -> str:
    """The name of the pipeline in one file, read with the defaults file next to it."""
    if not path.exists():
        raise ConfigError([Problem.at_file(path, "no such file")])
    defaults_path = path.parent / DEFAULTS_FILE
    defaults = load_yaml(defaults_path) if defaults_path.exists() else None
    return load_pipeline(path, settings, defaults).name


@app.command()
@report_errors
def render(
    check: Annotated[
        bool, typer.Option("--check", help="Only compare; exit 1 when prefect.yaml is stale.")
    ] = False,
) -> None:
    """Write prefect.yaml from the pipeline files."""
    from flowfactory.deploy import render_prefect_yaml  # noqa: PLC0415 - loads Prefect (~1.5 s)

    settings = get_settings()
    text = render_prefect_yaml(project_of(settings), project_name=settings.project_name)
    target = settings.project_dir / "prefect.yaml"
    current = target.read_text() if target.exists() else None
    if check:
        if current != text:
            print_error(f"{target.name} is stale: run `flowfactory render` and commit it")
            raise typer.Exit(1)
        typer.echo(f"{target.name} is up to date")
        return
    if current == text:
        typer.echo(f"{target.name} unchanged")
        return
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    tmp.replace(target)
    typer.echo(f"wrote {target.name}")


@app.command()
@report_errors
def deploy(
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete deployments whose pipeline file is gone.")
    ] = False,
) -> None:
    """Register every pipeline as a Prefect deployment on the API in PREFECT_API_URL."""
    settings = get_settings()
    project = project_of(settings)
    url = require_api(settings)
    from flowfactory.deploy import deploy_project  # noqa: PLC0415 - loads Prefect (~1.5 s)

    report = asyncio.run(deploy_project(project, settings, prune=prune))
    for pool in report.work_pools_created:
        typer.echo(f"created work pool {pool}")
    typer.echo(
        f"deployed {len(report.deployed)} pipeline(s) to {url}: {', '.join(report.deployed)}"
    )
    for name in report.pruned:
        typer.echo(f"pruned deployment {name} (its file is gone)")


class GraphFormat(StrEnum):
    """Lineage drawing formats."""

    mermaid = "mermaid"
    dot = "dot"


@app.command()
@report_errors
def graph(
    output: Annotated[GraphFormat, typer.Option("--format")] = GraphFormat.mermaid,
) -> None:
    """Print the dataset lineage of every pipeline (Mermaid or Graphviz dot)."""
    # flowfactory.deploy loads Prefect (~1.5 s), though drawing the lineage needs none of it.
    from flowfactory.deploy import lineage, render_dot, render_mermaid  # noqa: PLC0415

    drawing = lineage(project_of(get_settings()))
    typer.echo(
        render_mermaid(drawing) if output is GraphFormat.mermaid else render_dot(drawing), nl=False
    )


@app.command("schema-json")
@report_errors
def schema_json(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of a pipeline file (for editor autocompletion)."""
    text = pipeline_json_schema()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
