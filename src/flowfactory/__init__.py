"""flowfactory: config-driven, data-aware pipelines on Prefect 3.

The package root re-exports the typed library (config models, loader, datasets, errors). The
capability packages below it (config, data, scheduling, breaker, canary, schema) never import
Prefect; the layers that do (orchestration, deploy, stack, cli) are imported from their packages.
"""

from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from flowfactory.config import (
    CsvOptions,
    DatasetSource,
    Destination,
    FileSource,
    PipelineConfig,
    PipelineFile,
    Project,
    PythonTransform,
    Retries,
    Schedule,
    SqlTransform,
    load_pipeline,
    load_project,
)
from flowfactory.errors import (
    ConfigError,
    FlowfactoryError,
    PipelineRunError,
    Problem,
    StackError,
    UsageError,
    WriteError,
)
from flowfactory.settings import Settings, get_settings

if TYPE_CHECKING:
    from flowfactory.data import DataRoot, Partition, WrittenPartition

__version__ = _version("flowfactory")

__all__ = [
    "ConfigError",
    "CsvOptions",
    "DataRoot",
    "DatasetSource",
    "Destination",
    "FileSource",
    "FlowfactoryError",
    "Partition",
    "PipelineConfig",
    "PipelineFile",
    "PipelineRunError",
    "Problem",
    "Project",
    "PythonTransform",
    "Retries",
    "Schedule",
    "Settings",
    "SqlTransform",
    "StackError",
    "UsageError",
    "WriteError",
    "WrittenPartition",
    "__version__",
    "get_settings",
    "load_pipeline",
    "load_project",
]

# flowfactory.data loads polars (~0.2 s): imported on first use, so that `import flowfactory`
# (and with it `flowfactory --help` and `flowfactory validate`) does not pay for it.
_FROM_DATA = frozenset({"DataRoot", "Partition", "WrittenPartition"})


def __getattr__(name: str) -> object:
    """The names re-exported from flowfactory.data, imported when first asked for."""
    if name not in _FROM_DATA:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from flowfactory import data  # noqa: PLC0415 - see _FROM_DATA

    value: object = getattr(data, name)
    globals()[name] = value
    return value
