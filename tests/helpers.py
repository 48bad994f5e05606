"""Helpers shared by the test tiers (importable as tests.helpers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import polars as pl

from flowfactory.config import Project, load_project
from flowfactory.data import MANIFEST_FILE, DataRoot
from flowfactory.settings import Settings

REPO = Path(__file__).resolve().parent.parent
FLOWFACTORY = Path(sys.executable).with_name("flowfactory")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_project(root: Path, files: Mapping[str, str]) -> Path:
    """A project folder with the given files (the flows ship with the package)."""
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def load_pipelines(project_dir: Path, /, **files: str) -> Project:
    """Write deployments/<name>.yaml for each keyword (dedented) and load the project."""
    folder = project_dir / "deployments"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_project(folder, Settings(project_dir=project_dir))


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `flowfactory ARGS` in ``project`` (see ``run_in``)."""
    return run_in(project, str(FLOWFACTORY), *args)


def cli_env(api_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without FLOWFACTORY_* or PREFECT_* settings, naming ``api_url``
    (and ``extra``), so that a `flowfactory` subprocess reads only what a test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWFACTORY_", "PREFECT_"))}
    return {**env, "PREFECT_API_URL": api_url, **extra}


def run_in(
    project: Path, *argv: str, api_url: str = "http://127.0.0.1:9/api"
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``project``, with no FLOWFACTORY_* settings and the Prefect API ``api_url``.

    By default PREFECT_API_URL points at a port nothing listens on, so no verb reaches a server.
    """
    return subprocess.run(
        list(argv),
        cwd=project,
        env=cli_env(api_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def partition_files(data_dir: Path, dataset: str, partition: str = "") -> list[Path]:
    """The live files of one partition of a local dataset ([] when it has none)."""
    live = DataRoot(str(data_dir)).partition_files(dataset, partition)
    return [Path(f) for f in live.files] if live is not None else []


def read_partition(data_dir: Path, dataset: str, partition: str = "") -> pl.DataFrame:
    """The rows of one partition of a local dataset, as its manifest lists its files."""
    files = partition_files(data_dir, dataset, partition)
    assert files, f"{dataset} has no partition {partition or '(whole dataset)'} under {data_dir}"
    return pl.read_parquet(files)


def manifest_of(data_dir: Path, dataset: str, partition: str = "") -> Path:
    """The manifest file of one partition (its mtime moves only when the partition does)."""
    return Path(DataRoot(str(data_dir)).partition_dir(dataset, partition)) / MANIFEST_FILE


def read_until(stream: IO[str], prefix: str, timeout: float) -> list[str]:
    """Lines of ``stream`` up to the first that starts with ``prefix``, or all it printed
    before it ended or ``timeout`` ran out (checked between lines)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            break
    return lines
