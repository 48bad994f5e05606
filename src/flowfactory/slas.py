"""SLA checks for open-source Prefect: what the SLA flow does when an automation fires."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from flowfactory import events
from flowfactory.breaker.integration import notification_breaker
from flowfactory.config import DatasetSource, HttpSource
from flowfactory.datasets import DataRoot
from flowfactory.engine import find_pipeline
from flowfactory.loader import PipelineFile
from flowfactory.settings import Settings, get_settings

__all__ = ["check_sla", "last_input_update"]


def last_input_update(pipeline: PipelineFile, root: DataRoot) -> datetime | None:
    """When any input of the pipeline last changed (None if none has data)."""
    stamps: list[float] = []
    for source in pipeline.config.inputs.values():
        if isinstance(source, HttpSource):
            continue  # an API keeps no modification time
        if isinstance(source, DatasetSource):
            fs, files = root.fs, root.dataset_files(source.dataset)
        else:
            # Files (landing CSVs, say) are inputs too: without them such a deadline always misses.
            fs, pattern = root.source_fs_and_pattern(source)
            files = fs.glob(pattern) if any(ch in pattern for ch in "*?[") else [pattern]
            files = [f for f in files if fs.isfile(f)]
        stamps.extend(fs.modified(path).timestamp() for path in files)
    return datetime.fromtimestamp(max(stamps), UTC) if stamps else None


def _deadline_missed(pipeline: PipelineFile, root: DataRoot, now: datetime) -> tuple[bool, str]:
    sla = pipeline.config.sla
    if sla is None or sla.deadline is None:
        return False, "no deadline configured"
    tz = ZoneInfo(sla.deadline.timezone)
    ticks = croniter(sla.deadline.cron, now.astimezone(tz))
    ticks.get_prev(datetime)  # the tick this check runs for
    previous: datetime = ticks.get_prev(datetime)
    latest = last_input_update(pipeline, root)
    if latest is not None and latest >= previous:
        return False, f"inputs updated at {latest.isoformat()}"
    when = latest.isoformat() if latest else "never"
    return True, f"inputs last updated {when}, not since {previous.isoformat()}"


async def _notify(block_name: str, subject: str, body: str) -> None:
    # Importing the module registers Prefect's notification block classes, so that loading a
    # document by its `<type slug>/<name>` gives the concrete class.
    import prefect.blocks.notifications  # noqa: F401, PLC0415
    from prefect.blocks.abstract import NotificationBlock  # noqa: PLC0415
    from prefect.blocks.core import Block  # noqa: PLC0415
    from prefect.logging import get_run_logger  # noqa: PLC0415

    logger = get_run_logger()
    try:
        block: Block = await Block.aload(block_name)
        if not isinstance(block, NotificationBlock):
            logger.warning("block %r is not a notification block; nobody notified", block_name)
            return
        # The notification service is an external dependency: behind its breaker.
        await notification_breaker(block_name).acall(block.notify, body=body, subject=subject)
    except Exception as exc:  # noqa: BLE001 - a failed notification must not hide the miss
        logger.warning("could not notify through block %r: %s", block_name, exc)


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
        missed, actual = _deadline_missed(
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
        await _notify(block, f"SLA missed: {pipeline} ({sla})", body)
    return True
