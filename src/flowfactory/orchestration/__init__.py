"""The layer that talks to Prefect at run time: the flows every deployment runs (flows.py) and
their bodies (a pipeline run's tasks, the canary, the router, reconcile and SLA checks), events
and asset materializations, announcing updates and creating the consumer runs they make ready
(one per input state, fanout.py), backfills, the partition view as an artifact, notifications,
breaker events and HTTP sources. Everything below it is plain Python; the shells here act on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowfactory._lazy import lazy_exports

if TYPE_CHECKING:
    from flowfactory.orchestration.announce import (
        Announcer,
        announce_update,
        announce_updates,
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
        FLOWS_MODULE,
        PIPELINE_ENTRYPOINT,
        PIPELINE_FLOW,
        RECONCILE_ENTRYPOINT,
        ROUTER_ENTRYPOINT,
        SLA_ENTRYPOINT,
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
    from flowfactory.orchestration.fanout import (
        Cause,
        ConsumerRun,
        Outcome,
        consumed_keys,
        start_consumer_runs,
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
        commit,
        read,
        transform,
        write,
    )

# Prefect takes over a second to import: the Prefect-free modules (event names, entrypoints,
# artifact keys) stay importable without it, and each re-export loads its module on first use.
_HOMES: dict[str, str] = {
    "Announcer": "announce",
    "CANARY_ENTRYPOINT": "entrypoints",
    "Cause": "fanout",
    "ConsumerRun": "fanout",
    "Outcome": "fanout",
    "consumed_keys": "fanout",
    "start_consumer_runs": "fanout",
    "CANARY_FAILED": "events",
    "CANARY_FLOW": "entrypoints",
    "CANARY_INCONCLUSIVE": "events",
    "CANARY_PASSED": "events",
    "CIRCUIT_BREAKER_CLOSED": "events",
    "CIRCUIT_BREAKER_HALF_OPENED": "events",
    "CIRCUIT_BREAKER_OPENED": "events",
    "DATASET_UPDATED": "events",
    "FLOWS_MODULE": "entrypoints",
    "PARTITION_LABEL": "events",
    "PIPELINE_ENTRYPOINT": "entrypoints",
    "PIPELINE_FLOW": "entrypoints",
    "PIPELINE_PROMOTED": "events",
    "PIPELINE_READY": "events",
    "PIPELINE_ROLLED_BACK": "events",
    "RECONCILE_ENTRYPOINT": "entrypoints",
    "ROUTER_ENTRYPOINT": "entrypoints",
    "ROUTE_LABEL": "events",
    "RetryCondition": "breakers",
    "SCHEMA_INCOMPATIBLE": "events",
    "SLA_ENTRYPOINT": "entrypoints",
    "SLA_MISSED": "events",
    "STATE_LABEL": "events",
    "announce": "tasks",
    "announce_ready": "events",
    "announce_update": "announce",
    "announce_updates": "announce",
    "api_is_healthy": "prefect_api",
    "artifact_key": "artifacts",
    "breaker_resource": "events",
    "canary_run": "canary",
    "change_live_version": "canary",
    "check_contract": "tasks",
    "commit": "tasks",
    "check_sla": "slas",
    "dataset_resource": "events",
    "emit": "events",
    "emit_verdict": "events",
    "emit_version_change": "events",
    "install_events": "breakers",
    "is_client_error": "http",
    "notification_breaker": "breakers",
    "notify": "notify",
    "pipeline_resource": "events",
    "read": "tasks",
    "read_http": "http",
    "reconcile_project": "announce",
    "retry_condition": "breakers",
    "route_update": "announce",
    "run_canary_now": "canary",
    "run_pipeline": "pipeline",
    "schema_fingerprint": "events",
    "source_breaker": "breakers",
    "transform": "tasks",
    "transition_event": "breakers",
    "version_run": "canary",
    "write": "tasks",
}


__getattr__ = lazy_exports(__name__, _HOMES)

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
    "FLOWS_MODULE",
    "PARTITION_LABEL",
    "PIPELINE_ENTRYPOINT",
    "PIPELINE_FLOW",
    "PIPELINE_PROMOTED",
    "PIPELINE_READY",
    "PIPELINE_ROLLED_BACK",
    "RECONCILE_ENTRYPOINT",
    "ROUTER_ENTRYPOINT",
    "ROUTE_LABEL",
    "SCHEMA_INCOMPATIBLE",
    "SLA_ENTRYPOINT",
    "SLA_MISSED",
    "STATE_LABEL",
    "Announcer",
    "Cause",
    "ConsumerRun",
    "Outcome",
    "RetryCondition",
    "announce",
    "announce_ready",
    "announce_update",
    "announce_updates",
    "api_is_healthy",
    "artifact_key",
    "breaker_resource",
    "canary_run",
    "change_live_version",
    "check_contract",
    "check_sla",
    "commit",
    "consumed_keys",
    "dataset_resource",
    "emit",
    "emit_verdict",
    "emit_version_change",
    "install_events",
    "is_client_error",
    "notification_breaker",
    "notify",
    "pipeline_resource",
    "read",
    "read_http",
    "reconcile_project",
    "retry_condition",
    "route_update",
    "run_canary_now",
    "run_pipeline",
    "schema_fingerprint",
    "source_breaker",
    "start_consumer_runs",
    "transform",
    "transition_event",
    "version_run",
    "write",
]
