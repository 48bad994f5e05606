"""flowfactory: config-driven, data-aware pipelines on Prefect 3.

The package root re-exports the typed library (config models, loader, datasets, errors). The
capability packages below it (config, data, scheduling, breaker, canary, schema) never import
Prefect; the layers that do (orchestration, deploy, stack, cli) are imported from their packages.
"""

from importlib.metadata import version as _version

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
from flowfactory.data import DataRoot, Partition, WrittenPartition
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
