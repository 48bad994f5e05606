"""Which pipelines a `schema lock` or `schema check` is about: named by pipeline or by dataset."""

from __future__ import annotations

from collections.abc import Iterable

from flowfactory.config import PipelineFile, Project
from flowfactory.errors import UsageError

__all__ = ["select_pipelines", "unknown_names"]


def _named(project: Project, name: str) -> PipelineFile | None:
    return next(
        (p for p in project.pipelines if name in (p.name, p.config.destination.dataset)), None
    )


def unknown_names(project: Project, names: Iterable[str]) -> list[str]:
    """The names that are neither a pipeline nor a dataset of the project."""
    return [name for name in names if _named(project, name) is None]


def select_pipelines(project: Project, names: Iterable[str] | None) -> list[PipelineFile]:
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
        raise UsageError(
            f"no pipeline or dataset named {', '.join(map(repr, unknown))}; "
            f"the pipelines are {', '.join(project.names)}"
        )
    return chosen
