"""From pipeline files to Prefect deployments: deployment specs, trigger and SLA automations, the
rendered prefect.yaml, registration on an API, the dataset lineage, and the scaffold of a new
project (`flowfactory init`, from the templates shipped in this package).
"""

from __future__ import annotations

from flowfactory.deploy.automations import (
    ROUTER,
    SLA,
    sla_schedules,
    sla_triggers,
    system_deployments,
)
from flowfactory.deploy.lineage import (
    Edge,
    Lineage,
    lineage,
    render_dot,
    render_mermaid,
)
from flowfactory.deploy.project import (
    canary_deployment_name,
    canary_deployment_spec,
    config_version,
    deployment_spec,
    project_specs,
    project_tag,
)
from flowfactory.deploy.register import (
    DeployReport,
    deploy_project,
    lineage_artifact_key,
)
from flowfactory.deploy.render import (
    render_prefect_yaml,
)
from flowfactory.deploy.specs import (
    DEFAULT_PROJECT,
    DEFAULT_WORK_POOL,
    MANAGED_TAG,
    PREFECT_VERSION,
    DeploymentSpec,
    ScheduleSpec,
    TriggerSpec,
)

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_WORK_POOL",
    "MANAGED_TAG",
    "PREFECT_VERSION",
    "ROUTER",
    "SLA",
    "DeployReport",
    "DeploymentSpec",
    "Edge",
    "Lineage",
    "ScheduleSpec",
    "TriggerSpec",
    "canary_deployment_name",
    "canary_deployment_spec",
    "config_version",
    "deploy_project",
    "deployment_spec",
    "lineage",
    "lineage_artifact_key",
    "project_specs",
    "project_tag",
    "render_dot",
    "render_mermaid",
    "render_prefect_yaml",
    "sla_schedules",
    "sla_triggers",
    "system_deployments",
]
