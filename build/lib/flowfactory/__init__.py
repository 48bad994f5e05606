"""flowfactory: config-driven, data-aware pipelines on Prefect 3.

The package root re-exports the typed library (config models, loader, datasets, errors). The
Prefect-facing parts (tasks, deploy, stack) import Prefect and are imported from their modules.
"""

from importlib.metadata import version as _version

from flowfactory.config import (
    CsvOptions,
    DatasetSource,
    Destination,
    FileSource,
    PipelineConfig,
    PythonTransform,
    Retries,
    Schedule,
    SqlTransform,
)
from flowfactory.datasets import DataRoot, Partition, WrittenPartition
from flowfactory.errors import (
    ConfigError,
    FlowfactoryError,
    PipelineRunError,
    Problem,
    StackError,
    WriteError,
)
from flowfactory.loader import PipelineFile, Project, load_pipeline, load_project
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
    "WriteError",
    "WrittenPartition",
    "__version__",
    "get_settings",
    "load_pipeline",
    "load_project",
]
