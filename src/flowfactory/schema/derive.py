"""Derive every pipeline's output schema statically, in graph order, and say where contracts live.

Nothing here reads data. Each pipeline's transform runs over *empty* LazyFrames that carry its
inputs' schemas, and ``collect_schema()`` resolves the plan without computing it. The inputs'
schemas come from the graph, in topological order: a dataset produced by another pipeline has
the schema just derived for it (so an upstream change reaches every downstream pipeline), and an
input nobody in the project produces (files, external datasets, HTTP APIs) has the schema of its
locked *input contract*.

This module owns the paths of output and input contracts, the table schema a pipeline declares
for its output, and `SchemaGraph`, which the project-wide check and the lock both walk.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from flowfactory.config import (
    DatasetSource,
    FileSource,
    HttpSource,
    PipelineFile,
    Project,
    SchemaConfig,
)
from flowfactory.config.schema import CONTRACTS_DIR
from flowfactory.data import TransformFn, apply_transform, resolve_transform
from flowfactory.errors import ConfigError, ContractError, PipelineRunError, SchemaDerivationError
from flowfactory.schema.contracts import Contract, TableSchema, read_contract
from flowfactory.settings import Settings

__all__ = [
    "SchemaGraph",
    "contract_path",
    "input_contract_path",
    "locked_input_schemas",
    "not_null_problem",
    "output_table_schema",
    "project_relative",
    "schema_config",
]

_NO_SCHEMA: Final = SchemaConfig()


def schema_config(pipeline: PipelineFile) -> SchemaConfig:
    """The pipeline's `schema:` section, or the defaults when it has none."""
    return pipeline.config.schema_ or _NO_SCHEMA


def _contract_file(settings: Settings, name: str) -> Path:
    """``contracts/<name>.json`` in the project: where a contract lives by default."""
    return settings.project_dir / CONTRACTS_DIR / f"{name}.json"


def contract_path(pipeline: PipelineFile, settings: Settings) -> Path:
    """Where the pipeline's output contract lives."""
    relative = schema_config(pipeline).contract
    if relative is None:
        return _contract_file(settings, pipeline.config.destination.dataset)
    return settings.project_dir / relative


def input_contract_path(
    pipeline: PipelineFile,
    table: str,
    source: DatasetSource | FileSource | HttpSource,
    settings: Settings,
) -> Path:
    """Where the contract of an input that no pipeline of the project produces lives.

    Named inputs (external datasets, files with ``external_dataset:``) are shared by every
    reader; anonymous files and HTTP APIs belong to the one pipeline, as
    ``<pipeline>.<table>.json`` (a dot never occurs in a dataset name, so the two cannot collide).
    """
    if isinstance(source, DatasetSource):
        name = source.dataset
    elif isinstance(source, FileSource) and source.external_dataset is not None:
        name = source.external_dataset
    else:
        name = f"{pipeline.name}.{table}"
    return _contract_file(settings, name)


def project_relative(path: Path, settings: Settings) -> str:
    """A contract's path as reports show it: relative to the project when inside it."""
    try:
        return str(path.relative_to(settings.project_dir))
    except ValueError:
        return str(path)


def output_table_schema(pipeline: PipelineFile, schema: pl.Schema) -> TableSchema:
    """The table schema a pipeline declares for output of this polars schema."""
    config = schema_config(pipeline)
    return TableSchema.of(
        schema,
        not_null=config.not_null,
        key=pipeline.config.destination.key,
        key_unique=config.unique_key,
    )


def not_null_problem(pipeline: PipelineFile, schema: pl.Schema) -> str | None:
    """Why the pipeline's `schema.not_null` cannot hold for this output, if it cannot."""
    missing = [c for c in schema_config(pipeline).not_null if c not in schema]
    if not missing:
        return None
    return f"schema.not_null names {', '.join(missing)}, which the output does not have"


def locked_input_schemas(pipeline: PipelineFile, settings: Settings) -> dict[str, pl.Schema]:
    """The schema of each input that has a locked contract, from the pipeline file alone.

    A dataset input's contract is ``contracts/<dataset>.json``, where its producer locks it
    unless the producer names another file in its `schema.contract`.
    """
    schemas: dict[str, pl.Schema] = {}
    for table, source in pipeline.config.inputs.items():
        contract = read_contract(input_contract_path(pipeline, table, source, settings))
        if contract is not None:
            schemas[table] = contract.polars_schema()
    return schemas


def _first_line(exc: BaseException, default: str) -> str:
    return (str(exc).strip().splitlines() or [default])[0]


@dataclass
class SchemaGraph:
    """The project, its transforms, and the schemas derived so far (memoised per pipeline)."""

    project: Project
    settings: Settings
    functions: dict[str, TransformFn | None] = field(default_factory=dict)
    derived: dict[str, pl.Schema] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    _contracts: dict[Path, Contract | None] = field(default_factory=dict)

    def function(self, pipeline: PipelineFile) -> TransformFn | None:
        """The pipeline's Python transform (imported once)."""
        if pipeline.name not in self.functions:
            self.functions[pipeline.name] = resolve_transform(pipeline, self.settings)
        return self.functions[pipeline.name]

    def producer(self, source: DatasetSource | FileSource | HttpSource) -> PipelineFile | None:
        """The pipeline of the project that produces this input; None for outside inputs."""
        if isinstance(source, DatasetSource):
            return self.project.producers.get(source.dataset)
        return None

    def contract(self, path: Path) -> Contract | None:
        """A contract file (read once); ContractError if it is unreadable."""
        if path not in self._contracts:
            self._contracts[path] = read_contract(path)
        return self._contracts[path]

    def output_contract(self, pipeline: PipelineFile) -> Contract | None:
        """The pipeline's locked output contract (read once)."""
        return self.contract(contract_path(pipeline, self.settings))

    def forget(self, path: Path) -> None:
        """Read this contract afresh next time (it was just locked)."""
        self._contracts.pop(path, None)

    def derive_all(self) -> None:
        """Derive every pipeline, producers before consumers."""
        for pipeline in self.order:
            try:
                self.derived[pipeline.name] = self.derive(pipeline)
            except SchemaDerivationError as exc:
                self.errors[pipeline.name] = str(exc)

    def input_schemas(
        self, pipeline: PipelineFile, *, locked_upstream: bool = False
    ) -> dict[str, pl.Schema]:
        """The schema of each input; upstream outputs as derived, or as locked."""
        schemas: dict[str, pl.Schema] = {}
        for table, source in pipeline.config.inputs.items():
            producer = self.producer(source)
            if producer is None:
                path = input_contract_path(pipeline, table, source, self.settings)
                contract = self._read(path)
                if contract is None:
                    raise SchemaDerivationError(
                        f"input {table!r} has no contract "
                        f"({project_relative(path, self.settings)}); "
                        f"run `flowfactory schema lock {pipeline.name}` with its data present"
                    )
                schemas[table] = contract.polars_schema()
            elif locked_upstream:
                contract = self._read(contract_path(producer, self.settings))
                if contract is None:
                    raise SchemaDerivationError(f"upstream {producer.name!r} has no contract")
                schemas[table] = contract.polars_schema()
            elif producer.name in self.derived:
                schemas[table] = self.derived[producer.name]
            else:
                raise SchemaDerivationError(
                    f"upstream pipeline {producer.name!r} cannot be derived: "
                    f"{self.errors.get(producer.name, 'not derived yet')}"
                )
        return schemas

    def _read(self, path: Path) -> Contract | None:
        try:
            return self.contract(path)
        except ContractError as exc:
            raise SchemaDerivationError(str(exc)) from None

    def derive(self, pipeline: PipelineFile, *, locked_upstream: bool = False) -> pl.Schema:
        """The output schema of one pipeline, from its inputs' schemas, reading no data."""
        schemas = self.input_schemas(pipeline, locked_upstream=locked_upstream)
        frames = {table: pl.LazyFrame(schema=schema) for table, schema in schemas.items()}
        try:
            return apply_transform(pipeline, frames, self.function(pipeline)).collect_schema()
        except ConfigError as exc:
            raise SchemaDerivationError(
                "; ".join(p.message for p in exc.problems).removeprefix(
                    "the transform fails on its inputs: "
                )
            ) from None
        except (pl.exceptions.PolarsError, PipelineRunError) as exc:
            first = _first_line(exc, type(exc).__name__)
            raise SchemaDerivationError(f"the transform does not resolve: {first}") from None
        except Exception as exc:  # noqa: BLE001 - a user's Python transform may raise anything
            raise SchemaDerivationError(
                f"the transform raised {type(exc).__name__}: {_first_line(exc, '')}".rstrip(": ")
            ) from None

    @functools.cached_property
    def order(self) -> list[PipelineFile]:
        """Producers before consumers."""
        return self.project.topological_order()

    @functools.cached_property
    def _readers(self) -> dict[str, list[PipelineFile]]:
        readers: dict[str, list[PipelineFile]] = {}
        for p in self.project.pipelines:
            for upstream in self.project.upstream(p):
                readers.setdefault(upstream.name, []).append(p)
        return readers

    def consumers(self, pipeline: PipelineFile) -> list[PipelineFile]:
        """Every pipeline downstream of this one, nearest first."""
        found: dict[str, PipelineFile] = {}
        frontier = [pipeline]
        while frontier:
            following: list[PipelineFile] = []
            for p in frontier:
                for reader in self._readers.get(p.name, []):
                    if reader.name not in found:
                        found[reader.name] = reader
                        following.append(reader)
            frontier = following
        return list(found.values())
