"""Run a command and measure its wall time and peak resident memory, children included.

Two figures of memory, because neither alone covers everything:

- the kernel's ``ru_maxrss`` from ``wait4``: exact, but for the largest single process of the
  tree (the child, or a descendant it waited for), not their sum;
- the sum of the resident memory of the child and all its descendants, sampled from ``/proc``
  every ``interval`` seconds: what the machine pays when several processes run at once, but a
  short spike between two samples is missed.

The peak reported is the larger of the two. A tree whose sampled sum passes ``rss_limit`` is
killed (its whole session), so a run that does not fit cannot take the machine down with it.

A command that hands its work to another process (``flowfactory run`` to the warm executor,
which forks the run) names that process as ``adopt``: every child it starts while the command
runs counts as part of the command's tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["ProcessFigures", "run_measured"]

_PAGE: Final = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcessFigures:
    """What one measured command cost."""

    seconds: float
    peak_rss_bytes: int
    maxrss_bytes: int
    sampled_tree_bytes: int
    returncode: int
    over_limit: bool

    @property
    def ok(self) -> bool:
        """True when the command exited 0 within the memory limit."""
        return self.returncode == 0 and not self.over_limit


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _resident_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0  # the process ended between listing and reading


def tree_resident_bytes(root: int) -> int:
    """Resident memory of a process and all its descendants, summed."""
    total, pending, seen = 0, [root], set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _resident_bytes(pid)
        pending += _children(pid)
    return total


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    rss_limit: int,
    interval: float = 0.05,
    adopt: int | None = None,
) -> ProcessFigures:
    """Run ``argv`` to its end (output to ``log``) and return its time and peak memory; the
    children that ``adopt`` starts meanwhile count as the command's own."""
    existing = set(_children(adopt)) if adopt is not None else set()

    def tree(pid: int) -> int:
        adopted = set(_children(adopt)) - existing if adopt is not None else set()
        return tree_resident_bytes(pid) + sum(tree_resident_bytes(c) for c in adopted)

    with log.open("ab") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group to kill if it passes the limit
        )
        sampled, over_limit = 0, False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            sampled = max(sampled, tree(process.pid))
            if sampled > rss_limit and not over_limit:
                over_limit = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                for child in set(_children(adopt)) - existing if adopt is not None else ():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
            time.sleep(interval)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    maxrss = usage.ru_maxrss * 1024  # KiB on Linux
    return ProcessFigures(
        seconds=seconds,
        peak_rss_bytes=max(maxrss, sampled),
        maxrss_bytes=maxrss,
        sampled_tree_bytes=sampled,
        returncode=process.returncode,
        over_limit=over_limit,
    )
