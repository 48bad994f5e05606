"""`schema check`: judge every derived output schema against its locked contract.

Each pipeline's output, derived statically (see `flowfactory.schema.derive`), is classified
against its contract under the pipeline's mode. When a pipeline's own file changed nothing, the
changes found are blamed on the upstream pipelines that did (its root causes), and a breaking
result names every dataset downstream of it. `CheckReport` renders the outcome for people
(text), machines (json) and GitHub Actions annotations (github).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from flowfactory.config import PipelineFile, Project
from flowfactory.errors import ContractError, SchemaDerivationError
from flowfactory.schema.derive import (
    SchemaGraph,
    contract_path,
    not_null_problem,
    output_table_schema,
    project_relative,
    schema_config,
)
from flowfactory.schema.rules import Change, Impact, classify_against
from flowfactory.schema.selection import select_pipelines
from flowfactory.settings import Settings

__all__ = ["CheckReport", "PipelineCheck", "check_project"]


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
        contract=project_relative(path, settings),
        locked_version=None,
        downstream=tuple(c.config.destination.dataset for c in graph.consumers(pipeline)),
        declared=pipeline.config.schema_ is not None,
    )
    try:
        contract = graph.contract(path)
    except ContractError as exc:
        return replace(base, error=str(exc))
    base_locked = base if contract is None else replace(base, locked_version=contract.version)
    if pipeline.name in graph.errors:
        return replace(base_locked, error=graph.errors[pipeline.name])
    schema = graph.derived[pipeline.name]
    problem = not_null_problem(pipeline, schema)
    if problem is not None:
        return replace(base_locked, error=problem)
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
            contract = graph.output_contract(upstream)
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
        contract = graph.output_contract(pipeline)
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
    chosen = select_pipelines(project, names)
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
