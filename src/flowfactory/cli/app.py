"""The `flowfactory` command line. Errors in user input print as `path:line:col: error: ...`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar, cast

import httpx
import typer

from flowfactory.config import Project, load_pipeline, load_project
from flowfactory.errors import ConfigError, FlowfactoryError, Problem
from flowfactory.settings import Settings, get_settings

if TYPE_CHECKING:
    from flowfactory.stack import DemoReport, LocalStack

__all__ = ["app", "main"]

app = typer.Typer(
    name="flowfactory",
    help="Config-driven data pipelines on Prefect: one YAML file per pipeline in deployments/.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

P = ParamSpec("P")
R = TypeVar("R")


class OutputFormat(StrEnum):
    """How a verb reports its results."""

    text = "text"
    json = "json"


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _report_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn flowfactory's own errors into messages and exit code 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                _err(problem.format())
            _err(f"{len(exc.problems)} problem(s) found")
            raise typer.Exit(1) from None
        except FlowfactoryError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(1) from None
        except httpx.HTTPError as exc:
            # The API went away mid-command (or answered with an error): say which, briefly.
            _err(f"error: the Prefect API failed: {type(exc).__name__}: {exc}")
            raise typer.Exit(1) from None

    return wrapper


def _project(settings: Settings) -> Project:
    return load_project(settings.deployments_dir, settings)


def _require_api(settings: Settings) -> str:
    """The Prefect API to use: PREFECT_API_URL, else the local stack's if it is up."""
    from flowfactory.orchestration import api_is_healthy  # noqa: PLC0415

    url = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url
    if not api_is_healthy(url):
        raise FlowfactoryError(
            f"no Prefect API answers at {url}; start the local stack with `make up` "
            "(or `flowfactory up`), or set PREFECT_API_URL"
        )
    os.environ["PREFECT_API_URL"] = url
    return url


# ------------------------------------------------------------------------------------------------


@app.command()
@_report_errors
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Pipeline files or folders (default: deployments/)."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Check every pipeline file and the dataset graph; print one positioned error per problem."""
    settings = get_settings()
    targets = paths or [settings.deployments_dir]
    problems: list[Problem] = []
    names: list[str] = []
    for target in targets:
        try:
            if target.is_dir():
                names.extend(_project_at(target, settings).names)
            else:
                names.append(_pipeline_at(target, settings))
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


def _project_at(folder: Path, settings: Settings) -> Project:
    return load_project(folder, settings)


def _pipeline_at(path: Path, settings: Settings) -> str:
    from flowfactory.config import DEFAULTS_FILE, load_yaml

    if not path.exists():
        raise ConfigError([Problem.at_file(path, "no such file")])
    defaults_path = path.parent / DEFAULTS_FILE
    defaults = load_yaml(defaults_path) if defaults_path.exists() else None
    return load_pipeline(path, settings, defaults).name


@app.command()
@_report_errors
def render(
    check: Annotated[
        bool, typer.Option("--check", help="Only compare; exit 1 when prefect.yaml is stale.")
    ] = False,
) -> None:
    """Write prefect.yaml from the pipeline files."""
    from flowfactory.deploy import render_prefect_yaml  # noqa: PLC0415

    settings = get_settings()
    text = render_prefect_yaml(_project(settings), project_name=settings.project_name)
    target = settings.project_dir / "prefect.yaml"
    current = target.read_text() if target.exists() else None
    if check:
        if current != text:
            _err(f"{target.name} is stale: run `flowfactory render` and commit it")
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
@_report_errors
def deploy(
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete deployments whose pipeline file is gone.")
    ] = False,
) -> None:
    """Register every pipeline as a Prefect deployment on the API in PREFECT_API_URL."""
    from flowfactory.deploy import deploy_project  # noqa: PLC0415

    settings = get_settings()
    project = _project(settings)
    url = _require_api(settings)
    report = asyncio.run(deploy_project(project, settings, prune=prune))
    for pool in report.work_pools_created:
        typer.echo(f"created work pool {pool}")
    typer.echo(
        f"deployed {len(report.deployed)} pipeline(s) to {url}: {', '.join(report.deployed)}"
    )
    for name in report.pruned:
        typer.echo(f"pruned deployment {name} (its file is gone)")


def _check_partition_option(partition: str | None) -> None:
    """A malformed --partition is a usage error (exit 2), whether or not an API is up."""
    from flowfactory.data import Partition  # noqa: PLC0415

    if partition is not None:
        try:
            Partition.parse(partition)
        except ValueError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(2) from None


@app.command()
@_report_errors
def run(
    name: Annotated[str, typer.Argument(help="Pipeline name.")],
    partition: Annotated[
        str | None, typer.Option(help="One partition, e.g. year=2013/month=1.")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            help="v1 (the transform) or v2 (the canary candidate); default: the live one."
        ),
    ] = None,
) -> None:
    """Run one pipeline now, in this process, tracked by the Prefect API."""
    from flowfactory.canary import parse_version, version_pipeline
    from flowfactory.config import find_pipeline
    from flowfactory.data import DataRoot, Partition, check_plan, resolve_transform

    _check_partition_option(partition)
    settings = get_settings()
    found = find_pipeline(name, settings)
    if version is not None:
        try:
            # Checked before any API call: a wrong version is a usage error (exit 2).
            found = version_pipeline(found, parse_version(version))
        except FlowfactoryError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(2) from None
    _require_api(settings)
    from prefect.client.schemas.objects import State  # noqa: PLC0415
    from prefect.flows import Flow, load_flow_from_entrypoint  # noqa: PLC0415

    from flowfactory.orchestration import PIPELINE_ENTRYPOINT  # noqa: PLC0415

    # Config mistakes (including SQL over missing columns) surface here, positioned.
    check_plan(
        found,
        DataRoot(settings.data_root_url),
        Partition.parse(partition) if partition else None,
        resolve_transform(found, settings),
    )
    pipeline_flow: Flow[..., Any] = load_flow_from_entrypoint(
        str(settings.project_dir / PIPELINE_ENTRYPOINT)
    )
    # Flow.__call__'s overloads do not cover return_state=True.
    state = cast("State[Any]", pipeline_flow(name, partition, None, version, return_state=True))
    if not state.is_completed():
        _err(f"error: run of {name} ended {state.name}: {state.message or ''}".rstrip(": "))
        raise typer.Exit(1)
    typer.echo(f"{name}: {state.name}")


@app.command()
@_report_errors
def emit(
    dataset: Annotated[str, typer.Argument(help="The dataset that was updated.")],
    partition: Annotated[
        str, typer.Option(help="The partition that landed, e.g. year=2013/month=1.")
    ] = "",
) -> None:
    """Tell the system a dataset was updated outside flowfactory; starts ready consumers."""
    from flowfactory.data import DataRoot  # noqa: PLC0415
    from flowfactory.scheduling import check_dataset  # noqa: PLC0415

    settings = get_settings()
    project = _project(settings)
    try:
        check_dataset(project, dataset, partition)
    except FlowfactoryError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2) from None
    url = _require_api(settings)
    # Prefect reads PREFECT_API_URL once, on import: only import it once _require_api set it.
    from prefect.events.worker import EventsWorker  # noqa: PLC0415

    from flowfactory.orchestration import announce_update  # noqa: PLC0415

    ready = announce_update(
        project,
        DataRoot(settings.data_root_url),
        dataset,
        partition,
        {"source": "flowfactory emit"},
    )
    EventsWorker.drain_all(timeout=30)  # events are sent in the background; wait for them
    where = f" partition {partition}" if partition else ""
    typer.echo(f"announced dataset.updated for {dataset}{where} to {url}")
    for state in ready:
        scope = f"[{state.partition}]" if state.partition else ""
        typer.echo(f"inputs ready: {state.pipeline}{scope}")


@app.command()
@_report_errors
def canary(
    name: Annotated[str, typer.Argument(help="Pipeline name.")],
    partition: Annotated[
        str | None, typer.Option(help="Sample one partition only, e.g. year=2013/month=1.")
    ] = None,
) -> None:
    """Run v1 and candidate v2 of a pipeline on a sample, diff them, promote v2 if they agree."""
    from flowfactory.orchestration import run_canary_now  # noqa: PLC0415

    _check_partition_option(partition)
    settings = get_settings()
    _require_api(settings)
    promoted, text = run_canary_now(name, partition, settings)
    typer.echo(text)
    if not promoted:
        raise typer.Exit(1)


def _change_live(name: str, version: str, by: str) -> None:
    from flowfactory.orchestration import change_live_version  # noqa: PLC0415

    if version not in ("v1", "v2"):
        _err(f"error: unknown version {version!r}: use v1 (the transform) or v2 (the candidate)")
        raise typer.Exit(2)
    before, after, sent = change_live_version(name, version, get_settings(), by=by)
    change = "unchanged" if before.version == after.version else f"was {before.version}"
    typer.echo(f"{name}: {after.version} is live ({change})")
    if not sent:
        typer.echo("note: no Prefect API answered; the change holds, but no event was sent")


@app.command()
@_report_errors
def promote(
    name: Annotated[str, typer.Argument(help="Pipeline name.")],
    version: Annotated[str, typer.Argument(help="v1 (the transform) or v2 (the candidate).")],
) -> None:
    """Make a version of a pipeline live for production runs, without a redeploy."""
    _change_live(name, version, "flowfactory promote")


@app.command()
@_report_errors
def rollback(name: Annotated[str, typer.Argument(help="Pipeline name.")]) -> None:
    """Return a pipeline's production runs to v1 (its `transform:`)."""
    _change_live(name, "v1", "flowfactory rollback")


class GraphFormat(StrEnum):
    """Lineage drawing formats."""

    mermaid = "mermaid"
    dot = "dot"


@app.command()
@_report_errors
def graph(
    output: Annotated[GraphFormat, typer.Option("--format")] = GraphFormat.mermaid,
) -> None:
    """Print the dataset lineage of every pipeline (Mermaid or Graphviz dot)."""
    from flowfactory.deploy import lineage, render_dot, render_mermaid

    drawing = lineage(_project(get_settings()))
    typer.echo(
        render_mermaid(drawing) if output is GraphFormat.mermaid else render_dot(drawing), nl=False
    )


@app.command("schema-json")
def schema_json(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of a pipeline file (for editor autocompletion)."""
    from flowfactory.config import PipelineConfig  # noqa: PLC0415

    text = json.dumps(PipelineConfig.model_json_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


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


def _known_names(project: Project, names: list[str] | None) -> None:
    """An unknown pipeline or dataset name is a usage error (exit 2)."""
    from flowfactory.schema import unknown_names  # noqa: PLC0415

    unknown = unknown_names(project, names or [])
    if unknown:
        _err(
            f"error: no pipeline or dataset named {', '.join(map(repr, unknown))}; "
            f"the pipelines are {', '.join(project.names)}"
        )
        raise typer.Exit(2)


@schema_app.command("lock")
@_report_errors
def schema_lock(
    names: Annotated[
        list[str] | None, typer.Argument(help="Pipelines or datasets (default: all).")
    ] = None,
) -> None:
    """Write contracts/<dataset>.json from each output schema, derived without reading data."""
    from flowfactory.schema import lock_project  # noqa: PLC0415

    settings = get_settings()
    project = _project(settings)
    _known_names(project, names)
    report = lock_project(project, settings, names)
    if report.text():
        typer.echo(report.text())
    if not report.ok:
        raise typer.Exit(1)


@schema_app.command("check")
@_report_errors
def schema_check(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Pipelines or datasets (default: all); their downstream too."),
    ] = None,
    output: Annotated[SchemaFormat, typer.Option("--format")] = SchemaFormat.text,
) -> None:
    """Re-derive every output schema and judge its changes; exit 1 on a breaking change."""
    from flowfactory.schema import check_project  # noqa: PLC0415

    settings = get_settings()
    project = _project(settings)
    _known_names(project, names)
    report = check_project(project, settings, names)
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


def _announce_month(month: int) -> None:
    typer.echo(f"landed 2013-{month:02d}; running the pipelines for it")


def _months(value: str) -> list[int]:
    if "-" in value:
        first, last = (int(v) for v in value.split("-", 1))
        months = list(range(first, last + 1))
    else:
        months = list(range(1, int(value) + 1))
    if not months or not all(1 <= m <= 12 for m in months):
        raise typer.BadParameter("months are 1..12: give N or FIRST-LAST")
    return months


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so that the stack's processes are stopped, not orphaned."""

    def interrupt(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler shape
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _start_stack(stack: LocalStack, project: Project) -> None:
    """Server, deployments and one worker per work pool; the client points at the stack."""
    _stop_on_sigterm()
    from flowfactory.deploy import deploy_project  # noqa: PLC0415

    settings = stack.settings
    typer.echo(f"starting the Prefect server on {settings.ui_url} (state in {settings.state_path})")
    stack.start_server()
    os.environ.update(stack.env())
    if settings.breaker_redis_url is None:
        redis_url = stack.start_redis()
        if redis_url is not None:
            os.environ["FLOWFACTORY_BREAKER_REDIS_URL"] = redis_url
            typer.echo(
                f"circuit breaker state is shared through {redis_url}; to see and control it "
                f"from another shell: export FLOWFACTORY_BREAKER_REDIS_URL={redis_url}"
            )
    report = asyncio.run(deploy_project(project, settings, prune=True))
    typer.echo(f"deployed {len(report.deployed)} deployment(s): {', '.join(report.deployed)}")
    for pool in sorted({p.config.work_pool for p in project.pipelines}):
        stack.start_worker(pool)
    _serve_demo_api(project, settings)
    from flowfactory.orchestration import reconcile_project  # noqa: PLC0415

    # Updates that landed while the stack was down have no event; derive them from the data.
    missed = reconcile_project(settings)
    if missed:
        typer.echo(f"picked up updates that landed while stopped: {', '.join(missed)}")


def _serve_demo_api(project: Project, settings: Settings) -> None:
    """Start the demo's airports API (for as long as this command runs) if a pipeline reads it."""
    from flowfactory.config import HttpSource  # noqa: PLC0415
    from flowfactory.stack import BLOCK_NAME, DOWN_FLAG, AirportsApi

    if not any(
        isinstance(s, HttpSource) and s.http.block == BLOCK_NAME
        for p in project.pipelines
        for s in p.config.inputs.values()
    ):
        return
    flag = settings.state_path / DOWN_FLAG
    flag.unlink(missing_ok=True)
    api = AirportsApi(down_flag=flag).start()
    api.save_block()
    typer.echo(f"demo airports API at {api.url} (block {BLOCK_NAME}; `touch {flag}` takes it down)")


def _replay(project: Project, settings: Settings, months: list[int]) -> DemoReport:
    from flowfactory.stack import run_scenario  # noqa: PLC0415

    result = asyncio.run(run_scenario(project, settings, months, on_month=_announce_month))
    typer.echo(result.text())
    return result


@app.command()
@_report_errors
def up(
    months: Annotated[
        str, typer.Option(help="Months of 2013 to replay: N (1..N) or FIRST-LAST.")
    ] = "12",
    replay: Annotated[bool, typer.Option(help="Replay the demo data after deploying.")] = True,
) -> None:
    """Start the local stack (Prefect server, deployments, workers, demo replay) until Ctrl-C."""
    from flowfactory.stack import LocalStack  # noqa: PLC0415

    settings = get_settings()
    project = _project(settings)
    replay_months = _months(months)
    with LocalStack(settings) as stack:
        try:
            _start_stack(stack, project)
            typer.echo(f"Prefect UI: {settings.ui_url}  (Ctrl-C stops everything)")
            if replay:
                _replay(project, settings, replay_months)
            typer.echo(f"serving; the UI is at {settings.ui_url} (Ctrl-C stops everything)")
            while True:
                stack.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            typer.echo("stopping ...")
    typer.echo("stopped")


@app.command()
@_report_errors
def demo(
    months: Annotated[
        str, typer.Option(help="Months of 2013 to replay: N (1..N) or FIRST-LAST.")
    ] = "2",
) -> None:
    """Run the demo scenario once on the local stack, print a summary, and exit."""
    from flowfactory.stack import LocalStack  # noqa: PLC0415

    settings = get_settings()
    project = _project(settings)
    replay_months = _months(months)
    with LocalStack(settings) as stack:
        _start_stack(stack, project)
        result = _replay(project, settings, replay_months)
    if not result.ok:
        raise typer.Exit(1)
    typer.echo("demo scenario held: every pipeline produced its output")


# ------------------------------------------------------------------------------------------------
# Status and circuit breakers

breaker_app = typer.Typer(
    help="Force a dependency's circuit breaker open or closed, or reset it, for every worker "
    "(needs FLOWFACTORY_BREAKER_REDIS_URL).",
    no_args_is_help=True,
)
app.add_typer(breaker_app, name="breaker")


@app.command()
@_report_errors
def status(
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Show live versions, breaker states and the last update of each dataset."""
    from flowfactory.cli.status_rows import status_rows  # noqa: PLC0415
    from flowfactory.data import DataRoot  # noqa: PLC0415

    settings = get_settings()
    try:
        project: Project | None = _project(settings)
    except ConfigError:
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


def _force(dependency: str, verb: str) -> None:
    from flowfactory.breaker import Override, registry  # noqa: PLC0415

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
@_report_errors
def breaker_open(dependency: Annotated[str, typer.Argument(help="The dependency's name.")]) -> None:
    """Reject every call to DEPENDENCY on every worker until `close` or `reset`."""
    _force(dependency, "open")


@breaker_app.command("close")
@_report_errors
def breaker_close(
    dependency: Annotated[str, typer.Argument(help="The dependency's name.")],
) -> None:
    """Let every call to DEPENDENCY through on every worker until `reset`."""
    _force(dependency, "close")


@breaker_app.command("reset")
@_report_errors
def breaker_reset(
    dependency: Annotated[str, typer.Argument(help="The dependency's name.")],
) -> None:
    """Lift any forced state and forget failures: closed, counting afresh."""
    _force(dependency, "reset")


def main() -> None:
    """Console-script entry point."""
    # Prefect reads PREFECT_API_URL once, when it is first imported, and without it starts a
    # temporary server of its own: name the API before any verb imports Prefect.
    with contextlib.suppress(ValueError):  # invalid settings: the verb that needs them says so
        os.environ.setdefault("PREFECT_API_URL", get_settings().prefect_api_url)
    app()
