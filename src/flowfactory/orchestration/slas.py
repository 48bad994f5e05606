"""The SLA flow's body: what it does when an SLA automation fires or a deadline tick comes."""

from __future__ import annotations

from datetime import UTC, datetime

from flowfactory.config import find_pipeline
from flowfactory.data import DataRoot
from flowfactory.orchestration import events
from flowfactory.orchestration.breakers import notification_breaker
from flowfactory.orchestration.notify import notify
from flowfactory.scheduling import deadline_missed
from flowfactory.settings import Settings, get_settings

__all__ = ["check_sla"]


async def check_sla(
    pipeline: str,
    sla: str,
    expected: str,
    subject: str = "",
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> bool:
    """Emit ``sla.missed`` and notify when the SLA is missed; True if it was.

    A max_duration or freshness check runs only when its automation fired, so the miss is the
    firing itself; a deadline check runs at each tick of its cron and looks at the data.
    """
    settings = settings or get_settings()
    config = find_pipeline(pipeline, settings)
    if sla == "deadline":
        missed, actual = deadline_missed(
            config, DataRoot(settings.data_root_url), now or datetime.now(UTC)
        )
    else:
        missed, actual = True, f"{subject or pipeline}: no completion within {expected}"
    if not missed:
        return False
    events.emit(
        events.SLA_MISSED,
        events.pipeline_resource(pipeline),
        {"sla": sla, "expected": expected, "actual": actual, "subject": subject},
    )
    block = config.config.sla.notify if config.config.sla else None
    if block:
        body = f"{pipeline}: {sla} {expected}; {actual}"
        await notify(block, f"SLA missed: {pipeline} ({sla})", body, breaker=notification_breaker)
    return True
