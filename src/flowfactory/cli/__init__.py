"""The `flowfactory` command line: one module per group of verbs, all on one typer app.

``_shared`` holds the app, the error reporting and the checks the verbs share; ``init`` (init),
``project`` (validate, render, deploy, graph, schema-json), ``runs`` (run, emit), ``backfill``,
``partitions``, ``canary`` (canary, promote, rollback), ``schema`` (schema lock|check), ``stack``
(up, demo) and ``status`` (status, breaker open|close|reset) hold the verbs; ``status_rows``
builds what `status` shows.

Mistakes in user input print as `path:line:col: error: ...` or a one-line message, never a
traceback; usage errors exit 2. `flowfactory --help` and the verbs that need neither Prefect
nor polars do not load them: each verb imports what is slow to load when it runs.
"""

from __future__ import annotations

# Importing a verb module registers its verbs; `flowfactory --help` lists them in this order.
# isort: off
from flowfactory.cli import init, project, runs, backfill, partitions  # noqa: F401
from flowfactory.cli import canary, schema, stack, status  # noqa: F401

# isort: on
from flowfactory.cli._shared import app, main

__all__ = ["app", "main"]
