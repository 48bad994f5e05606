"""Data-aware scheduling: when is a consumer ready for a partition, and has it consumed it yet?

A consumer with ``trigger: {on: [a, b], require: all, partition: same}`` is ready for partition P
once every input has P. Its *input state* for P is a hash of the inputs' versions (size and
modification time of their files; unchanged content is never rewritten, so versions move only
with the data). Whoever updates a dataset evaluates readiness right away and emits
``pipeline.ready`` with an event id derived from (consumer, partition, input state): duplicates
of that event, from any producer or a re-run, carry the same id and Prefect drops them. The
consumer records the state it consumed; a run that finds its state already consumed, or claimed
by a concurrent run, ends as Skipped. Reconciliation re-derives readiness from the data itself,
so an update whose event was lost (server down, restart) is picked up on the next pass.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from flowfactory.config import DatasetSource, FileSource, HttpSource
from flowfactory.datasets import PART_FILE, DataRoot, Partition
from flowfactory.loader import PipelineFile, Project

__all__ = [
    "Readiness",
    "claim",
    "consumed_state",
    "consumers_of",
    "evaluate_update",
    "readiness",
    "reconcile",
    "record_consumed",
    "release",
]

_STATE_DIR: Final = "_flowfactory"
_NAMESPACE: Final = uuid.UUID("6f6c7f3e-6b1e-4b7e-9a53-2a1b0c6d9e11")


@dataclass(frozen=True)
class Readiness:
    """Whether a consumer can run for a partition, and on which input versions."""

    pipeline: str
    partition: str
    versions: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """True when every required input is there."""
        return not self.missing

    @property
    def state(self) -> str:
        """A hash of the partition and the input versions: what a run consumes."""
        text = json.dumps([self.partition, sorted(self.versions.items())])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def event_id(self) -> str:
        """The same for every announcement of this input state, so duplicates collapse."""
        return str(uuid.uuid5(_NAMESPACE, f"{self.pipeline}|{self.partition}|{self.state}"))


def consumers_of(project: Project, dataset: str) -> list[PipelineFile]:
    """Pipelines whose trigger names ``dataset``."""
    return [
        p
        for p in project.pipelines
        if p.config.trigger is not None and dataset in p.config.trigger.on
    ]


def _input_version(
    source: DatasetSource | FileSource | HttpSource, root: DataRoot, partition: Partition | None
) -> str | None:
    if isinstance(source, HttpSource):
        return None  # an API has no version to trigger on (trigger.on names no HTTP source)
    if isinstance(source, FileSource):
        # Files of an external dataset: the version of every file the source matches.
        fs, pattern = root.source_fs_and_pattern(source)
        files = sorted(fs.glob(pattern)) if any(ch in pattern for ch in "*?[") else [pattern]
        files = [f for f in files if fs.exists(f)]
        if not files:
            return None
        return _combine([root.file_version(f, fs) for f in files])
    if partition is not None:
        exact = root.partition_file(source.dataset, partition)
        return root.file_version(exact) if root.fs.exists(exact) else None
    files = root.dataset_files(source.dataset)
    return _combine([root.file_version(f) for f in files]) if files else None


def _combine(versions: list[str]) -> str:
    return hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]


def readiness(
    consumer: PipelineFile,
    root: DataRoot,
    partition: Partition | None,
    updated: str | None = None,
) -> Readiness:
    """Readiness of ``consumer`` for ``partition`` (None: all the data) after ``updated`` moved."""
    trigger = consumer.config.trigger
    if trigger is None:
        raise ValueError(f"pipeline {consumer.name!r} has no trigger")
    tables = consumer.config.input_dataset_names
    inputs = consumer.config.inputs
    scope = partition if trigger.partition == "same" else None
    versions: dict[str, str] = {}
    missing: list[str] = []
    for dataset in trigger.on:
        version = _input_version(inputs[tables[dataset]], root, scope)
        if version is None:
            missing.append(dataset)
        else:
            versions[dataset] = version
    if trigger.require == "any":
        # Any one input suffices: the one that moved, or any present when reconciling.
        wanted = [updated] if updated is not None else list(versions)
        missing = [] if any(d in versions for d in wanted) else [updated or trigger.on[0]]
    return Readiness(consumer.name, str(scope) if scope else "", versions, tuple(missing))


def evaluate_update(
    project: Project, root: DataRoot, dataset: str, partition: str
) -> list[Readiness]:
    """The consumers that an update of ``dataset`` (partition text, "" for all) makes ready."""
    scope = Partition.parse(partition) if partition else None
    found = []
    for consumer in consumers_of(project, dataset):
        state = readiness(consumer, root, scope, dataset)
        if state.ready and consumed_state(root, consumer.name, state.partition) != state.state:
            found.append(state)
    return found


def _partitions(root: DataRoot, source: DatasetSource | FileSource | HttpSource) -> set[str]:
    if not isinstance(source, DatasetSource):
        return set()
    base = root.dataset_dir(source.dataset)
    found = set()
    for path in root.dataset_files(source.dataset):
        # "" for an unpartitioned dataset: its one file is the partition a consumer reads.
        found.add(path[len(base) :].strip("/").removesuffix(PART_FILE).strip("/"))
    return found


def reconcile(project: Project, root: DataRoot) -> Iterator[Readiness]:
    """Every (consumer, partition) whose inputs are ready and whose state was not consumed."""
    for consumer in project.pipelines:
        trigger = consumer.config.trigger
        if trigger is None:
            continue
        if trigger.partition == "all":
            candidates: set[str] = {""}
        else:
            tables = consumer.config.input_dataset_names
            candidates = set().union(
                *(_partitions(root, consumer.config.inputs[tables[d]]) for d in trigger.on)
            )
        for partition in sorted(candidates):
            scope = Partition.parse(partition) if partition else None
            state = readiness(consumer, root, scope)
            if state.ready and consumed_state(root, consumer.name, state.partition) != state.state:
                yield state


# ------------------------------------------------------------------------------------------------
# What each consumer has consumed, kept next to the data (it must survive server restarts).


def _consumed_path(pipeline: str, partition: str) -> str:
    return f"{_STATE_DIR}/consumed/{pipeline}/{partition or '_all'}.json"


def consumed_state(root: DataRoot, pipeline: str, partition: str) -> str | None:
    """The input state a consumer last consumed for a partition."""
    data = root.get(_consumed_path(pipeline, partition))
    if data is None:
        return None
    state = json.loads(data).get("state")
    return str(state) if state else None


def record_consumed(root: DataRoot, state: Readiness, flow_run: str | None) -> None:
    """Remember that ``state`` was consumed (after the output was written)."""
    record = {"state": state.state, "versions": state.versions, "flow_run": flow_run}
    root.put_atomic(
        _consumed_path(state.pipeline, state.partition), json.dumps(record, indent=2).encode()
    )


def _claim_path(state: Readiness) -> str:
    return f"{_STATE_DIR}/claims/{state.pipeline}/{state.state}"


def claim(root: DataRoot, state: Readiness, flow_run: str | None) -> bool:
    """Take the right to consume ``state``; False when a concurrent run already has it."""
    return root.create_exclusive(_claim_path(state), (flow_run or "").encode())


def release(root: DataRoot, state: Readiness) -> None:
    """Give a claim back (the run failed, so another may try the same state)."""
    root.remove(_claim_path(state))
