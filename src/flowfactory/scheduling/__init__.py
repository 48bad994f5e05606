"""Data-aware scheduling, free of Prefect: when a consumer is ready for a partition (its input
state), the claims on input states (held by Prefect flow runs; the decisions here as values),
the record of each partition write, the partition view (stale partitions, pending consumers),
the plan of a backfill, and the SLA judgements.
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
from flowfactory.scheduling.claims import (
    KEY_PREFIX,
    KeyedRun,
    RunPhase,
    Skip,
    admit,
    is_consumed,
    run_key,
    runs_to_start,
)
from flowfactory.scheduling.inputs import (
    MISSING,
    Readiness,
    check_dataset,
    consumers_of,
    input_versions,
    known_datasets,
    readiness,
)
from flowfactory.scheduling.partition_view import (
    PartitionRow,
    Staleness,
    partition_rows,
)
from flowfactory.scheduling.pending import (
    consumer_states,
    dataset_partitions,
    evaluate_update,
    pending_consumers,
    reconcile,
    source_partitions,
)
from flowfactory.scheduling.slas import (
    deadline_missed,
    last_input_update,
)
from flowfactory.scheduling.written import (
    STATE_DIR,
    PartitionRecord,
    read_written,
    record_written,
)

__all__ = [
    "KEY_PREFIX",
    "MISSING",
    "STATE_DIR",
    "BackfillItem",
    "BackfillPlan",
    "KeyedRun",
    "PartitionRecord",
    "PartitionRow",
    "Readiness",
    "RunPhase",
    "Skip",
    "Staleness",
    "admit",
    "check_dataset",
    "consumer_states",
    "consumers_of",
    "dataset_partitions",
    "deadline_missed",
    "evaluate_update",
    "input_versions",
    "is_consumed",
    "known_datasets",
    "known_partitions",
    "last_input_update",
    "partition_order",
    "partition_rows",
    "pending_consumers",
    "plan_backfill",
    "read_written",
    "readiness",
    "reconcile",
    "record_written",
    "run_key",
    "runs_to_start",
    "select_partitions",
    "source_partitions",
]
