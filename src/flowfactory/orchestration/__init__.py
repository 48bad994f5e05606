"""The layer that talks to Prefect at run time: the tasks and flow bodies of a pipeline run, the
canary flow, events, announcing updates to consumers, SLA checks, notifications, breaker
events and HTTP sources. Everything below it is plain Python; the shells here act on it.
"""

from __future__ import annotations

from flowfactory.orchestration.announce import (
    announce_update,
    reconcile_project,
    route_update,
)
from flowfactory.orchestration.artifacts import (
    artifact_key,
)
from flowfactory.orchestration.breakers import (
    RetryCondition,
    install_events,
    notification_breaker,
    retry_condition,
    source_breaker,
    transition_event,
)
from flowfactory.orchestration.canary import (
    canary_run,
    change_live_version,
    run_canary_now,
    version_run,
)
from flowfactory.orchestration.entrypoints import (
    CANARY_ENTRYPOINT,
    CANARY_FLOW,
    PIPELINE_ENTRYPOINT,
    PIPELINE_FLOW,
)
from flowfactory.orchestration.events import (
    CANARY_FAILED,
    CANARY_INCONCLUSIVE,
    CANARY_PASSED,
    CIRCUIT_BREAKER_CLOSED,
    CIRCUIT_BREAKER_HALF_OPENED,
    CIRCUIT_BREAKER_OPENED,
    DATASET_UPDATED,
    PARTITION_LABEL,
    PIPELINE_PROMOTED,
    PIPELINE_READY,
    PIPELINE_ROLLED_BACK,
    ROUTE_LABEL,
    SCHEMA_INCOMPATIBLE,
    SLA_MISSED,
    STATE_LABEL,
    announce_ready,
    breaker_resource,
    dataset_resource,
    emit,
    emit_verdict,
    emit_version_change,
    pipeline_resource,
    schema_fingerprint,
)
from flowfactory.orchestration.http import (
    is_client_error,
    read_http,
)
from flowfactory.orchestration.notify import (
    notify,
)
from flowfactory.orchestration.pipeline import (
    run_pipeline,
)
from flowfactory.orchestration.prefect_api import (
    api_is_healthy,
)
from flowfactory.orchestration.slas import (
    check_sla,
)
from flowfactory.orchestration.tasks import (
    announce,
    check_contract,
    extract,
    load,
    transform,
)

__all__ = [
    "CANARY_ENTRYPOINT",
    "CANARY_FAILED",
    "CANARY_FLOW",
    "CANARY_INCONCLUSIVE",
    "CANARY_PASSED",
    "CIRCUIT_BREAKER_CLOSED",
    "CIRCUIT_BREAKER_HALF_OPENED",
    "CIRCUIT_BREAKER_OPENED",
    "DATASET_UPDATED",
    "PARTITION_LABEL",
    "PIPELINE_ENTRYPOINT",
    "PIPELINE_FLOW",
    "PIPELINE_PROMOTED",
    "PIPELINE_READY",
    "PIPELINE_ROLLED_BACK",
    "ROUTE_LABEL",
    "SCHEMA_INCOMPATIBLE",
    "SLA_MISSED",
    "STATE_LABEL",
    "RetryCondition",
    "announce",
    "announce_ready",
    "announce_update",
    "api_is_healthy",
    "artifact_key",
    "breaker_resource",
    "canary_run",
    "change_live_version",
    "check_contract",
    "check_sla",
    "dataset_resource",
    "emit",
    "emit_verdict",
    "emit_version_change",
    "extract",
    "install_events",
    "is_client_error",
    "load",
    "notification_breaker",
    "notify",
    "pipeline_resource",
    "read_http",
    "reconcile_project",
    "retry_condition",
    "route_update",
    "run_canary_now",
    "run_pipeline",
    "schema_fingerprint",
    "source_breaker",
    "transform",
    "transition_event",
    "version_run",
]
