"""When is a consumer ready for a partition, and on which input state?

A consumer with ``trigger: {on: [a, b], require: all, partition: same}`` is ready for partition P
once every input has P. Its *input state* for P is a hash of the inputs' versions (size and
modification time of their files; unchanged content is never rewritten, so versions move only
with the data). Whoever updates a dataset evaluates readiness right away and creates the
consumer's run for that state under a key derived from (consumer, partition, input state), so
that every other announcement of the state, from any host, gets the same run back (see
``claims``); it emits ``pipeline.ready``, whose event id is derived the same way. A run whose
inputs moved before it started leaves the work to the run of the newer state and ends as
Skipped. Reconciliation re-derives readiness from the data itself, so an update whose event was
lost (server down, restart) is picked up on the next pass.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Final

from flowfactory.config import DatasetSource, FileSource, HttpSource, PipelineFile, Project
from flowfactory.data import DataRoot, Partition
from flowfactory.errors import UsageError

__all__ = [
    "MISSING",
    "Readiness",
    "check_dataset",
    "consumers_of",
    "input_versions",
    "known_datasets",
    "readiness",
]

# The version of an input that has no data (yet): differs from any real version.
MISSING: Final = "missing"
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
        fs, files = root.source_files(source)
        if not files:
            return None
        return _combine([root.file_version(f, fs) for f in files])
    if partition is not None:
        exact = root.partition_files(source.dataset, partition)
        return exact.version if exact is not None else None
    parts = root.dataset_partitions(source.dataset).values()
    return _combine([p.version for p in parts]) if parts else None


def input_versions(
    pipeline: PipelineFile, root: DataRoot, partition: Partition | None
) -> dict[str, str | None]:
    """The version of every input a run for ``partition`` reads, by table name.

    None for an HTTP source, whose answers carry no version; ``MISSING`` for an input with no data.
    """
    return {
        table: None
        if isinstance(source, HttpSource)
        else _input_version(source, root, partition) or MISSING
        for table, source in pipeline.config.inputs.items()
    }


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


def known_datasets(project: Project) -> set[str]:
    """Every dataset a pipeline produces or reads (external ones included)."""
    names = set(project.producers)
    for pipeline in project.pipelines:
        names.update(pipeline.config.input_dataset_names)
    return names


def check_dataset(project: Project, dataset: str, partition: str) -> None:
    """Raise a UsageError for an unknown dataset or a malformed partition."""
    known = known_datasets(project)
    if dataset not in known:
        close = difflib.get_close_matches(dataset, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"no pipeline reads or produces dataset {dataset!r}{hint}")
    if partition:
        try:
            Partition.parse(partition)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
