"""What `flowfactory status` shows: typed rows, one kind per contributor (breakers for now)."""

from __future__ import annotations

from dataclasses import dataclass

from flowfactory.breaker.core import BreakerRegistry, BreakerStatus, registry
from flowfactory.breaker.integration import source_dependency
from flowfactory.config import CircuitBreakerConfig
from flowfactory.loader import Project

__all__ = ["StatusRow", "breaker_rows", "project_dependencies", "status_rows"]


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


def status_rows(project: Project | None) -> list[StatusRow]:
    """Every status row; other kinds (versions, datasets) add their rows here."""
    return breaker_rows(project)
