"""The `flowfactory` command line, one module per group of verbs. Mistakes in user input print as
`path:line:col: error: ...` or a one-line message, never a traceback; usage errors exit 2.
"""

from __future__ import annotations

from flowfactory.cli.app import (
    app,
    main,
)
from flowfactory.cli.status_rows import (
    StatusRow,
    breaker_rows,
    dataset_rows,
    project_dependencies,
    status_rows,
    version_rows,
)

__all__ = [
    "StatusRow",
    "app",
    "breaker_rows",
    "dataset_rows",
    "main",
    "project_dependencies",
    "status_rows",
    "version_rows",
]
