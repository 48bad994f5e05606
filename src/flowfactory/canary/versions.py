"""Versions of a pipeline and the live one: v1 is the file's transform, v2 its canary candidate.

Everything the canary writes goes under ``<data root>/_canary/<pipeline>/`` (dataset names
cannot start with ``_``): the sampled inputs and each version's output per canary run, the last
report, and ``live.json``, which says which version production runs use. Keeping the live
version next to the data, not in a deployment, means a redeploy from CI does not undo a
promotion, and every run reads it, so a promotion needs no redeploy.

The live version is v2 only while the candidate is the one that was promoted: if the candidate
in the pipeline file changes afterwards, production falls back to v1 until a canary passes again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Literal

from flowfactory.config import CanaryConfig, PipelineFile, Project
from flowfactory.data import DataRoot
from flowfactory.errors import CanaryError, UnknownVersionError

__all__ = [
    "CANARY_AREA",
    "KEEP_RUNS",
    "VERSIONS",
    "LiveVersion",
    "Version",
    "canary_area",
    "candidate_fingerprint",
    "latest_report",
    "live_pipeline",
    "live_version",
    "live_versions",
    "parse_version",
    "pipeline_at",
    "prune_runs",
    "set_live_version",
    "version_pipeline",
    "write_latest_report",
]

Version = Literal["v1", "v2"]
VERSIONS: Final[tuple[Version, Version]] = ("v1", "v2")
CANARY_AREA: Final = "_canary"
KEEP_RUNS: Final = 10
_LIVE_FILE: Final = "live.json"
_LATEST_REPORT: Final = "latest.md"
_RUN_FOLDER: Final = re.compile(r"^\d{8}T\d{6}Z-")


def canary_area(pipeline: str, *parts: str) -> str:
    """A path under the pipeline's canary area, relative to the data root."""
    return "/".join([CANARY_AREA, pipeline, *parts])


def candidate_fingerprint(canary: CanaryConfig) -> str:
    """A short hash of the candidate transform: a promotion holds for this candidate only."""
    return hashlib.sha256(canary.candidate.model_dump_json().encode()).hexdigest()[:16]


def parse_version(text: str) -> Version:
    """``v1`` or ``v2``; an UnknownVersionError names the choices otherwise."""
    if text == "v1":
        return "v1"
    if text == "v2":
        return "v2"
    raise UnknownVersionError(
        f"unknown version {text!r}: use v1 (the transform) or v2 (the candidate)"
    )


def version_pipeline(pipeline: PipelineFile, version: Version) -> PipelineFile:
    """The pipeline as it runs at ``version``: v1 is the file's transform, v2 its candidate."""
    if version == "v1":
        return pipeline
    canary = pipeline.config.canary
    if canary is None:
        raise UnknownVersionError(f"pipeline {pipeline.name!r} has no canary candidate (v2)")
    config = pipeline.config.model_copy(update={"transform": canary.candidate})
    return replace(pipeline, config=config)


@dataclass(frozen=True)
class LiveVersion:
    """Which version production runs of a pipeline use, and since when."""

    pipeline: str
    version: Version
    since: str | None = None
    by: str | None = None
    note: str = ""

    def __str__(self) -> str:
        since = f" since {self.since}" if self.since else ""
        by = f" ({self.by})" if self.by else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.pipeline}: {self.version} live{since}{by}{note}"


def live_version(pipeline: PipelineFile, root: DataRoot) -> LiveVersion:
    """The version production runs of ``pipeline`` use now (v1 unless v2 was promoted)."""
    raw = root.get(canary_area(pipeline.name, _LIVE_FILE))
    if raw is None:
        return LiveVersion(pipeline.name, "v1")
    state = json.loads(raw)
    if state.get("version") != "v2":
        return LiveVersion(pipeline.name, "v1", state.get("since"), state.get("by"))
    canary = pipeline.config.canary
    if canary is None or candidate_fingerprint(canary) != state.get("candidate"):
        return LiveVersion(
            pipeline.name,
            "v1",
            state.get("since"),
            state.get("by"),
            note="the promoted candidate is no longer in the pipeline file",
        )
    return LiveVersion(pipeline.name, "v2", state.get("since"), state.get("by"))


def live_versions(project: Project, root: DataRoot) -> dict[str, LiveVersion]:
    """The live version of every pipeline of a project, by name (for `flowfactory status`)."""
    return {p.name: live_version(p, root) for p in project.pipelines}


def live_pipeline(pipeline: PipelineFile, root: DataRoot) -> PipelineFile:
    """The pipeline with the transform of its live version."""
    if pipeline.config.canary is None:
        return pipeline
    return version_pipeline(pipeline, live_version(pipeline, root).version)


def pipeline_at(pipeline: PipelineFile, root: DataRoot, version: str | None) -> PipelineFile:
    """The pipeline at ``version`` (v1 or v2), or at its live version when None."""
    if version is None:
        return live_pipeline(pipeline, root)
    return version_pipeline(pipeline, parse_version(version))


def set_live_version(
    pipeline: PipelineFile, root: DataRoot, version: str, *, by: str
) -> tuple[LiveVersion, LiveVersion]:
    """Make ``version`` live; return the live version before and after."""
    chosen = parse_version(version)
    before = live_version(pipeline, root)
    state: dict[str, str | None] = {
        "version": chosen,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "by": by,
        "candidate": None,
    }
    if chosen == "v2":
        canary = pipeline.config.canary
        if canary is None:
            raise CanaryError(f"pipeline {pipeline.name!r} has no canary candidate (v2)")
        state["candidate"] = candidate_fingerprint(canary)
    root.put_atomic(canary_area(pipeline.name, _LIVE_FILE), json.dumps(state, indent=2).encode())
    return before, live_version(pipeline, root)


def prune_runs(pipeline: str, root: DataRoot, keep: int = KEEP_RUNS) -> list[str]:
    """Delete the sampled inputs and outputs of all but the ``keep`` latest canary runs."""
    folder = root.dataset_dir(canary_area(pipeline, "runs"))
    if not root.fs.exists(folder):
        return []
    runs = sorted(
        path
        for path in root.fs.ls(folder, detail=False)
        if _RUN_FOLDER.match(path.rstrip("/").rsplit("/", 1)[-1])
    )
    gone = runs[:-keep] if keep else runs
    for path in gone:
        root.fs.rm(path, recursive=True)
    return gone


def write_latest_report(pipeline: str, root: DataRoot, text: str) -> None:
    """Keep the markdown report of the pipeline's last canary."""
    root.put_atomic(canary_area(pipeline, _LATEST_REPORT), text.encode())


def latest_report(pipeline: str, root: DataRoot) -> str | None:
    """The markdown report of the pipeline's last canary, if one ran."""
    data = root.get(canary_area(pipeline, _LATEST_REPORT))
    return data.decode() if data is not None else None
