"""A project: every pipeline file of a folder, checked as a set (unique names, one producer per
dataset, inputs that exist, no cycles), and the dataset graph between them.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from flowfactory.config.loader import (
    PipelineFile,
    display_path,
    load_defaults,
    load_pipeline,
    pipeline_paths,
)
from flowfactory.config.models import DatasetSource
from flowfactory.config.yaml import FieldPath, YamlDocument, load_yaml
from flowfactory.errors import ConfigError, Problem
from flowfactory.settings import Settings

__all__ = ["Project", "load_project"]


@dataclass(frozen=True)
class Project:
    """Every pipeline of a folder, checked as a set, and the dataset graph between them."""

    pipelines: tuple[PipelineFile, ...]
    producers: Mapping[str, PipelineFile]
    external_datasets: frozenset[str]

    def get(self, name: str) -> PipelineFile:
        """The pipeline called ``name``; KeyError if there is none."""
        for pipeline in self.pipelines:
            if pipeline.name == name:
                return pipeline
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """Pipeline names in file order."""
        return [p.name for p in self.pipelines]

    def upstream(self, pipeline: PipelineFile) -> list[PipelineFile]:
        """The pipelines that produce this pipeline's input datasets."""
        found = (self.producers.get(s.dataset) for s in pipeline.config.input_datasets)
        return [p for p in found if p is not None]

    def topological_order(self) -> list[PipelineFile]:
        """Producers before consumers (the set was checked for cycles at load time)."""
        by_name = {p.name: p for p in self.pipelines}  # get() scans every pipeline per call
        graph = {p.name: {u.name for u in self.upstream(p)} for p in self.pipelines}
        return [by_name[name] for name in TopologicalSorter(graph).static_order()]


def _input_loc(pipeline: PipelineFile, table: str) -> FieldPath:
    """Where the input read as ``table`` names its dataset."""
    if pipeline.config.source is not None:
        return ("source", "dataset")
    return ("sources", table, "dataset")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles of the graph, each as ``[a, b, ..., a]``, until the rest has none.

    graphlib reports one cycle at a time; dropping its pipelines and asking again finds the
    others, so every pipeline caught in a cycle is reported once.
    """
    cycles: list[list[str]] = []
    while True:
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as exc:
            cycle: list[str] = exc.args[1]
            cycles.append(cycle)
            gone = set(cycle)
            graph = {name: ups - gone for name, ups in graph.items() if name not in gone}
        else:
            return cycles


def _declared_dataset(path: Path) -> str | None:
    """The destination dataset an invalid pipeline file names, if it names one plainly."""
    try:
        data = load_yaml(path).data
    except ConfigError:
        return None
    destination = data.get("destination") if isinstance(data, dict) else None
    dataset = destination.get("dataset") if isinstance(destination, dict) else None
    return dataset if isinstance(dataset, str) else None


def _check_set(
    pipelines: list[PipelineFile], unchecked: frozenset[str] = frozenset()
) -> tuple[list[Problem], dict[str, PipelineFile]]:
    """Problems of the set; ``unchecked`` are datasets named by files that failed to load."""
    problems: list[Problem] = []
    by_name: dict[str, PipelineFile] = {}
    producers: dict[str, PipelineFile] = {}
    for p in pipelines:
        if p.name in by_name:
            first = by_name[p.name]
            problems.append(
                p.problem(
                    ("name",),
                    f"pipeline name {p.name!r} is already used by {first.document.path}",
                )
            )
        else:
            by_name[p.name] = p
        dataset = p.config.destination.dataset
        if dataset in producers:
            first = producers[dataset]
            problems.append(
                p.problem(
                    ("destination", "dataset"),
                    f"dataset {dataset!r} is already produced by pipeline {first.name!r} "
                    f"({first.document.path}); a dataset has one producer",
                )
            )
        else:
            producers[dataset] = p
    external = {s.dataset for p in pipelines for s in p.config.input_datasets if s.external}
    known = {*producers, *external, *unchecked}
    for p in pipelines:
        for table, source in p.config.inputs.items():
            if not isinstance(source, DatasetSource):
                continue
            loc = _input_loc(p, table)
            if source.external and source.dataset in producers:
                problems.append(
                    p.problem(
                        loc,
                        f"dataset {source.dataset!r} is declared external but pipeline "
                        f"{producers[source.dataset].name!r} produces it",
                    )
                )
            elif source.dataset not in known:
                close = difflib.get_close_matches(source.dataset, sorted(producers), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(
                    p.problem(
                        loc,
                        f"no pipeline produces dataset {source.dataset!r} and it is not "
                        f"declared external (external: true){hint}",
                    )
                )
    graph = {
        p.name: {
            producers[s.dataset].name for s in p.config.input_datasets if s.dataset in producers
        }
        for p in by_name.values()
    }
    for cycle in _cycles(graph):
        flow = " -> ".join(cycle)
        # Each pipeline in the cycle reads a dataset of the one before it: point at that input.
        for before, name in itertools.pairwise(cycle):
            pipeline = by_name[name]
            reader = next(
                (
                    table
                    for table, source in pipeline.config.inputs.items()
                    if isinstance(source, DatasetSource)
                    and source.dataset in producers
                    and producers[source.dataset].name == before
                ),
                None,
            )
            loc = _input_loc(pipeline, reader) if reader is not None else ()
            problems.append(
                pipeline.problem(loc, f"the dataset graph has a cycle: data flows {flow}")
            )
    return problems, producers


def load_project(folder: Path, settings: Settings) -> Project:
    """Load every pipeline file in ``folder``; raise one ConfigError with every problem found."""
    problems: list[Problem] = []
    defaults: YamlDocument | None = None
    try:
        defaults = load_defaults(folder)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if defaults is not None:
        problems.extend(defaults.problems)
        if defaults.data is not None and not isinstance(defaults.data, dict):
            problems.append(Problem.at_file(defaults.path, "defaults must be a mapping"))
            defaults = None
    if not folder.is_dir():
        raise ConfigError([Problem.at_file(display_path(folder), "no such folder")])
    pipelines: list[PipelineFile] = []
    # Datasets that invalid files mean to produce: their readers get no second, misleading error.
    unchecked: set[str] = set()
    for path in pipeline_paths(folder):
        try:
            pipelines.append(load_pipeline(path, settings, defaults))
        except ConfigError as exc:
            problems.extend(exc.problems)
            declared = _declared_dataset(path)
            if declared is not None:
                unchecked.add(declared)
    set_problems, producers = _check_set(pipelines, frozenset(unchecked))
    problems.extend(set_problems)
    if problems:
        # A mistake in the defaults shows up in every pipeline that inherits it: report it once.
        raise ConfigError(set(problems))
    external = frozenset(
        s.dataset for p in pipelines for s in p.config.input_datasets if s.external
    )
    return Project(tuple(pipelines), producers, external)
