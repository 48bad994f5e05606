"""The pipeline file: its pydantic models, safe positioned YAML loading, and the checks of a
whole project (unique names, one producer per dataset, no cycles).

Everything here is validated once at load time and typed from then on. Lowest layer: it imports
nothing else of flowfactory but errors and settings.
"""

from __future__ import annotations

from flowfactory.config.base import (
    NAME_PATTERN,
    ColumnName,
    Duration,
    Model,
    Name,
    duplicates,
    parse_duration,
)
from flowfactory.config.canary import (
    CanaryConfig,
    CanarySample,
    CanaryTolerance,
    ColumnTolerance,
)
from flowfactory.config.loader import (
    DEFAULTS_FILE,
    PipelineFile,
    display_path,
    find_pipeline,
    load_defaults,
    load_pipeline,
    pipeline_paths,
)
from flowfactory.config.models import (
    SOURCE_KINDS,
    TRANSFORM_KINDS,
    CircuitBreakerConfig,
    CsvOptions,
    DatasetSource,
    Deadline,
    Destination,
    FileSource,
    HttpEndpoint,
    HttpSource,
    PythonTransform,
    Retries,
    Schedule,
    Sla,
    Source,
    SqlTransform,
    Transform,
    Trigger,
)
from flowfactory.config.pipeline import (
    SINGLE_SOURCE_NAME,
    PipelineConfig,
    pipeline_json_schema,
)
from flowfactory.config.problems import (
    problems_from_validation,
)
from flowfactory.config.project import (
    Project,
    load_project,
)
from flowfactory.config.schema import (
    CONTRACTS_DIR,
    Compatibility,
    SchemaConfig,
)
from flowfactory.config.yaml import (
    MAX_FILE_BYTES,
    FieldPath,
    Mark,
    YamlDocument,
    format_field_path,
    load_yaml,
)

__all__ = [
    "CONTRACTS_DIR",
    "DEFAULTS_FILE",
    "MAX_FILE_BYTES",
    "NAME_PATTERN",
    "SINGLE_SOURCE_NAME",
    "SOURCE_KINDS",
    "TRANSFORM_KINDS",
    "CanaryConfig",
    "CanarySample",
    "CanaryTolerance",
    "CircuitBreakerConfig",
    "ColumnName",
    "ColumnTolerance",
    "Compatibility",
    "CsvOptions",
    "DatasetSource",
    "Deadline",
    "Destination",
    "Duration",
    "FieldPath",
    "FileSource",
    "HttpEndpoint",
    "HttpSource",
    "Mark",
    "Model",
    "Name",
    "PipelineConfig",
    "PipelineFile",
    "Project",
    "PythonTransform",
    "Retries",
    "Schedule",
    "SchemaConfig",
    "Sla",
    "Source",
    "SqlTransform",
    "Transform",
    "Trigger",
    "YamlDocument",
    "display_path",
    "duplicates",
    "find_pipeline",
    "format_field_path",
    "load_defaults",
    "load_pipeline",
    "load_project",
    "load_yaml",
    "parse_duration",
    "pipeline_json_schema",
    "pipeline_paths",
    "problems_from_validation",
]
