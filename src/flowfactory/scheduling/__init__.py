"""Data-aware scheduling, free of Prefect: when a consumer is ready for a partition (its input
state), the ledger of consumed input states and claims, and the SLA judgements.
"""

from __future__ import annotations

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
    "last_input_update",
    "readiness",
    "reconcile",
    "record_consumed",
    "release",
]
