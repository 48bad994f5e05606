"""Data-aware scheduling, free of Prefect: when a consumer is ready for a partition (its input
state), the ledger of consumed input states and claims, the plan of a backfill, and the SLA
judgements.
"""

from __future__ import annotations

from flowfactory.scheduling.backfill import (
    BackfillItem,
    BackfillPlan,
    known_partitions,
    partition_order,
    plan_backfill,
    select_partitions,
)
from flowfactory.scheduling.inputs import (
    Readiness,
    check_dataset,
    consumers_of,
    known_datasets,
    readiness,
)
from flowfactory.scheduling.ledger import (
    Skip,
    admit,
    claim,
    consumed_state,
    record_consumed,
    release,
)
from flowfactory.scheduling.pending import (
    evaluate_update,
    reconcile,
)
from flowfactory.scheduling.slas import (
    deadline_missed,
    last_input_update,
)

__all__ = [
    "BackfillItem",
    "BackfillPlan",
    "Readiness",
    "Skip",
    "admit",
    "check_dataset",
    "claim",
    "consumed_state",
    "consumers_of",
    "deadline_missed",
    "evaluate_update",
    "known_datasets",
    "known_partitions",
    "last_input_update",
    "partition_order",
    "plan_backfill",
    "readiness",
    "reconcile",
    "record_consumed",
    "release",
    "select_partitions",
]
