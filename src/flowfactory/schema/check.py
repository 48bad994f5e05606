"""Derive every pipeline's output schema statically, lock it, and check it against its contract.

Nothing here reads data at check time. Each pipeline's transform runs over *empty* LazyFrames
that carry its inputs' schemas, and ``collect_schema()`` resolves the plan without computing it.
The inputs' schemas come from the graph, in topological order: a dataset produced by another
pipeline has the schema just derived for it (so an upstream change reaches every downstream
pipeline), and an input nobody in the project produces (files, external datasets) has the
schema of its locked *input contract*. ``schema lock`` writes input contracts from a cheap
schema read of the files when they are present (a scan, plus type inference for CSV).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Final, Literal

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
from flowfactory.data import DataRoot, TransformFn, apply_transform, read_source, resolve_transform
from flowfactory.errors import ConfigError, ContractError, PipelineRunError, SchemaDerivationError
from flowfactory.schema.contracts import Contract, TableSchema, read_contract, write_contract
from flowfactory.schema.rules import Change, Impact, classify_against, frame_violations
from flowfactory.settings import Settings

__all__ = [
    "CheckReport",
    "LockReport",
    "OutputCheck",
    "PipelineCheck",
    "SchemaGraph",
    "check_output",
    "check_project",
    "contract_path",
    "input_contract_path",
    "lock_project",
    "locked_input_schemas",
    "output_table_schema",
    "schema_config",
    "unknown_names",
]

_NO_SCHEMA: Final = SchemaConfig()


def schema_config(pipeline: PipelineFile) -> SchemaConfig:
    """The pipeline's `schema:` section, or the defaults when it has none."""
    return pipeline.config.schema_ or _NO_SCHEMA


def contract_path(pipeline: PipelineFile, settings: Settings) -> Path:
    """Where the pipeline's output contract lives."""
    relative = schema_config(pipeline).contract
    if relative is None:
        relative = f"{CONTRACTS_DIR}/{pipeline.config.destination.dataset}.json"
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
    return settings.project_dir / CONTRACTS_DIR / f"{name}.json"


def output_table_schema(pipeline: PipelineFile, schema: pl.Schema) -> TableSchema:
    """The table schema a pipeline declares for output of this polars schema."""
    config = schema_config(pipeline)
    return TableSchema.of(
        schema,
        not_null=config.not_null,
        key=pipeline.config.destination.key,
        key_unique=config.unique_key,
    )


@dataclass
class SchemaGraph:
    """The project, its transforms, and the schemas derived so far (memoised per pipeline)."""

    project: Project
    settings: Settings
    functions: dict[str, TransformFn | None] = field(default_factory=dict)
    derived: dict[str, pl.Schema] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    _inputs: dict[Path, Contract | None] = field(default_factory=dict)

    def function(self, pipeline: PipelineFile) -> TransformFn | None:
        """The pipeline's Python transform (imported once)."""
        if pipeline.name not in self.functions:
            self.functions[pipeline.name] = resolve_transform(pipeline, self.settings)
        return self.functions[pipeline.name]

    def input_contract(self, path: Path) -> Contract | None:
        """An input contract (read once)."""
        if path not in self._inputs:
            self._inputs[path] = read_contract(path)
        return self._inputs[path]

    def forget_input(self, path: Path) -> None:
        """Read this input contract afresh next time (it was just locked)."""
        self._inputs.pop(path, None)

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
            producer = (
                self.project.producers.get(source.dataset)
                if isinstance(source, DatasetSource)
                else None
            )
            if producer is None:
                path = input_contract_path(pipeline, table, source, self.settings)
                contract = self._read(path)
                if contract is None:
                    raise SchemaDerivationError(
                        f"input {table!r} has no contract ({_relative(path, self.settings)}); "
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
            return self.input_contract(path)
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
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SchemaDerivationError(f"the transform does not resolve: {first}") from None
        except Exception as exc:  # noqa: BLE001 - a user's Python transform may raise anything
            first = (str(exc).strip().splitlines() or [""])[0]
            raise SchemaDerivationError(
                f"the transform raised {type(exc).__name__}: {first}".rstrip(": ")
            ) from None

    @functools.cached_property
    def order(self) -> list[PipelineFile]:
        """Producers before consumers (by name lookup: Project.get is linear per call)."""
        by_name = {p.name: p for p in self.project.pipelines}
        graph = {p.name: {u.name for u in self.project.upstream(p)} for p in self.project.pipelines}
        return [by_name[name] for name in TopologicalSorter(graph).static_order()]

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


def _relative(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.project_dir))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# Check


@dataclass(frozen=True)
class PipelineCheck:
    """The outcome of checking one pipeline's derived output against its contract."""

    pipeline: str
    dataset: str
    file: str
    line: int
    mode: str
    contract: str
    locked_version: int | None
    changes: tuple[Change, ...] = ()
    error: str | None = None
    caused_by: tuple[str, ...] = ()
    root_causes: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    declared: bool = False

    @property
    def breaking(self) -> bool:
        """An error, a breaking change, or a missing contract the pipeline declared."""
        if self.error is not None:
            return True
        if self.locked_version is None:
            return self.declared
        return any(c.verdict is Impact.breaking for c in self.changes)

    @property
    def warnings(self) -> list[Change]:
        """Changes judged a warning."""
        return [c for c in self.changes if c.verdict is Impact.warning]

    @property
    def status(self) -> Literal["breaking", "warning", "unlocked", "changed", "unchanged"]:
        """One word for the outcome."""
        if self.breaking:
            return "breaking"
        if self.locked_version is None:
            return "unlocked"
        if self.warnings:
            return "warning"
        return "changed" if self.changes else "unchanged"


@dataclass(frozen=True)
class CheckReport:
    """Every pipeline checked, in dependency order, and how long it took."""

    results: tuple[PipelineCheck, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """No breaking change anywhere."""
        return not any(r.breaking for r in self.results)

    def get(self, pipeline: str) -> PipelineCheck:
        """The result of one pipeline; KeyError if it was not checked."""
        for result in self.results:
            if result.pipeline == pipeline:
                return result
        raise KeyError(pipeline)

    def text(self) -> str:
        """The report for people."""
        lines: list[str] = []
        for r in self.results:
            head = f"{r.pipeline}: {r.status}"
            where = f"dataset {r.dataset}, mode {r.mode}, {r.contract}"
            if r.locked_version is not None:
                where += f" v{r.locked_version}"
            lines.append(f"{head} ({where})")
            if r.error is not None:
                lines.append(f"  BREAKING  {r.error}")
            elif r.locked_version is None:
                lines.append(
                    f"  {'BREAKING' if r.declared else 'note'}      no contract locked; run "
                    f"`flowfactory schema lock {r.pipeline}`"
                )
            lines.extend(
                f"  {c.verdict.upper():<9} {c.describe()}"
                for c in sorted(r.changes, key=lambda c: -c.verdict.rank)
            )
            if r.caused_by:
                via = ""
                if r.root_causes != r.caused_by:
                    via = f" (via {', '.join(r.caused_by)})"
                lines.append(f"  caused by a change upstream in: {', '.join(r.root_causes)}{via}")
            if r.breaking and r.downstream:
                lines.append(f"  affects downstream datasets: {', '.join(r.downstream)}")
        broken = [r.pipeline for r in self.results if r.breaking]
        warned = sum(len(r.warnings) for r in self.results)
        lines.append(
            f"schema check: {len(self.results)} pipeline(s), {len(broken)} breaking"
            f"{' (' + ', '.join(broken) + ')' if broken else ''}, {warned} warning(s)"
        )
        return "\n".join(lines)

    def json(self) -> str:
        """The report for machines."""
        return json.dumps(
            {
                "ok": self.ok,
                "seconds": round(self.seconds, 4),
                "pipelines": [
                    {
                        "pipeline": r.pipeline,
                        "dataset": r.dataset,
                        "file": r.file,
                        "mode": r.mode,
                        "contract": r.contract,
                        "locked_version": r.locked_version,
                        "status": r.status,
                        "breaking": r.breaking,
                        "error": r.error,
                        "caused_by": list(r.caused_by),
                        "root_causes": list(r.root_causes),
                        "downstream": list(r.downstream),
                        "changes": [
                            {
                                "column": c.column,
                                "kind": c.kind.name,
                                "description": c.describe(),
                                "before": c.before,
                                "after": c.after,
                                "verdict": c.verdict.value,
                                "forward": c.forward.name,
                                "backward": c.backward.name,
                                "against_version": c.against_version,
                            }
                            for c in r.changes
                        ],
                    }
                    for r in self.results
                ],
            },
            indent=2,
        )

    def github(self) -> str:
        """GitHub Actions workflow commands: one annotation per breaking change or warning."""
        lines: list[str] = []
        for r in self.results:
            where = f"file={r.file},line={r.line}"
            tail = f" (affects {', '.join(r.downstream)})" if r.downstream else ""
            cause = f"; caused by upstream {', '.join(r.root_causes)}" if r.root_causes else ""
            if r.error is not None:
                message = f"{r.error}{cause}{tail}"
                lines.append(f"::error {where},title=schema {r.pipeline}::{_escape(message)}")
            elif r.locked_version is None:
                level = "error" if r.declared else "notice"
                lines.append(
                    f"::{level} {where},title=schema {r.pipeline}::no contract locked; run "
                    f"flowfactory schema lock {r.pipeline}"
                )
            for c in r.changes:
                if c.verdict is Impact.allowed:
                    continue
                level = "error" if c.verdict is Impact.breaking else "warning"
                message = f"{c.describe()}{cause}{tail if level == 'error' else ''}"
                lines.append(f"::{level} {where},title=schema {r.pipeline}::{_escape(message)}")
        return "\n".join(lines)


def _escape(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _named(project: Project, name: str) -> PipelineFile | None:
    return next(
        (p for p in project.pipelines if name in (p.name, p.config.destination.dataset)), None
    )


def unknown_names(project: Project, names: Iterable[str]) -> list[str]:
    """The names that are neither a pipeline nor a dataset of the project."""
    return [name for name in names if _named(project, name) is None]


def _selection(project: Project, names: Iterable[str] | None) -> list[PipelineFile]:
    """Pipelines named by pipeline or dataset name; every pipeline when none are given."""
    wanted = list(names or [])
    if not wanted:
        return list(project.pipelines)
    chosen: list[PipelineFile] = []
    unknown: list[str] = []
    for name in wanted:
        match = _named(project, name)
        if match is None:
            unknown.append(name)
        elif match not in chosen:
            chosen.append(match)
    if unknown:
        raise PipelineRunError(
            f"no pipeline or dataset named {', '.join(map(repr, unknown))}; "
            f"the pipelines are {', '.join(project.names)}"
        )
    return chosen


def _position(pipeline: PipelineFile) -> tuple[str, int]:
    """The file and line to annotate: the transform if there is one, else the destination."""
    loc = ("transform",) if pipeline.config.transform is not None else ("destination",)
    mark = pipeline.document.mark_for(loc, key=True)
    return pipeline.document.path, mark.line


def _check_one(graph: SchemaGraph, pipeline: PipelineFile) -> PipelineCheck:
    settings = graph.settings
    config = schema_config(pipeline)
    path = contract_path(pipeline, settings)
    file, line = _position(pipeline)
    base = PipelineCheck(
        pipeline=pipeline.name,
        dataset=pipeline.config.destination.dataset,
        file=file,
        line=line,
        mode=config.compatibility,
        contract=_relative(path, settings),
        locked_version=None,
        downstream=tuple(c.config.destination.dataset for c in graph.consumers(pipeline)),
        declared=pipeline.config.schema_ is not None,
    )
    try:
        contract = read_contract(path)
    except ContractError as exc:
        return replace(base, error=str(exc))
    base_locked = base if contract is None else replace(base, locked_version=contract.version)
    if pipeline.name in graph.errors:
        return replace(base_locked, error=graph.errors[pipeline.name])
    schema = graph.derived[pipeline.name]
    missing = [c for c in config.not_null if c not in schema]
    if missing:
        message = f"schema.not_null names {', '.join(missing)}, which the output does not have"
        return replace(base_locked, error=message)
    if contract is None:
        return base
    changes = classify_against(
        contract.versions,
        output_table_schema(pipeline, schema),
        config.direction,
        transitive=config.transitive,
        renamed=config.renamed,
    )
    return replace(base_locked, changes=tuple(changes))


def _upstream_changed(graph: SchemaGraph, pipeline: PipelineFile) -> list[str]:
    """Direct upstream pipelines whose derived output differs from their locked contract."""
    changed: list[str] = []
    for upstream in graph.project.upstream(pipeline):
        if upstream.name in graph.errors:
            changed.append(upstream.name)
            continue
        try:
            contract = graph.input_contract(contract_path(upstream, graph.settings))
        except ContractError:
            continue
        derived = output_table_schema(upstream, graph.derived[upstream.name])
        if contract is not None and not contract.same_as(derived):
            changed.append(upstream.name)
    return changed


def _cause(graph: SchemaGraph, pipeline: PipelineFile) -> tuple[str, ...]:
    """The changed upstream pipelines, when this pipeline's own file changed nothing.

    The pipeline is derived a second time over its upstreams' *locked* schemas: if that output
    is still its locked contract, every change found comes from upstream, not from this file.
    """
    changed = _upstream_changed(graph, pipeline)
    if not changed:
        return ()
    try:
        own = graph.derive(pipeline, locked_upstream=True)
        contract = graph.input_contract(contract_path(pipeline, graph.settings))
    except (SchemaDerivationError, ContractError):
        return ()
    if contract is None or not contract.same_as(output_table_schema(pipeline, own)):
        return ()
    return tuple(changed)


def _roots(cause: tuple[str, ...], earlier: Mapping[str, PipelineCheck]) -> tuple[str, ...]:
    """The pipelines whose own change started it: causes of causes, up the graph."""
    roots: list[str] = []
    for name in cause:
        upstream = earlier.get(name)
        found = upstream.root_causes if upstream is not None and upstream.root_causes else (name,)
        roots.extend(r for r in found if r not in roots)
    return tuple(roots)


def check_project(
    project: Project, settings: Settings, names: Iterable[str] | None = None
) -> CheckReport:
    """Check the named pipelines (default: all) and every pipeline downstream of them."""
    started = time.perf_counter()
    graph = SchemaGraph(project, settings)
    chosen = _selection(project, names)
    scope = {p.name for p in chosen}
    if names:
        for pipeline in chosen:
            scope.update(c.name for c in graph.consumers(pipeline))
    graph.derive_all()
    results: list[PipelineCheck] = []
    for pipeline in graph.order:
        if pipeline.name not in scope:
            continue
        result = _check_one(graph, pipeline)
        if result.locked_version is not None and (result.changes or result.error):
            cause = _cause(graph, pipeline)
            if cause:
                roots = _roots(cause, {r.pipeline: r for r in results})
                result = replace(result, caused_by=cause, root_causes=roots)
        results.append(result)
    return CheckReport(tuple(results), time.perf_counter() - started)


# --------------------------------------------------------------------------------------------
# Run time


@dataclass(frozen=True)
class OutputCheck:
    """A run's output against its locked contract, before anything is written."""

    pipeline: str
    dataset: str
    contract: str
    version: int
    mode: str
    changes: tuple[Change, ...]

    @property
    def breaking(self) -> list[Change]:
        """The changes that refuse the write."""
        return [c for c in self.changes if c.verdict is Impact.breaking]

    @property
    def warnings(self) -> list[Change]:
        """The changes that are written with a warning."""
        return [c for c in self.changes if c.verdict is Impact.warning]

    @property
    def columns(self) -> list[str]:
        """The columns of the breaking changes."""
        return list(dict.fromkeys(c.column for c in self.breaking))

    def message(self) -> str:
        """Why the write was refused, naming every column."""
        changes = "; ".join(c.describe() for c in self.breaking)
        return (
            f"pipeline {self.pipeline!r}: the output breaks the contract of dataset "
            f"{self.dataset!r} ({self.contract} v{self.version}, mode {self.mode}) in column(s) "
            f"{', '.join(self.columns)}: {changes}. Nothing was written; fix the transform, or "
            f"accept the change with `flowfactory schema lock {self.pipeline}`"
        )

    def payload(self) -> dict[str, object]:
        """The payload of ``schema.incompatible``: the blocking changes."""
        return {
            "pipeline": self.pipeline,
            "dataset": self.dataset,
            "contract": self.contract,
            "contract_version": self.version,
            "mode": self.mode,
            "columns": self.columns,
            "changes": [
                {
                    "column": c.column,
                    "kind": c.kind.name,
                    "before": c.before,
                    "after": c.after,
                    "description": c.describe(),
                }
                for c in self.breaking
            ],
        }


def check_output(
    pipeline: PipelineFile, frame: pl.DataFrame, settings: Settings
) -> OutputCheck | None:
    """Check produced data against the pipeline's locked contract (None when none is locked).

    Dtypes are judged under the pipeline's mode, like ``schema check``; NOT NULL and key
    uniqueness are checked on the rows and break under every mode.
    """
    path = contract_path(pipeline, settings)
    contract = read_contract(path)
    if contract is None:
        return None
    config = schema_config(pipeline)
    changes = frame_violations(frame, contract, config.direction, config.renamed)
    return OutputCheck(
        pipeline=pipeline.name,
        dataset=pipeline.config.destination.dataset,
        contract=_relative(path, settings),
        version=contract.version,
        mode=config.compatibility,
        changes=tuple(changes),
    )


# --------------------------------------------------------------------------------------------
# Lock


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
        if isinstance(source, DatasetSource) and source.dataset in graph.project.producers:
            continue
        path = input_contract_path(pipeline, table, source, settings)
        if isinstance(source, HttpSource):
            # Locking must not call APIs (or need a Prefect server for their blocks).
            if graph.input_contract(path) is None:
                problems.append(
                    f"{pipeline.name}: input {table!r} reads an HTTP API, which `schema lock` "
                    f"does not call; write {_relative(path, settings)} by hand"
                )
            continue
        try:
            schema = read_source(source, root, None).collect_schema()
        except (PipelineRunError, pl.exceptions.PolarsError, OSError) as exc:
            if graph.input_contract(path) is None:
                problems.append(
                    f"{pipeline.name}: input {table!r} has no data to lock its schema from "
                    f"({exc}); write {_relative(path, settings)} by hand or land the data"
                )
            continue
        name = path.stem
        table_schema = TableSchema.of(schema)
        if _lock(path, name, None, table_schema):
            written.append(_relative(path, settings))
        graph.forget_input(path)
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
    chosen = _selection(project, names)
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
        missing = [c for c in schema_config(pipeline).not_null if c not in schema]
        if missing:
            problems.append(
                f"{pipeline.name}: schema.not_null names {', '.join(missing)}, "
                "which the output does not have"
            )
            continue
        path = contract_path(pipeline, settings)
        table = output_table_schema(pipeline, schema)
        dataset = pipeline.config.destination.dataset
        label = _relative(path, settings)
        if _lock(path, dataset, pipeline.name, table):
            written_outputs.append(label)
        else:
            unchanged.append(label)
    return LockReport(tuple(written_outputs), tuple(unchanged), tuple(inputs), tuple(problems))


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
