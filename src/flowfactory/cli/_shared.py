"""What the verb modules share: the typer app they register on, the error reporting that keeps
user mistakes free of tracebacks, the checks several verbs make, and the entry point.

This module is imported by every verb module, so `flowfactory --help` loads it: it must stay free
of Prefect, polars and httpx, each of which costs measurable start-up time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Annotated, ParamSpec, TypeVar

import typer

from flowfactory.config import Project, load_project
from flowfactory.errors import ConfigError, FlowfactoryError, NotAProjectError, UsageError
from flowfactory.settings import Settings, get_settings

__all__ = [
    "OutputFormat",
    "PipelineName",
    "app",
    "check_partition",
    "main",
    "print_error",
    "project_of",
    "report_errors",
    "require_api",
    "require_project",
]

app = typer.Typer(
    name="flowfactory",
    help="Config-driven data pipelines on Prefect: one YAML file per pipeline in deployments/.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

P = ParamSpec("P")
R = TypeVar("R")

PipelineName = Annotated[str, typer.Argument(help="Pipeline name.")]


class OutputFormat(StrEnum):
    """How a verb reports its results."""

    text = "text"
    json = "json"


def print_error(message: str) -> None:
    """One line on stderr."""
    typer.echo(message, err=True)


def _http_errors() -> tuple[type[Exception], ...]:
    """httpx's error class once a verb has loaded httpx; before that, none can have been raised.

    Looked up rather than imported: httpx takes about 0.1 s to import, which every verb would pay.
    """
    httpx = sys.modules.get("httpx")
    return () if httpx is None else (httpx.HTTPError,)


def report_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn flowfactory's own errors into messages, never a traceback.

    A usage error is one ``error: ...`` line and exit code 2; a config error one positioned line
    per problem and exit code 1; any other flowfactory error or a failed Prefect API call one
    line and exit code 1.
    """

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                print_error(problem.format())
            print_error(f"{len(exc.problems)} problem(s) found")
            raise typer.Exit(1) from None
        except UsageError as exc:
            print_error(f"error: {exc}")
            raise typer.Exit(2) from None
        except FlowfactoryError as exc:
            print_error(f"error: {exc}")
            raise typer.Exit(1) from None
        except _http_errors() as exc:
            # The API went away mid-command (or answered with an error): say which, briefly.
            print_error(f"error: the Prefect API failed: {type(exc).__name__}: {exc}")
            raise typer.Exit(1) from None

    return wrapper


def require_project(settings: Settings) -> None:
    """A verb that works on a project, run outside one, says how to get one."""
    if not settings.deployments_dir.is_dir():
        raise NotAProjectError(
            f"{settings.project_dir} is not a flowfactory project (it has no deployments/ "
            "folder): run `flowfactory init` to start one here, or cd into a project"
        )


def project_of(settings: Settings) -> Project:
    """The project in the settings' deployments/ folder, validated."""
    require_project(settings)
    return load_project(settings.deployments_dir, settings)


def check_partition(partition: str | None) -> None:
    """A malformed --partition is a usage error, raised before any API is asked."""
    if partition is None:
        return
    from flowfactory.data import Partition  # noqa: PLC0415 - loads polars (~0.2 s)

    try:
        Partition.parse(partition)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def api_url(settings: Settings) -> str:
    """The Prefect API to use: PREFECT_API_URL, else the local stack's; named for Prefect.

    Call it before importing ``flowfactory.orchestration`` or Prefect: Prefect reads
    PREFECT_API_URL once, when it is first imported.
    """
    url = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url
    os.environ["PREFECT_API_URL"] = url
    return url


def require_api(settings: Settings) -> str:
    """The Prefect API to use (see ``api_url``), which must answer."""
    url = api_url(settings)
    from flowfactory.orchestration import api_is_healthy  # noqa: PLC0415 - loads httpx

    if not api_is_healthy(url):
        raise FlowfactoryError(
            f"no Prefect API answers at {url}; start the local stack with `make up` "
            "(or `flowfactory up`), or set PREFECT_API_URL"
        )
    return url


def main() -> None:
    """Console-script entry point."""
    # Prefect reads PREFECT_API_URL once, when it is first imported, and without it starts a
    # temporary server of its own: name the API before any verb imports Prefect.
    named = "PREFECT_API_URL" in os.environ
    with contextlib.suppress(ValueError):  # invalid settings: the verb that needs them says so
        os.environ.setdefault("PREFECT_API_URL", get_settings().prefect_api_url)
    if not named and "PREFECT_API_URL" in os.environ and "prefect.context" in sys.modules:
        # Prefect read its settings before the API was named (in a fork of the warm executor).
        from prefect.context import refresh_global_settings_context  # noqa: PLC0415

        refresh_global_settings_context()
    app()
