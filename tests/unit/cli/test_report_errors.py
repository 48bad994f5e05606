"""How the command line reports errors: each kind maps to its message and exit code."""

from __future__ import annotations

import httpx
import pytest
import typer
from typer.testing import CliRunner

from flowfactory.cli._shared import report_errors
from flowfactory.errors import (
    CanaryError,
    ConfigError,
    Problem,
    UnknownVersionError,
    UsageError,
)


@pytest.mark.parametrize(
    ("error", "exit_code", "stderr"),
    [
        (UsageError("no dataset named 'x'"), 2, "error: no dataset named 'x'\n"),
        (UnknownVersionError("unknown version 'v3'"), 2, "error: unknown version 'v3'\n"),
        (CanaryError("promotion refused"), 1, "error: promotion refused\n"),
        (
            ConfigError([Problem("deployments/a.yaml", 2, 5, "bad value", "schedule.cron")]),
            1,
            "deployments/a.yaml:2:5: error: schedule.cron: bad value\n1 problem(s) found\n",
        ),
        (
            httpx.ConnectError("connection refused"),
            1,
            "error: the Prefect API failed: ConnectError: connection refused\n",
        ),
    ],
    ids=["usage", "unknown-version", "flowfactory", "config", "http"],
)
def test_each_error_is_one_message_and_its_exit_code(
    error: Exception, exit_code: int, stderr: str
) -> None:
    """A verb's error becomes its message on stderr and an exit code, never a traceback."""
    probe = typer.Typer()

    @probe.command()
    @report_errors
    def fail() -> None:
        raise error

    result = CliRunner().invoke(probe, [])
    assert (result.exit_code, result.stdout, result.stderr) == (exit_code, "", stderr)
    assert isinstance(result.exception, SystemExit)  # reported, not escaped


def test_other_errors_are_not_swallowed() -> None:
    """A bug (an error flowfactory does not raise on purpose) keeps its traceback."""
    probe = typer.Typer()

    @probe.command()
    @report_errors
    def fail() -> None:
        raise KeyError("bug")

    result = CliRunner().invoke(probe, [])
    assert isinstance(result.exception, KeyError)
