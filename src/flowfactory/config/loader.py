"""Load every pipeline file of a folder, check the whole set, and report all problems at once."""

from __future__ import annotations

import difflib
import itertools
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ValidationError

from flowfactory.config.base import NAME_PATTERN
from flowfactory.config.models import SOURCE_KINDS, TRANSFORM_KINDS, DatasetSource
from flowfactory.config.pipeline import PipelineConfig
from flowfactory.config.yaml import FieldPath, YamlDocument, format_field_path, load_yaml
from flowfactory.errors import ConfigError, FieldValueError, PipelineRunError, Problem
from flowfactory.settings import Settings

__all__ = [
    "DEFAULTS_FILE",
    "PipelineFile",
    "Project",
    "find_pipeline",
    "load_defaults",
    "load_pipeline",
    "load_project",
    "pipeline_paths",
]

DEFAULTS_FILE: Final = "_defaults.yaml"
_UNION_KEYS: Final = frozenset({"tags"})


@dataclass(frozen=True)
class PipelineFile:
    """A validated pipeline and the file it came from, with positions for later errors."""

    path: Path
    config: PipelineConfig
    document: YamlDocument = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """The pipeline's name."""
        return self.config.name

    def problem(self, loc: FieldPath, message: str, *, key: bool = False) -> Problem:
        """A problem positioned at ``loc`` in this file."""
        mark = self.document.mark_for(loc, key=key)
        return Problem(self.document.path, mark.line, mark.column, message, format_field_path(loc))


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


# --------------------------------------------------------------------------------------------
# One file


def _merge_defaults(defaults: object, data: object) -> object:
    """Deep-merge a pipeline mapping over the defaults; lists replace, except tags which unite."""
    if not isinstance(defaults, dict) or not isinstance(data, dict):
        return data
    merged = dict(defaults)
    for key, value in data.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = _merge_defaults(base, value)
        elif key in _UNION_KEYS and isinstance(base, list) and isinstance(value, list):
            merged[key] = [*base, *(v for v in value if v not in base)]
        else:
            merged[key] = value
    return merged


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _model_fields() -> dict[type[BaseModel], frozenset[str]]:
    """The keys of every model a pipeline file can hold, found by walking PipelineConfig."""
    found: dict[type[BaseModel], frozenset[str]] = {}
    pending: list[type[BaseModel]] = [PipelineConfig]
    while pending:
        model = pending.pop()
        if model not in found:
            found[model] = frozenset(model.model_fields)
            for info in model.model_fields.values():
                pending.extend(_models_in(info.annotation))
    return found


_FIELDS: Final = _model_fields()


# Where the keys of each model are written, for "it belongs under" hints.
_PLACES: Final = {
    "PipelineConfig": "at the top level",
    "FileSource": "under `source:` (or an entry of `sources:`)",
    "DatasetSource": "under `source:` (or an entry of `sources:`)",
    "CsvOptions": "under `csv:` of a file source",
    "SqlTransform": "under `transform:`",
    "PythonTransform": "under `transform:`",
    "Destination": "under `destination:`",
    "Schedule": "under `schedule:`",
    "Retries": "under `retries:`",
    "CanaryConfig": "under `canary:`",
    "CanarySample": "under `sample:` of `canary:`",
}
_SECTIONS: Final = {
    "transform": "SqlTransform",
    "destination": "Destination",
    "schedule": "Schedule",
    "retries": "Retries",
    "canary": "CanaryConfig",
}


def _place(parent: FieldPath) -> str | None:
    """The place (as in ``_PLACES``) of the mapping at ``parent``."""
    if not parent:
        return _PLACES["PipelineConfig"]
    if parent[0] in ("source", "sources"):
        return _PLACES["CsvOptions" if "csv" in parent else "FileSource"]
    if tuple(parent[:2]) == ("canary", "sample"):
        return _PLACES["CanarySample"]
    model = _SECTIONS.get(str(parent[0]))
    return _PLACES[model] if model else None


def _suggest(unknown: str, siblings: Iterable[str], parent: FieldPath = ()) -> str:
    """A hint for an unknown key at ``parent``: where it belongs, or a "did you mean"."""
    fields_of = {model.__name__: fields for model, fields in _FIELDS.items()}
    homes = list(
        dict.fromkeys(
            place for name, place in _PLACES.items() if unknown in fields_of.get(name, ())
        )
    )
    if homes:
        # A key of another kind of the same thing (`format:` on a dataset source) gets no hint.
        return "" if _place(parent) in homes else "; it belongs " + ", or ".join(homes)
    siblings = set(siblings) - {unknown}
    best: frozenset[str] = frozenset()
    best_score = -1
    for fields in _FIELDS.values():
        score = len(siblings & fields)
        if score > best_score:
            best, best_score = fields, score
    close = difflib.get_close_matches(unknown, sorted(best), n=1, cutoff=0.6)
    if not close:
        # A key of another level misplaced here still deserves a hint.
        close = difflib.get_close_matches(
            unknown, sorted(set().union(*_FIELDS.values())), n=1, cutoff=0.8
        )
    return f"; did you mean {close[0]!r}?" if close else ""


# The keys pydantic inserts into error locations to name the kind of a source or transform.
_UNION_TAGS: Final = frozenset((*SOURCE_KINDS, *TRANSFORM_KINDS))


def _data_loc(data: object, loc: tuple[str | int, ...]) -> FieldPath:
    """Drop the union tags pydantic inserts into error locations, keeping the data's own path."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        following = loc[i + 1] if i + 1 < len(loc) else None
        if part == "[key]":
            continue
        if isinstance(node, dict):
            if part in _UNION_TAGS and following is not None and following in node:
                continue
            if part in node:
                node = node[part]
                out.append(part)
            elif part not in _UNION_TAGS or following is None:
                # A missing key: a union tag ends a location only when its key is present.
                out.append(part)
                node = None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            out.append(part)
    return tuple(out)


def _problems_from_validation(
    error: ValidationError, data: object, docs: list[YamlDocument]
) -> list[Problem]:
    problems: list[Problem] = []
    for err in error.errors(include_url=False):
        loc = _data_loc(data, tuple(err["loc"]))
        kind = err["type"]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, FieldValueError):
            loc = (*loc, *cause.loc)
        if kind == "extra_forbidden":
            parent = _get(data, loc[:-1])
            siblings = parent.keys() if isinstance(parent, dict) else ()
            message = f"unknown key {loc[-1]!r}" + _suggest(str(loc[-1]), siblings, loc[:-1])
        elif kind == "missing":
            message = "required key is missing"
        elif (
            kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == NAME_PATTERN
        ):
            message = _name_message(err["input"], loc, docs[0])
        else:
            message = err["msg"].removeprefix("Value error, ")
        # The pipeline file wins over the defaults for where a value sits.
        doc = next(
            (d for d in docs if loc in d.value_marks or loc in d.key_marks),
            docs[0],
        )
        on_key = kind == "extra_forbidden" or "[key]" in err["loc"]
        mark = doc.mark_for(loc, key=on_key)
        problems.append(Problem(doc.path, mark.line, mark.column, message, format_field_path(loc)))
    return problems


def _name_message(value: object, loc: FieldPath, doc: YamlDocument) -> str:
    message = (
        f"{value!r} is not a valid name: use lowercase letters, digits and _, "
        "starting with a letter, at most 63 characters"
    )
    if loc == ("name",) and isinstance(doc.data, dict) and "name" not in doc.data:
        message += " (taken from the file name; add a `name:` key or rename the file)"
    return message


def _get(data: object, loc: FieldPath) -> object:
    for part in loc:
        if isinstance(data, dict):
            if part not in data:
                return None
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


def load_pipeline(
    path: Path, settings: Settings, defaults: YamlDocument | None = None
) -> PipelineFile:
    """Load and validate one pipeline file (merged over the defaults)."""
    doc = load_yaml(path, display_path=_display(path))
    if doc.data is None:
        raise ConfigError([Problem.at_file(doc.path, "file is empty")])
    if not isinstance(doc.data, dict):
        raise ConfigError(
            [Problem.at_file(doc.path, "a pipeline file must be a mapping of keys to values")]
        )
    data = dict(doc.data)
    data.setdefault("name", path.stem)
    docs = [doc]
    if defaults is not None and isinstance(defaults.data, dict):
        data = _merge_defaults(defaults.data, data)  # type: ignore[assignment]
        docs.append(defaults)
    try:
        config = PipelineConfig.model_validate(
            data, context={"allowed_modules": settings.allowed_modules}
        )
    except ValidationError as exc:
        raise ConfigError([*doc.problems, *_problems_from_validation(exc, data, docs)]) from None
    if doc.problems:
        raise ConfigError(doc.problems)
    return PipelineFile(path=path, config=config, document=doc)


# --------------------------------------------------------------------------------------------
# The whole set


def pipeline_paths(folder: Path) -> list[Path]:
    """Pipeline files of a folder: ``*.yaml``/``*.yml`` except those starting with ``_``."""
    return sorted(
        p
        for pattern in ("*.yaml", "*.yml")
        for p in folder.glob(pattern)
        if not p.name.startswith(("_", "."))
    )


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


def load_defaults(folder: Path) -> YamlDocument | None:
    """The folder's ``_defaults.yaml`` as positioned data, if it has one."""
    path = folder / DEFAULTS_FILE
    return load_yaml(path, display_path=_display(path)) if path.exists() else None


def find_pipeline(name: str, settings: Settings) -> PipelineFile:
    """Load the pipeline called ``name`` from the deployments folder (only its own file)."""
    folder = settings.deployments_dir
    defaults = load_defaults(folder)
    conventional = folder / f"{name}.yaml"
    candidates = [conventional] if conventional.exists() else []
    candidates += [p for p in pipeline_paths(folder) if p != conventional]
    for path in candidates:
        try:
            pipeline = load_pipeline(path, settings, defaults)
        except ConfigError:
            if path == conventional:
                raise
            continue
        if pipeline.name == name:
            return pipeline
    raise PipelineRunError(f"no pipeline named {name!r} in {folder}")


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
        raise ConfigError([Problem.at_file(_display(folder), "no such folder")])
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
