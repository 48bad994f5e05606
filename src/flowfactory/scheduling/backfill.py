"""The plan of a backfill: which partitions of a pipeline to run again, and which to skip, why.

The partitions that exist are those of the pipeline's input datasets (the trigger's inputs when it
has one), ordered by their values, numbers numerically. A pipeline that reads no partitioned
dataset (files, an API) has none to list: its partitions are given by value, either one by one or
as a range whose ends differ in a single whole number (``month=1`` to ``month=12``).

For a consumer with ``partition: same`` each partition runs with its input state and that state's
run key (see ``claims``), so that the backfill's run is the one run of that state, whoever else
announces it. The partitions whose state was already consumed are skipped unless forced
(``without_consumed``, given the keys of the completed runs). Other pipelines have no input
state per partition: every partition asked for runs.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from flowfactory.config import DatasetSource, FileSource, HttpSource, PipelineFile
from flowfactory.data import DataRoot, Partition
from flowfactory.errors import UsageError
from flowfactory.scheduling.claims import run_key
from flowfactory.scheduling.inputs import readiness
from flowfactory.scheduling.pending import source_partitions

__all__ = [
    "BackfillItem",
    "BackfillPlan",
    "known_partitions",
    "partition_order",
    "plan_backfill",
    "select_partitions",
]

# How many existing partitions an error about an unknown one names.
_SHOWN: Final = 5

_ValueKey = tuple[int, float, str]


@dataclass(frozen=True)
class BackfillItem:
    """One partition of a backfill: run it (for its input state, under its run key), or skip it."""

    partition: str
    state: str | None = None
    skip: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class BackfillPlan:
    """The partitions of one pipeline a backfill covers, in order."""

    pipeline: str
    items: tuple[BackfillItem, ...]

    @property
    def to_run(self) -> list[BackfillItem]:
        """The partitions that get a run."""
        return [item for item in self.items if item.skip is None]

    @property
    def skipped(self) -> list[BackfillItem]:
        """The partitions that get no run, each with its reason."""
        return [item for item in self.items if item.skip is not None]

    def without_consumed(self, consumed: Container[str]) -> BackfillPlan:
        """The same plan, skipping the partitions whose run key is among ``consumed``."""
        return replace(self, items=tuple(_unless_consumed(i, consumed) for i in self.items))


def _unless_consumed(item: BackfillItem, consumed: Container[str]) -> BackfillItem:
    if item.key is None or item.key not in consumed:
        return item
    return BackfillItem(item.partition, skip=f"input state {item.state} was already consumed")


def _value_key(value: str) -> _ValueKey:
    # Numbers before text and by value, so month=10 comes after month=9.
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def partition_order(partition: Partition) -> tuple[tuple[str, _ValueKey], ...]:
    """A sort key: the partition's columns in order, each value numerically when a number."""
    return tuple((column, _value_key(value)) for column, value in partition.values)


def _parse(text: str) -> Partition:
    try:
        return Partition.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _input_sources(pipeline: PipelineFile) -> list[DatasetSource | FileSource | HttpSource]:
    trigger = pipeline.config.trigger
    inputs = pipeline.config.inputs
    if trigger is None:
        return list(inputs.values())
    tables = pipeline.config.input_dataset_names
    return [inputs[tables[dataset]] for dataset in trigger.on]


def known_partitions(pipeline: PipelineFile, root: DataRoot) -> list[str]:
    """The partitions the pipeline's input datasets have, ordered by their values."""
    found: set[str] = set()
    for source in _input_sources(pipeline):
        found.update(source_partitions(root, source))
    found.discard("")  # an unpartitioned input holds every partition
    return _ordered(Partition.parse(text) for text in found)


def _ordered(partitions: Iterable[Partition]) -> list[str]:
    return [str(p) for p in sorted(set(partitions), key=partition_order)]


def _unknown(pipeline: str, partition: Partition, known: Sequence[str]) -> UsageError:
    shown = ", ".join(known[:_SHOWN])
    more = f", ... ({len(known)} in all)" if len(known) > _SHOWN else ""
    return UsageError(
        f"partition {str(partition)!r} is not among the partitions of {pipeline}'s inputs: "
        f"{shown}{more}"
    )


def _expand(pipeline: str, first: Partition, last: Partition) -> list[str]:
    """The partitions from ``first`` to ``last`` when they differ in one whole-number value."""
    differing = [
        (column, a, b)
        for (column, a), (_, b) in zip(first.values, last.values, strict=True)
        if a != b
    ]
    if not differing:
        return [str(first)]
    column, start, end = differing[0]
    if len(differing) == 1 and start.isdigit() and end.isdigit():
        return [
            str(Partition(tuple((c, str(n) if c == column else v) for c, v in first.values)))
            for n in range(int(start), int(end) + 1)
        ]
    raise UsageError(
        f"the inputs of {pipeline} have no partition folders to take the range "
        f"{first}..{last} from; list the partitions with --partitions, or give --from and "
        "--to that differ in one whole-number value"
    )


def select_partitions(
    pipeline: str,
    known: Sequence[str],
    *,
    first: str | None = None,
    last: str | None = None,
    listed: Sequence[str] | None = None,
) -> list[str]:
    """The partitions a backfill covers, in order: a range ``first``..``last`` or ``listed``.

    ``known`` are the partitions the inputs have, in any order; when there are none, partitions
    are taken as given. A partition outside ``known`` is a UsageError naming those that exist.
    """
    if (listed is not None) == (first is not None or last is not None):
        raise UsageError("give either --from and --to, or --partitions")
    known = _ordered(_parse(text) for text in known)
    known_set = set(known)
    if listed is not None:
        wanted = [_parse(text) for text in listed if text.strip()]
        if not wanted:
            raise UsageError("--partitions names no partition")
        for partition in wanted:
            if known and str(partition) not in known_set:
                raise _unknown(pipeline, partition, known)
        return _ordered(wanted)
    if first is None or last is None:
        raise UsageError("a range needs both --from and --to")
    start, end = _parse(first), _parse(last)
    if start.columns != end.columns:
        raise UsageError(f"--from {start} and --to {end} name different partition columns")
    if partition_order(start) > partition_order(end):
        raise UsageError(f"--from {start} comes after --to {end}")
    if not known:
        return _expand(pipeline, start, end)
    for endpoint in (start, end):
        if str(endpoint) not in known_set:
            raise _unknown(pipeline, endpoint, known)
    low, high = partition_order(start), partition_order(end)
    return [p for p in known if low <= partition_order(Partition.parse(p)) <= high]


def _item(pipeline: PipelineFile, root: DataRoot, partition: str, *, force: bool) -> BackfillItem:
    trigger = pipeline.config.trigger
    if trigger is None or trigger.partition != "same":
        return BackfillItem(partition)
    inputs = readiness(pipeline, root, Partition.parse(partition))
    if not inputs.ready:
        return BackfillItem(
            partition, skip=f"inputs not ready: waiting for {', '.join(inputs.missing)}"
        )
    if force:
        # No state: the run goes ahead even when a run of its state completed already.
        return BackfillItem(partition)
    return BackfillItem(partition, state=inputs.state, key=run_key(inputs))


def plan_backfill(
    pipeline: PipelineFile,
    root: DataRoot,
    *,
    first: str | None = None,
    last: str | None = None,
    listed: Sequence[str] | None = None,
    force: bool = False,
) -> BackfillPlan:
    """Which partitions of ``pipeline`` a backfill runs and which it skips (see the module)."""
    partitions = select_partitions(
        pipeline.name, known_partitions(pipeline, root), first=first, last=last, listed=listed
    )
    return BackfillPlan(
        pipeline.name, tuple(_item(pipeline, root, p, force=force) for p in partitions)
    )
