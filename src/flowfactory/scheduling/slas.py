"""SLA judgements over the data: when the inputs last changed, and whether a deadline was missed."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from flowfactory.config import DatasetSource, HttpSource, PipelineFile
from flowfactory.data import DataRoot

__all__ = ["deadline_missed", "last_input_update"]


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
            fs, files = root.source_files(source)
        stamps.extend(fs.modified(path).timestamp() for path in files)
    return datetime.fromtimestamp(max(stamps), UTC) if stamps else None


def deadline_missed(pipeline: PipelineFile, root: DataRoot, now: datetime) -> tuple[bool, str]:
    """Whether the inputs missed the deadline tick before ``now``, and what was seen."""
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
