"""What a deployment looks like, independent of how it is registered (prefect.yaml or Python)."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowfactory.orchestration import PIPELINE_ENTRYPOINT, PIPELINE_FLOW

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_WORK_POOL",
    "MANAGED_TAG",
    "PREFECT_VERSION",
    "DeploymentSpec",
    "ScheduleSpec",
    "TriggerSpec",
]

DEFAULT_WORK_POOL: Final = "flowfactory"
MANAGED_TAG: Final = "flowfactory"
DEFAULT_PROJECT: Final = "flowfactory"
PREFECT_VERSION: Final = "3.9.1"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True)


class ScheduleSpec(_Spec):
    """A schedule as prefect.yaml writes it."""

    cron: str | None = None
    interval: float | None = None
    timezone: str
    parameters: dict[str, str] | None = None


class TriggerSpec(_Spec):
    """A deployment event trigger, in prefect.yaml's vocabulary."""

    type: Literal["event"] = "event"
    name: str
    enabled: bool = True
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    match_related: dict[str, str | list[str]] | None = None
    after: list[str] | None = None
    expect: list[str]
    for_each: list[str] | None = None
    threshold: int = 1
    within: float = 0.0
    parameters: dict[str, str] = Field(default_factory=dict)

    def as_prefect_yaml(self) -> dict[str, object]:
        """The trigger entry of a deployment in prefect.yaml."""
        return self.model_dump(exclude_none=True)


class DeploymentSpec(_Spec):
    """One Prefect deployment: a pipeline's, or one of flowfactory's own (router, SLA)."""

    name: str
    flow_name: str = PIPELINE_FLOW
    entrypoint: str = PIPELINE_ENTRYPOINT
    description: str
    version: str
    tags: list[str]
    parameters: dict[str, str]
    work_pool: str
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    triggers: list[TriggerSpec] = Field(default_factory=list)

    def as_prefect_yaml(self) -> dict[str, object]:
        """The deployment entry of prefect.yaml."""
        entry: dict[str, object] = {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "tags": self.tags,
            "entrypoint": self.entrypoint,
            "parameters": self.parameters,
            "work_pool": {"name": self.work_pool, "work_queue_name": None, "job_variables": {}},
            "schedules": [s.model_dump(exclude_none=True) for s in self.schedules],
        }
        if self.triggers:
            entry["triggers"] = [t.as_prefect_yaml() for t in self.triggers]
        return entry
