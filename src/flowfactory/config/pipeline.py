"""The whole pipeline file: one model over the sections of models.py, canary.py and schema.py."""

from __future__ import annotations

import json
from typing import Final

from pydantic import ConfigDict, Field, model_validator

from flowfactory.config.base import Model, Name
from flowfactory.config.canary import CanaryConfig
from flowfactory.config.models import (
    CircuitBreakerConfig,
    DatasetSource,
    Destination,
    FileSource,
    HttpSource,
    Retries,
    Schedule,
    Sla,
    Source,
    Transform,
    Trigger,
)
from flowfactory.config.schema import SchemaConfig
from flowfactory.errors import FieldValueError

__all__ = ["SINGLE_SOURCE_NAME", "PipelineConfig", "pipeline_json_schema"]

# --------------------------------------------------------------------------------------------
# The pipeline file

SINGLE_SOURCE_NAME: Final = "source"


class PipelineConfig(Model):
    """One pipeline: where its data comes from, what is done to it, where it goes, and when."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "flowfactory pipeline file"},
    )

    name: Name = Field(description="Unique; the Prefect deployment name.")
    description: str = ""
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: Source | None = Field(
        default=None, description=f"A single input, a table named `{SINGLE_SOURCE_NAME}`."
    )
    sources: dict[Name, Source] | None = Field(
        default=None, description="Named inputs; each is a table under its name."
    )
    transform: Transform | None = Field(
        default=None, description="Left out: the single source is written as it is."
    )
    destination: Destination
    schedule: Schedule | None = Field(
        default=None, description="With a trigger too, runs come from data OR time."
    )
    trigger: Trigger | None = None
    sla: Sla | None = None
    retries: Retries = Field(default_factory=Retries)
    circuit_breaker: CircuitBreakerConfig = Field(
        default_factory=CircuitBreakerConfig,
        description="Breakers of the external dependencies this pipeline touches.",
    )
    work_pool: str = Field(
        default="flowfactory", min_length=1, description="Prefect work pool for the runs."
    )
    # `schema` would shadow a BaseModel attribute, hence the alias.
    schema_: SchemaConfig | None = Field(
        default=None,
        alias="schema",
        description="The output contract and its compatibility mode (see flowfactory schema).",
    )
    canary: CanaryConfig | None = Field(
        default=None, description="A candidate transform, checked by `flowfactory canary`."
    )

    @model_validator(mode="after")
    def _inputs(self) -> PipelineConfig:
        if (self.source is None) == (self.sources is None):
            raise FieldValueError(
                ("sources",) if self.sources is not None else (),
                "a pipeline needs exactly one of `source:` or `sources:`",
            )
        if self.sources is not None and not self.sources:
            raise FieldValueError(("sources",), "`sources:` is empty")
        if self.transform is None and len(self.inputs) != 1:
            raise FieldValueError(
                ("sources",), "a pipeline with several sources needs a `transform:`"
            )
        if self.trigger is not None:
            known = set(self.input_dataset_names)
            unknown = [name for name in self.trigger.on if name not in known]
            if unknown:
                what = "which is not an input" if len(unknown) == 1 else "which are not inputs"
                raise FieldValueError(
                    ("trigger", "on", self.trigger.on.index(unknown[0])),
                    f"trigger.on names {', '.join(map(repr, unknown))}, {what}; "
                    f"the inputs are {', '.join(map(repr, sorted(known))) or 'none'} "
                    "(name a file source with external_dataset: to trigger on it)",
                )
        return self

    @property
    def inputs(self) -> dict[str, DatasetSource | FileSource | HttpSource]:
        """Every source under its table name."""
        if self.source is not None:
            return {SINGLE_SOURCE_NAME: self.source}
        return dict(self.sources or {})

    @property
    def input_dataset_names(self) -> dict[str, str]:
        """Dataset name -> table name, for dataset sources and named file sources."""
        names: dict[str, str] = {}
        for table, source in self.inputs.items():
            if isinstance(source, DatasetSource):
                names[source.dataset] = table
            elif isinstance(source, FileSource) and source.external_dataset is not None:
                names[source.external_dataset] = table
        return names

    @property
    def input_datasets(self) -> list[DatasetSource]:
        """The dataset sources, in file order."""
        return [s for s in self.inputs.values() if isinstance(s, DatasetSource)]


def pipeline_json_schema() -> str:
    """The JSON Schema of a pipeline file, as deployments/pipeline.schema.json holds it."""
    return json.dumps(PipelineConfig.model_json_schema(), indent=2, sort_keys=True) + "\n"
