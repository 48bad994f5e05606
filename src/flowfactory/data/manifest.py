"""A partition's manifest: the one small file that says which Parquet files hold the partition.

A partition may be several files (a large one is split by size), and replacing several files
cannot be atomic by itself. So the files of a new write get new names, and the partition
switches to them when its manifest, one small file, is replaced whole. Readers list a partition
through its manifest, and the manifest's content hash is the partition's version: it moves
only when the rows do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Final

__all__ = ["MANIFEST_FILE", "Manifest", "ManifestFile"]

MANIFEST_FILE: Final = "_manifest.json"
_FORMAT: Final = 1


@dataclass(frozen=True)
class ManifestFile:
    """One Parquet file of a partition, by its name in the partition's folder."""

    name: str
    rows: int
    size: int  # bytes


@dataclass(frozen=True)
class Manifest:
    """The files of one partition and what they hold together."""

    files: tuple[ManifestFile, ...]
    rows: int
    size: int  # bytes
    content_hash: str
    written_at: str

    def to_json(self) -> bytes:
        """The manifest as the bytes of its file."""
        body = asdict(self)
        body["format"] = _FORMAT
        return json.dumps(body, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest | None:
        """The manifest in ``data``; None when it is damaged or of an unknown format."""
        try:
            body = json.loads(data)
            if body.get("format") != _FORMAT:
                return None
            return cls(
                files=tuple(ManifestFile(**f) for f in body["files"]),
                rows=int(body["rows"]),
                size=int(body["size"]),
                content_hash=str(body["content_hash"]),
                written_at=str(body["written_at"]),
            )
        except (TypeError, ValueError, KeyError, AttributeError):
            return None
