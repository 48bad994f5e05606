"""The data root: a local folder or any fsspec URL, where datasets, landing files and flowfactory's
own small records live; its layout (dataset folders, partitions and their manifests), whole-file
writes, and how polars reaches it.

A partition lives in its folder, ``<root>/<dataset>/<col>=<value>/...``, as the Parquet files its
manifest (``_manifest.json``) lists. A folder written before manifests existed holds one
``part-0.parquet`` and is read as a partition of that one file.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import fsspec
from fsspec.implementations.local import LocalFileSystem

from flowfactory.config import FileSource
from flowfactory.data.files import remove_stale, write_local_atomic
from flowfactory.data.manifest import MANIFEST_FILE, Manifest
from flowfactory.data.partitions import Partition

__all__ = ["LEGACY_PART_FILE", "STAGING_DIR", "DataRoot", "PartitionFiles"]

LEGACY_PART_FILE: Final = "part-0.parquet"
# Beside flowfactory's other records under the root (``_flowfactory/``), outside every dataset.
STAGING_DIR: Final = "_flowfactory/staging"
# fsspec protocols that polars reads itself (object_store); others go through fsspec.
_POLARS_PROTOCOLS: Final = frozenset(
    {
        "file",
        "s3",
        "s3a",
        "gs",
        "gcs",
        "gcp",
        "az",
        "azure",
        "abfs",
        "abfss",
        "adl",
        "http",
        "https",
    }
)
# Stores whose fsspec filesystems would otherwise keep every listing for the life of the
# process, so that files another process writes (a landed file, another worker's partition)
# stayed unseen and a replaced file kept its old ETag; they are listed afresh instead.
_LISTED_AFRESH: Final = _POLARS_PROTOCOLS - {"file"}


@dataclass(frozen=True)
class PartitionFiles:
    """A partition as it is now: its folder, its live files and its version."""

    dataset: str
    partition: str  # "" for an unpartitioned dataset
    folder: str
    files: tuple[str, ...]
    rows: int | None  # None for a folder without a manifest (its footer has the count)
    bytes: int
    version: str  # the content hash of its manifest; size and time of a legacy file


def _protocol(fs: fsspec.AbstractFileSystem) -> str:
    protocol = fs.protocol
    return str(protocol[0] if isinstance(protocol, tuple | list) else protocol)


def _open_filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` and the path in it, listing remote stores afresh."""
    protocol, _ = fsspec.core.split_protocol(url)
    options = {"use_listings_cache": False} if protocol in _LISTED_AFRESH else {}
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, str(path)


def polars_location(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    """The path as polars' own readers take it; None when only fsspec can read it."""
    if isinstance(fs, LocalFileSystem):
        return path
    protocol = _protocol(fs)
    return f"{protocol}://{path}" if protocol in _POLARS_PROTOCOLS else None


def polars_storage_options(fs: fsspec.AbstractFileSystem) -> dict[str, str] | None:
    """What polars needs to reach the store that ``fs`` reaches, from fsspec's own settings.

    Credentials left out here come from the environment, which polars reads too.
    """
    if _protocol(fs) not in {"s3", "s3a"}:
        return None
    options: dict[str, str] = {}
    client = getattr(fs, "client_kwargs", None) or {}
    endpoint = getattr(fs, "endpoint_url", None) or client.get("endpoint_url")
    if endpoint:
        options["aws_endpoint_url"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            options["aws_allow_http"] = "true"
    for attribute, option in (
        ("key", "aws_access_key_id"),
        ("secret", "aws_secret_access_key"),
        ("token", "aws_session_token"),
    ):
        value = getattr(fs, attribute, None)
        if value:
            options[option] = str(value)
    region = client.get("region_name")
    if region:
        options["aws_region"] = str(region)
    return options or None


class DataRoot:
    """The data root: a local folder or any fsspec URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        fs, root = _open_filesystem(url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)

    def _join(self, *parts: str) -> str:
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def dataset_dir(self, dataset: str) -> str:
        """The folder of a dataset."""
        return self._join(dataset)

    def partition_dir(self, dataset: str, partition: Partition | str | None) -> str:
        """The folder of one partition of a dataset (the dataset's folder when unpartitioned)."""
        return self._join(dataset, str(partition) if partition else "")

    def location(self, path: str) -> str | None:
        """A path under the root as polars' readers take it (None: read it through fsspec)."""
        return polars_location(self.fs, path)

    @property
    def storage_options(self) -> dict[str, str] | None:
        """polars' storage options for this root."""
        return polars_storage_options(self.fs)

    def partition_files(
        self, dataset: str, partition: Partition | str | None
    ) -> PartitionFiles | None:
        """One partition's live files, or None when it has none."""
        folder = self.partition_dir(dataset, partition)
        manifest = self._manifest(folder)
        if manifest is not None:
            return PartitionFiles(
                dataset=dataset,
                partition=str(partition or ""),
                folder=folder,
                files=tuple(f"{folder}/{f.name}" for f in manifest.files),
                rows=manifest.rows,
                bytes=manifest.size,
                version=manifest.content_hash,
            )
        legacy = f"{folder}/{LEGACY_PART_FILE}"
        try:
            info = self.fs.info(legacy)
        except FileNotFoundError:
            return None
        return PartitionFiles(
            dataset=dataset,
            partition=str(partition or ""),
            folder=folder,
            files=(legacy,),
            rows=None,
            bytes=int(info.get("size", 0)),
            version=self._stamp(info),
        )

    def read_manifest(self, dataset: str, partition: Partition | str | None) -> Manifest | None:
        """The manifest of one partition, or None (none written yet, or damaged)."""
        return self._manifest(self.partition_dir(dataset, partition))

    def _manifest(self, folder: str) -> Manifest | None:
        try:
            data: bytes = self.fs.cat_file(f"{folder}/{MANIFEST_FILE}")
        except FileNotFoundError:
            return None
        return Manifest.from_json(data)

    def dataset_partitions(self, dataset: str) -> dict[str, PartitionFiles]:
        """Every partition of a dataset (its text, "" when unpartitioned), in order."""
        base = self.dataset_dir(dataset)
        folders: set[str] = set()
        for name in (MANIFEST_FILE, LEGACY_PART_FILE):
            for found in self.fs.glob(f"{base}/**/{name}"):
                folders.add(found.rsplit("/", 1)[0])
            # Recent fsspec matches `**` to no folder too, older releases do not.
            if self.fs.exists(f"{base}/{name}"):
                folders.add(base)
        partitions = {}
        for folder in folders:
            text = folder[len(base) :].strip("/")
            files = self.partition_files(dataset, text)
            if files is not None:
                partitions[text] = files
        return dict(sorted(partitions.items()))

    def dataset_files(self, dataset: str, partition: Partition | None = None) -> list[str]:
        """The live Parquet files of a dataset, or of one partition when it is laid out so."""
        if partition is not None:
            exact = self.partition_files(dataset, partition)
            if exact is not None:
                return list(exact.files)
        return [f for p in self.dataset_partitions(dataset).values() for f in p.files]

    def commit_partition(
        self,
        dataset: str,
        partition: Partition | None,
        staged: Sequence[Path],
        manifest: Manifest,
    ) -> PartitionFiles:
        """Make the staged files (local, named as in ``manifest``) the partition, at once.

        The files move in under their new names first, invisible to readers, which follow the
        manifest; replacing the manifest is the switch. Files the new manifest does not list
        (the previous write's, or a killed writer's) are removed after it.
        """
        folder = self.partition_dir(dataset, partition)
        for path, entry in zip(staged, manifest.files, strict=True):
            target = f"{folder}/{entry.name}"
            if self.is_local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                path.replace(target)
            else:
                self.fs.put_file(str(path), target)
        self.replace_file(f"{folder}/{MANIFEST_FILE}", manifest.to_json())
        live = {entry.name for entry in manifest.files}
        for leftover in self.fs.glob(f"{folder}/*.parquet"):
            if leftover.rsplit("/", 1)[-1] not in live:
                self.fs.rm_file(leftover)
        files = self.partition_files(dataset, partition)
        if files is None:  # pragma: no cover - the manifest was just written
            raise FileNotFoundError(f"{folder}/{MANIFEST_FILE}")
        return files

    def staging_folder(self) -> Path:
        """A new local folder for one write's staged files, under a local root (so that the
        commit is a rename) and in the machine's temporary folder for a remote one. Folders
        left by killed writers are removed once stale; recent ones may be a live writer's."""
        if not self.is_local:
            return Path(tempfile.mkdtemp(prefix="flowfactory-staging-"))
        base = Path(self._join(STAGING_DIR))
        remove_stale(base)
        folder = base / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def source_fs_and_pattern(self, source: FileSource) -> tuple[fsspec.AbstractFileSystem, str]:
        """The filesystem and path (or glob) of a file source."""
        if source.is_url:
            return _open_filesystem(source.path)
        return self.fs, self._join(source.path)

    def source_files(self, source: FileSource) -> tuple[fsspec.AbstractFileSystem, list[str]]:
        """The filesystem of a file source and the files it names now (its glob's matches)."""
        fs, pattern = self.source_fs_and_pattern(source)
        files = sorted(fs.glob(pattern)) if any(ch in pattern for ch in "*?[") else [pattern]
        return fs, [f for f in files if fs.isfile(f)]

    def file_version(self, path: str, fs: fsspec.AbstractFileSystem | None = None) -> str:
        """A cheap version of one file: size and modification time (or the store's ETag).

        Unchanged content is never rewritten (see ``write_dataset``), so the version moves only
        when the data does.
        """
        return self._stamp((fs or self.fs).info(path))

    @staticmethod
    def _stamp(info: dict[str, object]) -> str:
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        return f"{info.get('size', 0)}:{stamp}"

    def put_atomic(self, relative: str, data: bytes) -> str:
        """Write a small file under the root whole or not at all; return its path."""
        target = self._join(relative)
        self.replace_file(target, data)
        return target

    def get(self, relative: str) -> bytes | None:
        """The bytes of a file under the root, or None if it does not exist."""
        try:
            data: bytes = self.fs.cat_file(self._join(relative))
        except FileNotFoundError:
            return None
        return data

    def remove(self, relative: str) -> None:
        """Delete a file under the root if it exists."""
        target = self._join(relative)
        if self.fs.exists(target):
            self.fs.rm_file(target)

    def replace_file(self, target: str, data: bytes) -> None:
        """Replace the file at ``target`` (a path under the root) whole or not at all."""
        if not self.is_local:
            # Object stores make a single PUT visible whole or not at all.
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(target, data)
            return
        write_local_atomic(Path(target), data)
