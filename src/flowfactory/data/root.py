"""The data root: a local folder or any fsspec URL, where datasets, landing files and flowfactory's
own small records live; its layout (dataset folders, partition files) and whole-file writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import fsspec
from fsspec.implementations.local import LocalFileSystem

from flowfactory.config import FileSource
from flowfactory.data.files import write_local_atomic
from flowfactory.data.partitions import Partition

__all__ = ["PART_FILE", "DataRoot"]

PART_FILE: Final = "part-0.parquet"


class DataRoot:
    """The data root: a local folder or any fsspec URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)

    def _join(self, *parts: str) -> str:
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def dataset_dir(self, dataset: str) -> str:
        """The folder of a dataset."""
        return self._join(dataset)

    def partition_file(self, dataset: str, partition: Partition | None) -> str:
        """The file holding one partition of a dataset (or the whole of an unpartitioned one)."""
        return self._join(dataset, partition.path if partition else "", PART_FILE)

    def dataset_files(self, dataset: str, partition: Partition | None = None) -> list[str]:
        """The Parquet files of a dataset, or of one of its partitions when it is laid out so."""
        if partition is not None:
            exact = self.partition_file(dataset, partition)
            if self.fs.exists(exact):
                return [exact]
        base = self.dataset_dir(dataset)
        files = sorted(self.fs.glob(f"{base}/**/{PART_FILE}"))
        # Recent fsspec matches `**` to no folder too, and so may list the top file already.
        top = f"{base}/{PART_FILE}"
        if top not in files and self.fs.exists(top):
            files.append(top)
        return files

    def source_fs_and_pattern(self, source: FileSource) -> tuple[fsspec.AbstractFileSystem, str]:
        """The filesystem and path (or glob) of a file source."""
        if source.is_url:
            fs, pattern = fsspec.core.url_to_fs(source.path)
            return fs, pattern
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
        info = (fs or self.fs).info(path)
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

    def create_exclusive(self, relative: str, data: bytes) -> bool:
        """Create a file only if it does not exist yet; False if it did."""
        target = self._join(relative)
        if not self.is_local:
            # Object stores have no portable create-if-absent; best effort.
            if self.fs.exists(target):
                return False
            self.fs.pipe_file(target, data)
            return True
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

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
