"""Local files written whole or not at all (shared by datasets and contracts), and the
leftovers of killed writers."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Final

__all__ = ["remove_settled", "remove_stale", "write_local_atomic"]

_STALE_TMP_SECONDS: Final = 600
_SETTLE_SECONDS: Final = 0.2
_SETTLE_BUDGET_SECONDS: Final = 3.0


def write_local_atomic(final: Path, data: bytes) -> None:
    """Write a local file whole or not at all: temporary file, fsync, rename, fsync the folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale(folder: Path) -> None:
    """Remove the subfolders of ``folder`` that killed writers left (old enough to be dead)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - _STALE_TMP_SECONDS
    for leftover in folder.iterdir():
        try:
            if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            continue


def remove_settled(folder: Path) -> None:
    """Remove the folder a failed polars sink was writing into, and keep it removed.

    A sink's writer threads can still create a file after the sink has raised, so the folder
    is removed again whenever it reappears, until it has stayed gone for a short while.
    """
    shutil.rmtree(folder, ignore_errors=True)
    gone_since = time.monotonic()
    deadline = gone_since + _SETTLE_BUDGET_SECONDS
    while time.monotonic() < deadline:
        time.sleep(_SETTLE_SECONDS / 4)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            gone_since = time.monotonic()
        elif time.monotonic() - gone_since >= _SETTLE_SECONDS:
            return


def _remove_stale_temporaries(final: Path) -> None:
    """Temporaries left by a killed writer; recent ones may belong to a live writer."""
    cutoff = time.time() - _STALE_TMP_SECONDS
    for leftover in final.parent.glob(f".{final.name}.*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except FileNotFoundError:
            continue
