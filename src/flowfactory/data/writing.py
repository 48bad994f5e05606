"""Writing: a lazy plan streamed into partitioned Parquet, staged, checked, then committed.

``stage_output`` runs the plan once, on polars' streaming engine, into a staging folder: one
folder per partition, a large partition split into files of about ``max_file_size``. One
streaming aggregation over the staged files then measures every partition (rows, null counts
and a content hash of the rows: a sum of row hashes, so it does not depend on row order). With
a ``key``, each partition's rows are sorted by it (one partition in memory at a time, never the
whole output; a partition already in key order is only checked, by one read of its key columns
that also counts repeated keys), so the same rows give the same files. Nothing a reader sees
has changed yet.

``commit_output`` makes each staged partition live through its manifest (see
``flowfactory.data.manifest``), one partition at a time and each whole or not at all. A
partition whose content hash equals the live one's is left untouched and reported unchanged,
without reading the live files back.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import polars as pl
from polars.io.partition import FileProviderArgs

from flowfactory.config import Destination
from flowfactory.data.files import remove_settled
from flowfactory.data.manifest import Manifest, ManifestFile
from flowfactory.data.partitions import Partition
from flowfactory.data.reading import SourceFiles, explain_failure
from flowfactory.data.root import DataRoot, PartitionFiles
from flowfactory.errors import WriteError

__all__ = [
    "StagedOutput",
    "StagedPartition",
    "WrittenPartition",
    "commit_output",
    "discard_staged",
    "stage_output",
    "write_dataset",
]

_HASH_SEED: Final = 0x5EED
_RAW: Final = "_unsorted"


@dataclass(frozen=True)
class WrittenPartition:
    """What one partition write did."""

    dataset: str
    partition: Partition | None
    path: str  # the partition's folder
    rows: int
    bytes: int
    content_hash: str
    changed: bool
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class StagedPartition:
    """One partition in the staging folder, measured, not yet visible to readers."""

    partition: Partition | None
    files: tuple[Path, ...]
    rows: int
    bytes: int
    content_hash: str
    nulls: dict[str, int] = field(default_factory=dict)
    duplicate_keys: int = 0


@dataclass(frozen=True)
class StagedOutput:
    """A run's output in its staging folder: its schema and its partitions."""

    dataset: str
    folder: Path
    schema: dict[str, pl.DataType]
    partitions: tuple[StagedPartition, ...]

    @property
    def rows(self) -> int:
        """Rows across the staged partitions."""
        return sum(p.rows for p in self.partitions)

    @property
    def nulls(self) -> dict[str, int]:
        """Null counts across partitions, by column (only columns that have nulls)."""
        totals: dict[str, int] = {}
        for part in self.partitions:
            for column, count in part.nulls.items():
                totals[column] = totals.get(column, 0) + count
        return totals

    @property
    def duplicate_keys(self) -> int:
        """Rows whose key another row of the same partition has (partitions split the key)."""
        return sum(p.duplicate_keys for p in self.partitions)


def _missing_columns(schema: pl.Schema, destination: Destination) -> None:
    missing = [c for c in [*destination.partition_by, *destination.key] if c not in schema]
    if missing:
        raise WriteError(
            f"dataset {destination.dataset!r}: the output has no column(s) "
            f"{', '.join(missing)} named in destination.partition_by/key "
            f"(it has {', '.join(schema.names())})"
        )


def _scoped(
    plan: pl.LazyFrame, schema: pl.Schema, destination: Destination, partition: Partition | None
) -> pl.LazyFrame:
    """The plan narrowed to the run's partition; the filter reaches the scans."""
    columns = destination.partition_by
    if partition is None or not columns:
        return plan
    if partition.columns != columns:
        raise WriteError(
            f"dataset {destination.dataset!r} is partitioned by {'/'.join(columns)}; "
            f"partition {partition} names {'/'.join(partition.columns)}"
        )
    predicate = partition.predicate(schema)
    return plan if predicate is None else plan.filter(predicate)


def _path_provider(columns: list[str]) -> object:
    """Names each file after its partition, as flowfactory names partition folders."""

    def provide(args: FileProviderArgs) -> str:
        folder = Partition.of(columns, args.partition_keys.row(0)).path if columns else ""
        name = f"part-{args.index_in_partition:05d}.parquet"
        return f"{folder}/{name}" if folder else name

    return provide


def _target(folder: Path, columns: list[str], file_bytes: int | None) -> pl.PartitionBy:
    folder.mkdir(parents=True, exist_ok=True)
    return pl.PartitionBy(
        folder,
        key=columns or None,
        include_key=True if columns else None,
        file_path_provider=_path_provider(columns),  # type: ignore[arg-type]
        approximate_bytes_per_file=file_bytes if file_bytes is not None else "auto",
    )


def _sink(plan: pl.LazyFrame, folder: Path, columns: list[str], file_bytes: int | None) -> None:
    plan.sink_parquet(
        _target(folder, columns, file_bytes),
        compression="zstd",
        statistics=True,
        mkdir=True,
        engine="streaming",
    )


def _stream(
    plan: pl.LazyFrame,
    folder: Path,
    *,
    columns: list[str],
    file_bytes: int | None,
    measures: list[pl.Expr],
) -> pl.DataFrame:
    """Sink ``plan`` into ``folder``, then aggregate ``measures`` per partition over what was
    staged, in one streaming read of the staged files. One row per partition that has rows.

    Not in the same query as the sink: polars shares a plan between two sinks through a cache
    that holds what the slower one has not taken yet, which at 60 million rows was the whole
    output in memory.
    """
    _sink(plan, folder, columns, file_bytes)
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        return pl.DataFrame()
    staged = pl.scan_parquet(files, hive_partitioning=False)
    facts = staged.group_by(columns).agg(measures) if columns else staged.select(measures)
    return facts.collect(engine="streaming").filter(pl.col("rows") > 0)


def stage_output(
    root: DataRoot,
    plan: pl.LazyFrame,
    destination: Destination,
    partition: Partition | None = None,
    *,
    not_null: Sequence[str] = (),
    unique_key: Sequence[str] = (),
    sources: Sequence[SourceFiles] = (),
) -> StagedOutput:
    """Run ``plan`` into a new staging folder and measure what it wrote there.

    ``not_null`` columns get their nulls counted, and ``unique_key`` its duplicates, by the
    same aggregation that computes each partition's content hash. When the plan fails while
    it streams, each of the ``sources`` files is read alone to name the one whose data broke
    it; nothing is left in staging either way.
    """
    schema = plan.collect_schema()
    _missing_columns(schema, destination)
    plan = _scoped(plan, schema, destination, partition)
    columns = destination.partition_by
    folder = root.staging_folder()
    file_bytes = int(destination.max_file_size)
    staging = _Staging(
        folder,
        schema,
        not_null=tuple(c for c in not_null if c in schema),
        key=tuple(destination.key),
        unique_key=tuple(unique_key) if all(k in schema for k in unique_key) else (),
        file_bytes=file_bytes,
    )
    measures = _measures(schema, staging.not_null)
    try:
        found: list[tuple[Partition | None, dict[str, Any]]]
        if columns and partition is None:  # every partition the plan has, each its folder
            measured = _stream(
                plan, folder, columns=columns, file_bytes=file_bytes, measures=measures
            )
            found = sorted(  # in the order of their folders' names, level by level
                (
                    (Partition.of(columns, [row[c] for c in columns]), row)
                    for row in measured.iter_rows(named=True)
                ),
                key=lambda item: item[0].path.split("/") if item[0] else [],
            )
        else:  # one partition, sorted by the key as it streams out
            scope = partition if columns else None
            target = folder / scope.path if scope is not None else folder
            key = destination.key
            written = plan.sort(key, nulls_last=True, maintain_order=True) if key else plan
            measured = _stream(
                written, target, columns=[], file_bytes=file_bytes, measures=measures
            )
            found = [(scope, row) for row in measured.iter_rows(named=True)]
        staged = [staging.staged(part, facts) for part, facts in found]
        if not staged and (partition is not None or not columns):
            staged = [staging.empty(partition if columns else None)]
    except BaseException as exc:
        try:
            readable = isinstance(exc, pl.exceptions.PolarsError | OSError)
            explained = explain_failure(sources, exc) if readable else None
        finally:
            remove_settled(folder)
        if explained is None:
            raise
        raise explained from exc
    return StagedOutput(destination.dataset, folder, dict(schema), tuple(staged))


def _unsorted(key: Sequence[str]) -> pl.Expr:
    """True when some row is out of ``key`` order (lexicographic, nulls last) after the one
    before it; a null in the key counts as out of order, which only costs a sort."""
    out_of_order: pl.Expr = pl.lit(value=False)
    tied: pl.Expr = pl.lit(value=True)
    for column in key:
        value, before = pl.col(column), pl.col(column).shift(1)
        out_of_order = out_of_order | (tied & (value < before))
        tied = tied & (value == before)
    has_null = pl.any_horizontal(pl.col(list(key)).is_null())
    return (out_of_order.fill_null(value=False) | has_null).any()


def _repeats(key: Sequence[str]) -> pl.Expr:
    """Rows whose ``key`` equals the row's before (nulls equal): in key order, the rows whose
    key another row has already."""
    same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift(1)) for c in key)
    return (same & (pl.int_range(pl.len()) > 0)).sum()


def _key_facts(files: Sequence[Path], key: Sequence[str]) -> tuple[bool, int]:
    """(out of key order, rows repeating the key before them), from one read of the key."""
    facts = (
        pl.scan_parquet(list(files), hive_partitioning=False)
        .select(_unsorted(key).alias("unsorted"), _repeats(key).alias("repeats"))
        .collect(engine="streaming")
        .row(0, named=True)
    )
    return bool(facts["unsorted"]), int(facts["repeats"] or 0)


def _sort_partition(folder: Path, key: Sequence[str], file_bytes: int) -> int:
    """Sort one staged partition by ``key`` unless it already is (then nothing is rewritten);
    the rows whose key another row of the partition has.

    Rows keep the order they stream in, so input that is in key order (as tables usually are,
    loaded in key order) costs one read of the key columns here, not a sort.
    """
    files = sorted(folder.glob("*.parquet"))
    unsorted, repeats = _key_facts(files, key)
    if not unsorted:
        return repeats
    resorted = folder.with_name(f"{folder.name}{_RAW}")
    plan = pl.scan_parquet(files).sort(list(key), nulls_last=True, maintain_order=True)
    _sink(plan, resorted, [], file_bytes)
    for file in files:
        file.unlink()
    for file in resorted.iterdir():
        file.rename(folder / file.name)
    resorted.rmdir()
    return _key_facts(sorted(folder.glob("*.parquet")), key)[1]


def _row_hash(schema: pl.Schema) -> pl.Expr:
    """A hash of each whole row: each column hashed with its own seed, summed, hashed again (so
    that which values share a row counts, not only each column's values). Several times faster
    than hashing the row as a struct."""
    columns = [pl.col(name).hash(_HASH_SEED + index) for index, name in enumerate(schema.names())]
    return pl.sum_horizontal(columns).hash(_HASH_SEED)


def _measures(schema: pl.Schema, not_null: Sequence[str]) -> list[pl.Expr]:
    """What is measured of each staged partition: rows, content hash, null counts."""
    return [
        pl.len().alias("rows"),
        _row_hash(schema).sum().alias("hash"),
        *(pl.col(c).null_count().alias(f"null:{c}") for c in not_null),
    ]


def _duplicates(
    files: Sequence[Path], unique_key: Sequence[str], key: Sequence[str], repeats: int
) -> int:
    """Rows whose ``unique_key`` another row of the partition has."""
    if not unique_key:
        return 0
    if list(unique_key) == list(key):
        return repeats  # counted while the partition's key order was checked
    unique = (
        pl.scan_parquet(list(files), hive_partitioning=False)
        .select(pl.len().alias("rows"), pl.struct(list(unique_key)).n_unique().alias("unique"))
        .collect(engine="streaming")
        .row(0, named=True)
    )
    return int(unique["rows"]) - int(unique["unique"])


@dataclass(frozen=True)
class _Staging:
    """A staging folder being filled: what each of its partitions is checked and measured on."""

    folder: Path
    schema: pl.Schema
    not_null: tuple[str, ...]
    key: tuple[str, ...]
    unique_key: tuple[str, ...]
    file_bytes: int

    @cached_property
    def fingerprint(self) -> str:
        """The schema as the content hash includes it: the same rows under another schema
        are other content."""
        return "|".join(f"{name}:{dtype}" for name, dtype in self.schema.items())

    def staged(self, partition: Partition | None, facts: dict[str, Any]) -> StagedPartition:
        """One staged partition, put in key order, from what was measured of it."""
        part_folder = self.folder / partition.path if partition is not None else self.folder
        repeats = _sort_partition(part_folder, self.key, self.file_bytes) if self.key else 0
        files = tuple(sorted(part_folder.glob("*.parquet")))
        rows = int(facts["rows"])
        content = f"{self.fingerprint}|{rows}|{facts['hash'] or 0}"
        nulls = {c: int(facts[f"null:{c}"]) for c in self.not_null}
        return StagedPartition(
            partition=partition,
            files=files,
            rows=rows,
            bytes=sum(f.stat().st_size for f in files),
            content_hash=hashlib.sha256(content.encode()).hexdigest(),
            nulls={c: n for c, n in nulls.items() if n},
            duplicate_keys=_duplicates(files, self.unique_key, self.key, repeats),
        )

    def empty(self, partition: Partition | None) -> StagedPartition:
        """An empty result still replaces what the run's scope held, with an empty file."""
        part_folder = self.folder / partition.path if partition is not None else self.folder
        part_folder.mkdir(parents=True, exist_ok=True)
        empty = pl.DataFrame(schema=self.schema)
        empty.write_parquet(part_folder / "part-00000.parquet", compression="zstd")
        facts = empty.select(_measures(self.schema, self.not_null)).row(0, named=True)
        return self.staged(partition, facts)


def commit_output(root: DataRoot, staged: StagedOutput) -> list[WrittenPartition]:
    """Make every staged partition live (each at once); leave unchanged ones untouched."""
    try:
        return [_commit_partition(root, staged.dataset, part) for part in staged.partitions]
    finally:
        discard_staged(staged)


def _commit_partition(root: DataRoot, dataset: str, part: StagedPartition) -> WrittenPartition:
    live = root.partition_files(dataset, part.partition)
    if live is not None and live.version == part.content_hash:
        return _written(part, live, changed=False)
    # New names for the new files, so that the live ones stay readable until the switch.
    prefix = part.content_hash[:16]
    manifest = Manifest(
        files=tuple(
            ManifestFile(
                name=f"part-{prefix}-{index:05d}.parquet",
                rows=pl.scan_parquet(path).select(pl.len()).collect().item(),
                size=path.stat().st_size,
            )
            for index, path in enumerate(part.files)
        ),
        rows=part.rows,
        size=part.bytes,
        content_hash=part.content_hash,
        written_at=datetime.now(UTC).isoformat(),
    )
    try:
        files = root.commit_partition(dataset, part.partition, part.files, manifest)
    except OSError as exc:
        folder = root.partition_dir(dataset, part.partition)
        raise WriteError(
            f"cannot write {folder}: {exc.strerror or exc}; the previous data is intact"
        ) from exc
    return _written(part, files, changed=True)


def _written(part: StagedPartition, live: PartitionFiles, *, changed: bool) -> WrittenPartition:
    """What a commit did to one partition, as the partition is now."""
    return WrittenPartition(
        dataset=live.dataset,
        partition=part.partition,
        path=live.folder,
        rows=part.rows,
        bytes=live.bytes,
        content_hash=part.content_hash,
        changed=changed,
        files=live.files,
    )


def write_dataset(
    root: DataRoot,
    frame: pl.DataFrame | pl.LazyFrame,
    destination: Destination,
    partition: Partition | None = None,
) -> list[WrittenPartition]:
    """Stage and commit ``frame`` in one step (no contract between them)."""
    return commit_output(root, stage_output(root, frame.lazy(), destination, partition))


def discard_staged(staged: StagedOutput) -> None:
    """Remove what is left of a staging folder (after a commit, or instead of one)."""
    shutil.rmtree(staged.folder, ignore_errors=True)
