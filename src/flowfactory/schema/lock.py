"""`schema lock`: write each selected pipeline's output contract as derived now.

Inputs that no pipeline of the project produces are locked first, from a cheap schema read of
their files when they are present (a scan, plus type inference for CSV), so that the outputs
derive from them. HTTP APIs are never called: their input contracts are written by hand. A
contract gets a new version only when its schema or its producing pipeline changed; the old
version moves to its history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from flowfactory.config import HttpSource, PipelineFile, Project
from flowfactory.data import DataRoot, read_source
from flowfactory.errors import PipelineRunError
from flowfactory.schema.contracts import Contract, TableSchema, read_contract, write_contract
from flowfactory.schema.derive import (
    SchemaGraph,
    contract_path,
    input_contract_path,
    not_null_problem,
    output_table_schema,
    project_relative,
)
from flowfactory.schema.selection import select_pipelines
from flowfactory.settings import Settings

__all__ = ["LockReport", "lock_project"]


@dataclass(frozen=True)
class LockReport:
    """What `schema lock` wrote."""

    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every selected contract was locked."""
        return not self.problems

    def text(self) -> str:
        """The report for people."""
        lines = [f"locked input {name}" for name in self.inputs]
        lines += [f"locked {name}" for name in self.written]
        lines += [f"unchanged {name}" for name in self.unchanged]
        lines += [f"error: {problem}" for problem in self.problems]
        return "\n".join(lines)


def _lock_inputs(
    graph: SchemaGraph, pipeline: PipelineFile, root: DataRoot
) -> tuple[list[str], list[str]]:
    """Lock the contracts of inputs no pipeline produces, from their data when it is there."""
    written: list[str] = []
    problems: list[str] = []
    settings = graph.settings
    for table, source in pipeline.config.inputs.items():
        if graph.producer(source) is not None:
            continue
        path = input_contract_path(pipeline, table, source, settings)
        if isinstance(source, HttpSource):
            # Locking must not call APIs (or need a Prefect server for their blocks).
            if graph.contract(path) is None:
                problems.append(
                    f"{pipeline.name}: input {table!r} reads an HTTP API, which `schema lock` "
                    f"does not call; write {project_relative(path, settings)} by hand"
                )
            continue
        try:
            schema = read_source(source, root, None).collect_schema()
        except (PipelineRunError, pl.exceptions.PolarsError, OSError) as exc:
            if graph.contract(path) is None:
                problems.append(
                    f"{pipeline.name}: input {table!r} has no data to lock its schema from "
                    f"({exc}); write {project_relative(path, settings)} by hand or land the data"
                )
            continue
        if _lock(path, path.stem, None, TableSchema.of(schema)):
            written.append(project_relative(path, settings))
        graph.forget(path)
    return written, problems


def _lock(path: Path, dataset: str, pipeline: str | None, schema: TableSchema) -> bool:
    """Write a new version if the schema differs from the locked one; True if written."""
    current = read_contract(path)
    if current is not None and current.same_as(schema) and current.pipeline == pipeline:
        return False
    contract = (
        Contract.first(dataset, pipeline, schema)
        if current is None
        else current.relocked(schema, pipeline)
    )
    write_contract(path, contract)
    return True


def lock_project(
    project: Project, settings: Settings, names: Iterable[str] | None = None
) -> LockReport:
    """Lock the output contracts of the named pipelines (default: all) as derived now."""
    graph = SchemaGraph(project, settings)
    chosen = select_pipelines(project, names)
    root = DataRoot(settings.data_root_url)
    inputs: list[str] = []
    problems: list[str] = []
    for pipeline in chosen:
        written, trouble = _lock_inputs(graph, pipeline, root)
        inputs += written
        problems += trouble
    graph.derive_all()
    written_outputs: list[str] = []
    unchanged: list[str] = []
    for pipeline in chosen:
        if pipeline.name in graph.errors:
            problems.append(f"{pipeline.name}: {graph.errors[pipeline.name]}")
            continue
        schema = graph.derived[pipeline.name]
        problem = not_null_problem(pipeline, schema)
        if problem is not None:
            problems.append(f"{pipeline.name}: {problem}")
            continue
        path = contract_path(pipeline, settings)
        label = project_relative(path, settings)
        table = output_table_schema(pipeline, schema)
        if _lock(path, pipeline.config.destination.dataset, pipeline.name, table):
            written_outputs.append(label)
        else:
            unchanged.append(label)
    return LockReport(tuple(written_outputs), tuple(unchanged), tuple(inputs), tuple(problems))
