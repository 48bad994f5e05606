"""What `flowfactory status` shows: typed rows for live versions, breakers and datasets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flowfactory.breaker import BreakerRegistry, BreakerStatus, registry, source_dependency
from flowfactory.canary import live_version
from flowfactory.config import CircuitBreakerConfig, Project
from flowfactory.data import DataRoot

__all__ = [
    "StatusRow",
    "breaker_rows",
    "dataset_rows",
    "project_dependencies",
    "status_rows",
    "version_rows",
]


@dataclass(frozen=True)
class StatusRow:
    """One line of status: what kind of thing, which one, its state, and details."""

    kind: str
    name: str
    state: str
    detail: str = ""


def project_dependencies(project: Project) -> dict[str, CircuitBreakerConfig]:
    """Every external dependency the project's sources reach, with its breaker settings."""
    found: dict[str, CircuitBreakerConfig] = {}
    for pipeline in project.pipelines:
        for source in pipeline.config.inputs.values():
            dependency = source_dependency(source, pipeline.config.circuit_breaker)
            if dependency is not None:
                found.setdefault(*dependency)
    return found


def _breaker_row(status: BreakerStatus) -> StatusRow:
    state = status.override.value if status.override else status.state
    details = [f"{status.consecutive_failures} failure(s)"]
    if status.retry_after is not None and status.state == "open":
        details.append(f"probe in {status.retry_after:.1f} s")
    details.append("fleet-wide" if status.shared else "this process only")
    return StatusRow("breaker", status.dependency, state, ", ".join(details))


def breaker_rows(
    project: Project | None, breakers: BreakerRegistry | None = None
) -> list[StatusRow]:
    """A row per breaker: the project's dependencies and any with shared state."""
    breakers = breakers or registry()
    configs = project_dependencies(project) if project is not None else {}
    names = set(configs) | {b.dependency for b in breakers.breakers()}
    store = breakers.store
    if store is not None and breakers.store_healthy():
        try:
            names |= set(store.dependencies())
        except Exception as exc:  # noqa: BLE001 - shown as local state, with a warning
            breakers.store_failed(exc)
    return [_breaker_row(breakers.get(name, configs.get(name)).status()) for name in sorted(names)]


def version_rows(project: Project, root: DataRoot) -> list[StatusRow]:
    """A row per pipeline with a canary candidate: which version production runs use."""
    rows = []
    for pipeline in project.pipelines:
        if pipeline.config.canary is None:
            continue  # without a candidate, v1 is all there is: nothing to read or show
        version = live_version(pipeline, root)
        details = [f"since {version.since}" if version.since else "never promoted"]
        if version.by:
            details.append(f"by {version.by}")
        if version.note:
            details.append(version.note)
        rows.append(StatusRow("version", pipeline.name, version.version, ", ".join(details)))
    return rows


def dataset_rows(project: Project, root: DataRoot) -> list[StatusRow]:
    """A row per dataset the project produces: partitions on disk and when it last changed."""
    rows = []
    for dataset, producer in sorted(project.producers.items()):
        files = root.dataset_files(dataset)
        if not files:
            rows.append(StatusRow("dataset", dataset, "empty", f"produced by {producer.name}"))
            continue
        latest = max(root.fs.modified(path) for path in files)
        if latest.tzinfo is None:
            latest = latest.replace(tzinfo=UTC)
        age = datetime.now(UTC) - latest
        rows.append(
            StatusRow(
                "dataset",
                dataset,
                "updated",
                f"{len(files)} partition(s), last {latest:%Y-%m-%d %H:%M:%S} UTC "
                f"({_ago(age.total_seconds())}), produced by {producer.name}",
            )
        )
    return rows


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"


def status_rows(project: Project | None, root: DataRoot | None = None) -> list[StatusRow]:
    """Live versions, breaker states and datasets; without a valid project, breakers only."""
    if project is None or root is None:
        return breaker_rows(project)
    return [*version_rows(project, root), *breaker_rows(project), *dataset_rows(project, root)]
