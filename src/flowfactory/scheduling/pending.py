"""Pending consumers: those whose inputs are ready for a partition in a state not yet consumed.

Asked after each update (the consumers it makes ready) and by reconciliation, which re-derives
readiness from the data itself, so an update whose event was lost is picked up on the next pass.
Which states were consumed is known to Prefect (see ``claims``): the functions here take the
keys of the completed runs as a value, or list every ready state for the shell to look up.
"""

from __future__ import annotations

from collections.abc import Container, Iterator

from flowfactory.config import DatasetSource, FileSource, HttpSource, Project
from flowfactory.data import DataRoot, Partition, PartitionFiles
from flowfactory.scheduling.claims import is_consumed
from flowfactory.scheduling.inputs import Readiness, consumers_of, known_datasets, readiness

__all__ = [
    "consumer_states",
    "dataset_partitions",
    "evaluate_update",
    "pending_consumers",
    "reconcile",
    "source_partitions",
]


def evaluate_update(
    project: Project, root: DataRoot, dataset: str, partition: str
) -> list[Readiness]:
    """The consumers that an update of ``dataset`` (partition text, "" for all) makes ready.

    Consumed or not: the run of a consumed state already exists, and creating it again by its
    key gives that run back instead of a new one.
    """
    scope = Partition.parse(partition) if partition else None
    found = []
    for consumer in consumers_of(project, dataset):
        state = readiness(consumer, root, scope, dataset)
        if state.ready:
            found.append(state)
    return found


def dataset_partitions(root: DataRoot, dataset: str) -> dict[str, PartitionFiles]:
    """The partitions of a dataset on disk (partition text, "" when unpartitioned), in order."""
    return root.dataset_partitions(dataset)


def pending_consumers(
    project: Project,
    root: DataRoot,
    dataset: str,
    partition: str,
    consumed: Container[str],
) -> tuple[list[str], list[str]]:
    """Consumers of a dataset's partition: (ready on a state not yet consumed, still waiting).

    ``consumed`` holds the run keys of the consumed states. A consumer waiting for its other
    inputs is not pending yet: nothing would start it now.
    """
    scope = Partition.parse(partition) if partition else None
    pending, waiting = [], []
    for consumer in consumers_of(project, dataset):
        state = readiness(consumer, root, scope)
        if not state.ready:
            waiting.append(consumer.name)
        elif not is_consumed(state, consumed):
            pending.append(consumer.name)
    return pending, waiting


def consumer_states(project: Project, root: DataRoot, datasets: list[str]) -> list[Readiness]:
    """The ready state of every consumer of every partition of ``datasets`` (all when empty).

    What the partition view asks about: the shell looks their runs up in one go.
    """
    found: dict[tuple[str, str], Readiness] = {}
    for dataset in datasets or sorted(known_datasets(project)):
        for partition in dataset_partitions(root, dataset):
            scope = Partition.parse(partition) if partition else None
            for consumer in consumers_of(project, dataset):
                state = readiness(consumer, root, scope)
                if state.ready:
                    found[state.pipeline, state.partition] = state
    return list(found.values())


def source_partitions(root: DataRoot, source: DatasetSource | FileSource | HttpSource) -> set[str]:
    """The partition folders a dataset source has ("" for an unpartitioned one; none for others)."""
    if not isinstance(source, DatasetSource):
        return set()
    return set(dataset_partitions(root, source.dataset))


def reconcile(project: Project, root: DataRoot) -> Iterator[Readiness]:
    """Every (consumer, partition) whose inputs are ready, in the state they are in now.

    The shell keeps those whose state has no run yet, or a failed one (``claims.runs_to_start``).
    """
    for consumer in project.pipelines:
        trigger = consumer.config.trigger
        if trigger is None:
            continue
        if trigger.partition == "all":
            candidates: set[str] = {""}
        else:
            tables = consumer.config.input_dataset_names
            candidates = set().union(
                *(source_partitions(root, consumer.config.inputs[tables[d]]) for d in trigger.on)
            )
        for partition in sorted(candidates):
            scope = Partition.parse(partition) if partition else None
            state = readiness(consumer, root, scope)
            if state.ready:
                yield state
