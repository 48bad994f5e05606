"""The flows deployments run, by name and by entrypoint.

Entrypoints are module paths into the installed package (flowfactory.orchestration.flows), not
file paths: Prefect's deploy, its workers and flowfactory's own runs import them from wherever
flowfactory is installed, so a project holds pipeline files only.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CANARY_ENTRYPOINT",
    "CANARY_FLOW",
    "FLOWS_MODULE",
    "PIPELINE_ENTRYPOINT",
    "PIPELINE_FLOW",
    "RECONCILE_ENTRYPOINT",
    "ROUTER_ENTRYPOINT",
    "SLA_ENTRYPOINT",
]

FLOWS_MODULE: Final = "flowfactory.orchestration.flows"
PIPELINE_FLOW: Final = "pipeline"
PIPELINE_ENTRYPOINT: Final = f"{FLOWS_MODULE}.pipeline"
CANARY_FLOW: Final = "canary"
CANARY_ENTRYPOINT: Final = f"{FLOWS_MODULE}.canary"
ROUTER_ENTRYPOINT: Final = f"{FLOWS_MODULE}.dataset_router"
RECONCILE_ENTRYPOINT: Final = f"{FLOWS_MODULE}.reconcile"
SLA_ENTRYPOINT: Final = f"{FLOWS_MODULE}.sla_check"
