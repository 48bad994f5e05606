"""flowfactory: config-driven, data-aware pipelines on Prefect 3.

The package root re-exports the typed library (config models, loader, datasets, errors). The
capability packages below it (config, data, scheduling, breaker, canary, schema) never import
Prefect; the layers that do (orchestration, deploy, stack, cli) are imported from their packages.
"""

from typing import TYPE_CHECKING

from flowfactory._lazy import lazy_exports

if TYPE_CHECKING:
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

    __version__: str

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

# Every re-export is imported on first use: `import flowfactory` (which the `flowfactory`
# command and the warm executor's launcher pay for before anything else) loads nothing, and
# flowfactory.data loads polars (~0.2 s) only for the names that need it.
_HOMES = {
    **dict.fromkeys(
        (
            "CsvOptions",
            "DatasetSource",
            "Destination",
            "FileSource",
            "PipelineConfig",
            "PipelineFile",
            "Project",
            "PythonTransform",
            "Retries",
            "Schedule",
            "SqlTransform",
            "load_pipeline",
            "load_project",
        ),
        "config",
    ),
    **dict.fromkeys(("DataRoot", "Partition", "WrittenPartition"), "data"),
    **dict.fromkeys(
        (
            "ConfigError",
            "FlowfactoryError",
            "PipelineRunError",
            "Problem",
            "StackError",
            "UsageError",
            "WriteError",
        ),
        "errors",
    ),
    **dict.fromkeys(("Settings", "get_settings"), "settings"),
}
_exports = lazy_exports(__name__, _HOMES)


def __getattr__(name: str) -> object:
    """A re-exported name, or the installed version, looked up when first asked for."""
    if name != "__version__":
        return _exports(name)
    from importlib.metadata import version  # noqa: PLC0415 - only when asked for

    globals()[name] = value = version("flowfactory")
    return value
