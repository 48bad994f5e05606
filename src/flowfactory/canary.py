"""Canary: run the current (v1) and candidate (v2) transform on one sample, diff, promote or block.

Everything the canary writes goes under ``<data root>/_canary/<pipeline>/`` (dataset names
cannot start with ``_``): the sampled inputs and each version's output per canary run, the last
report, and ``live.json``, which says which version production runs use. Keeping the live
version next to the data, not in a deployment, means a redeploy from CI does not undo a
promotion, and ``tasks.run_pipeline`` reads it on every run, so a promotion needs no redeploy.

The live version is v2 only while the candidate is the one that was promoted: if the candidate
in the pipeline file changes afterwards, production falls back to v1 until a canary passes again.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import polars as pl

from flowfactory import events
from flowfactory.canary_config import CanaryConfig
from flowfactory.config import PythonTransform, SqlTransform
from flowfactory.datasets import DataRoot, Partition
from flowfactory.diff import DiffReport, Verdict, diff_frames
from flowfactory.engine import (
    apply_transform,
    check_plan,
    find_pipeline,
    read_source,
    resolve_transform,
)
from flowfactory.errors import ConfigError, FlowfactoryError, Problem
from flowfactory.loader import PipelineFile, Project
from flowfactory.sampling import SamplingError, sample_inputs
from flowfactory.settings import Settings, get_settings
from flowfactory.specs import DeploymentSpec

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

__all__ = [
    "CANARY_AREA",
    "CANARY_ENTRYPOINT",
    "CANARY_FLOW",
    "CanaryError",
    "CanaryOutcome",
    "LiveVersion",
    "Version",
    "canary_deployment_spec",
    "canary_run",
    "change_live_version",
    "check_versions",
    "latest_report",
    "live_pipeline",
    "live_version",
    "live_versions",
    "parse_version",
    "pipeline_at",
    "promote",
    "prune_runs",
    "rollback",
    "run_canary_now",
    "version_pipeline",
    "version_run",
]

Version = Literal["v1", "v2"]
VERSIONS: Final = ("v1", "v2")
CANARY_AREA: Final = "_canary"
CANARY_FLOW: Final = "canary"
CANARY_ENTRYPOINT: Final = "flows/canary.py:canary"
CANARY_PASSED: Final = "canary.passed"
CANARY_FAILED: Final = "canary.failed"
CANARY_INCONCLUSIVE: Final = "canary.inconclusive"
PIPELINE_PROMOTED: Final = "pipeline.promoted"
PIPELINE_ROLLED_BACK: Final = "pipeline.rolled-back"
_LIVE_FILE: Final = "live.json"
_LATEST_REPORT: Final = "latest.md"
KEEP_RUNS: Final = 10
_RUN_FOLDER: Final = re.compile(r"^\d{8}T\d{6}Z-")


class CanaryError(FlowfactoryError, RuntimeError):
    """Raised when a canary cannot run (no candidate, unknown version) or a promotion is refused."""


# --------------------------------------------------------------------------------------------
# Versions and the live one


def _area(pipeline: str, *parts: str) -> str:
    return "/".join([CANARY_AREA, pipeline, *parts])


def candidate_fingerprint(canary: CanaryConfig) -> str:
    """A short hash of the candidate transform: a promotion holds for this candidate only."""
    return hashlib.sha256(canary.candidate.model_dump_json().encode()).hexdigest()[:16]


def parse_version(text: str) -> Version:
    """``v1`` or ``v2``; a CanaryError names the choices otherwise."""
    if text == "v1":
        return "v1"
    if text == "v2":
        return "v2"
    raise CanaryError(f"unknown version {text!r}: use v1 (the transform) or v2 (the candidate)")


def version_pipeline(pipeline: PipelineFile, version: Version) -> PipelineFile:
    """The pipeline as it runs at ``version``: v1 is the file's transform, v2 its candidate."""
    if version == "v1":
        return pipeline
    canary = pipeline.config.canary
    if canary is None:
        raise CanaryError(f"pipeline {pipeline.name!r} has no canary candidate (v2)")
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
    raw = root.get(_area(pipeline.name, _LIVE_FILE))
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


def _set_live(pipeline: PipelineFile, root: DataRoot, version: Version, by: str) -> LiveVersion:
    state: dict[str, str | None] = {
        "version": version,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "by": by,
        "candidate": None,
    }
    if version == "v2":
        canary = pipeline.config.canary
        if canary is None:
            raise CanaryError(f"pipeline {pipeline.name!r} has no canary candidate (v2)")
        state["candidate"] = candidate_fingerprint(canary)
    root.put_atomic(_area(pipeline.name, _LIVE_FILE), json.dumps(state, indent=2).encode())
    return live_version(pipeline, root)


def _emit_version_change(before: LiveVersion, after: LiveVersion, canary_run: str) -> None:
    event = PIPELINE_PROMOTED if after.version == "v2" else PIPELINE_ROLLED_BACK
    events.emit(
        event,
        events.pipeline_resource(after.pipeline),
        {"from_version": before.version, "to_version": after.version, "canary_run": canary_run},
    )


def promote(
    pipeline: PipelineFile,
    root: DataRoot,
    version: str,
    *,
    by: str = "flowfactory promote",
    canary_run: str = "",
    emit: bool = True,
) -> tuple[LiveVersion, LiveVersion]:
    """Make ``version`` live; return the live version before and after."""
    if version not in VERSIONS:
        raise CanaryError(f"unknown version {version!r}: use v1 (the transform) or v2 (candidate)")
    before = live_version(pipeline, root)
    after = _set_live(pipeline, root, version, by)  # type: ignore[arg-type]
    if emit and before.version != after.version:
        _emit_version_change(before, after, canary_run)
    return before, after


def rollback(
    pipeline: PipelineFile, root: DataRoot, *, by: str = "flowfactory rollback", emit: bool = True
) -> tuple[LiveVersion, LiveVersion]:
    """Return production to v1."""
    return promote(pipeline, root, "v1", by=by, emit=emit)


# --------------------------------------------------------------------------------------------
# The comparison (pure: frames in, report out)


def _write_parquet(root: DataRoot, relative: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    root.put_atomic(relative, buffer.getvalue())


def _read_parquet(root: DataRoot, relative: str) -> pl.DataFrame:
    data = root.get(relative)
    if data is None:
        raise CanaryError(f"{relative} is missing under {root.url}")
    return pl.read_parquet(data)


def _check_config(pipeline: PipelineFile) -> tuple[CanaryConfig, list[str]]:
    canary = pipeline.config.canary
    if canary is None:
        raise CanaryError(
            f"pipeline {pipeline.name!r} has no `canary:` section; add a candidate to run one"
        )
    key = canary.match_on or pipeline.config.destination.key
    if not key:
        raise ConfigError(
            [
                pipeline.problem(
                    ("canary",),
                    "a canary matches v1 and v2 rows on a key: "
                    "set destination.key or canary.match_on",
                    key=True,
                )
            ]
        )
    return canary, key


def prepare_sample(
    pipeline: PipelineFile, root: DataRoot, scope: Partition | None, area: str
) -> dict[str, int]:
    """Sample the inputs and write them to the canary area; return rows per sampled table.

    Inputs without the sample key columns (reference tables) are copied whole and not counted.
    """
    canary, _ = _check_config(pipeline)
    frames = {
        table: read_source(source, root, scope) for table, source in pipeline.config.inputs.items()
    }
    try:
        sampled, keyed = sample_inputs(frames, canary.sample.spec())
    except SamplingError as exc:
        raise ConfigError([pipeline.problem(("canary", "sample"), str(exc))]) from exc
    rows: dict[str, int] = {}
    for table, frame in sampled.items():
        collected = frame.collect()
        if table in keyed:
            rows[table] = collected.height
        _write_parquet(root, f"{area}/input/{table}.parquet", collected)
    return rows


def _at_candidate(pipeline: PipelineFile, error: ConfigError) -> ConfigError:
    """A transform error of v2, positioned at the candidate instead of at `transform:`."""
    canary = pipeline.config.canary
    kind = "python" if canary and isinstance(canary.candidate, PythonTransform) else "sql"
    return ConfigError(
        [
            pipeline.problem(("canary", "candidate", kind), p.message)
            if p.field.startswith("transform")
            else p
            for p in error.problems
        ]
    )


def check_versions(
    pipeline: PipelineFile, root: DataRoot, scope: Partition | None, settings: Settings
) -> None:
    """Resolve both versions' plans on the inputs' schemas: mistakes surface before a run."""
    schemas: list[pl.Schema] = []
    for version in VERSIONS:
        versioned = version_pipeline(pipeline, version)
        try:
            schemas.append(
                check_plan(versioned, root, scope, resolve_transform(versioned, settings))
            )
        except ConfigError as exc:
            raise (_at_candidate(pipeline, exc) if version == "v2" else exc) from None
    problems = _output_problems(pipeline, *schemas)
    if problems:
        raise ConfigError(problems)


def run_version(
    pipeline: PipelineFile, version: Version, root: DataRoot, area: str, settings: Settings
) -> int:
    """Run one version's transform on the sampled inputs; write its output; return its rows."""
    versioned = version_pipeline(pipeline, version)
    frames = {
        table: _read_parquet(root, f"{area}/input/{table}.parquet").lazy()
        for table in pipeline.config.inputs
    }
    try:
        function = resolve_transform(versioned, settings)
        output = apply_transform(versioned, frames, function).collect()
    except ConfigError as exc:
        raise (_at_candidate(pipeline, exc) if version == "v2" else exc) from None
    _write_parquet(root, f"{area}/{version}/output.parquet", output)
    return output.height


def _output_problems(
    pipeline: PipelineFile, v1: Mapping[str, pl.DataType], v2: Mapping[str, pl.DataType]
) -> list[Problem]:
    """Tolerances and keys that name columns the outputs lack, or tolerances on exact types."""
    canary, key = _check_config(pipeline)
    problems = [
        pipeline.problem(
            ("canary", "tolerance", "columns", column),
            f"no column {column!r} in the output (it has {', '.join(v1)})",
            key=True,
        )
        for column in canary.tolerance.columns
        if column not in v1 and column not in v2
    ]
    problems += [
        pipeline.problem(
            ("canary", "tolerance", "columns", column),
            f"column {column!r} is {v1[column]}: tolerances apply to float columns only "
            "(integers, text and dates compare exactly)",
            key=True,
        )
        for column in canary.tolerance.columns
        if column in v1 and not v1[column].is_float()
    ]
    missing_key = [k for k in key if k not in v1 and k not in v2]
    if missing_key:
        problems.append(
            pipeline.problem(
                ("canary", "match_on") if canary.match_on else ("destination", "key"),
                f"key column(s) {', '.join(missing_key)} not in the output",
            )
        )
    return problems


def compare_outputs(pipeline: PipelineFile, root: DataRoot, area: str) -> DiffReport:
    """Diff v2's output against v1's with the pipeline's key and tolerances."""
    canary, key = _check_config(pipeline)
    v1 = _read_parquet(root, f"{area}/v1/output.parquet")
    v2 = _read_parquet(root, f"{area}/v2/output.parquet")
    tolerance = canary.tolerance
    problems = _output_problems(pipeline, v1.schema, v2.schema)
    if problems:
        raise ConfigError(problems)
    return diff_frames(
        v1,
        v2,
        key,
        tolerance=tolerance.tolerance(),
        column_tolerances={c: t.tolerance() for c, t in tolerance.columns.items()},
        sample_cap=canary.sample_rows,
    )


# --------------------------------------------------------------------------------------------
# The outcome


@dataclass(frozen=True)
class CanaryOutcome:
    """What a canary run decided, with the report behind it."""

    pipeline: str
    verdict: Verdict
    report: DiffReport | None
    sample: str
    rows_in: Mapping[str, int]
    promoted: bool = False
    message: str = ""

    def markdown(self) -> str:
        """The summary shown in the Prefect UI and printed by the CLI."""
        inputs = ", ".join(f"{t} {n:,}" for t, n in self.rows_in.items())
        head = [
            f"Sample: {self.sample}. Sampled input rows: {inputs or 'none'}.",
            "",
            f"**Outcome:** {self.message}",
            "",
        ]
        if self.report is None:
            return f"# Canary of {self.pipeline}: **{self.verdict.value.upper()}**\n\n" + "\n".join(
                head
            )
        body = self.report.markdown(title=f"Canary of {self.pipeline} (v1 vs v2)")
        title, _, rest = body.partition("\n")
        return "\n".join([title, "", *head, rest.lstrip("\n")])


def _artifact_key(pipeline: str, suffix: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"canary-{pipeline}-{suffix}".lower())


def _publish(outcome: CanaryOutcome, root: DataRoot, area: str, *, emit: bool = True) -> None:
    """Artifacts for the UI, the report next to the outputs, and the verdict event."""
    from prefect.artifacts import (  # noqa: PLC0415 - Prefect loads only inside runs
        create_markdown_artifact,
        create_table_artifact,
    )

    text = outcome.markdown()
    root.put_atomic(f"{area}/report.md", text.encode())
    root.put_atomic(_area(outcome.pipeline, _LATEST_REPORT), text.encode())
    create_markdown_artifact(
        markdown=text,
        key=_artifact_key(outcome.pipeline, "summary"),
        description=f"Canary of {outcome.pipeline}: {outcome.verdict.value}",
    )
    rows = outcome.report.differing_rows() if outcome.report else []
    create_table_artifact(
        table=rows or [{"kind": "none", "detail": "no differing rows in the sample"}],
        key=_artifact_key(outcome.pipeline, "differences"),
        description=f"Differing rows of v1 and v2 of {outcome.pipeline} (capped sample)",
    )
    if emit:
        _emit_verdict(outcome)


def _emit_verdict(outcome: CanaryOutcome) -> None:
    report = outcome.report
    payload: dict[str, object] = {
        "versions": list(VERSIONS),
        "sample": outcome.sample,
        "sample_rows": dict(outcome.rows_in),
        "message": outcome.message,
    }
    if report is not None:
        payload.update(
            rows_v1=report.rows_v1,
            rows_v2=report.rows_v2,
            rows_in_both=report.rows_in_both,
            rows_only_v1=report.rows_only_v1,
            rows_only_v2=report.rows_only_v2,
            rows_changed=report.rows_changed,
            unequal_values={c.column: c.unequal for c in report.differing_columns},
            schema_changes=[str(s) for s in report.schema_changes],
            duplicate_keys=[report.duplicate_keys_v1, report.duplicate_keys_v2],
            certifies=report.certifies(),
        )
    name = {
        Verdict.passed: CANARY_PASSED,
        Verdict.failed: CANARY_FAILED,
        Verdict.inconclusive: CANARY_INCONCLUSIVE,
    }[outcome.verdict]
    events.emit(name, events.pipeline_resource(outcome.pipeline), payload)


def prune_runs(pipeline: str, root: DataRoot, keep: int = KEEP_RUNS) -> list[str]:
    """Delete the sampled inputs and outputs of all but the ``keep`` latest canary runs."""
    folder = root.dataset_dir(_area(pipeline, "runs"))
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


def latest_report(pipeline: str, root: DataRoot) -> str | None:
    """The markdown report of the pipeline's last canary, if one ran."""
    data = root.get(_area(pipeline, _LATEST_REPORT))
    return data.decode() if data is not None else None


# --------------------------------------------------------------------------------------------
# The flows (Prefect is imported inside: the library above stays importable without it)


def _flow_run_id() -> str:
    from prefect.runtime import flow_run  # noqa: PLC0415

    return str(flow_run.id) if flow_run.id else uuid.uuid4().hex


def version_run(name: str, version: str, area: str) -> int:
    """Body of the per-version subflow: one transform over the sampled inputs."""
    settings = get_settings()
    pipeline = find_pipeline(name, settings)
    root = DataRoot(settings.data_root_url)
    if version not in VERSIONS:
        raise CanaryError(f"unknown version {version!r}")
    return run_version(pipeline, version, root, area, settings)  # type: ignore[arg-type]


def _approved(pipeline: str, canary: CanaryConfig) -> tuple[bool, str]:
    """Wait for a person to approve the promotion in the Prefect UI."""
    from prefect.exceptions import FlowPauseTimeout  # noqa: PLC0415
    from prefect.flow_runs import pause_flow_run  # noqa: PLC0415
    from prefect.input import RunInput  # noqa: PLC0415

    class Approval(RunInput):
        """Promote v2 of the pipeline to production?"""

        approve: bool = False
        note: str = ""

    question = Approval.with_initial_data(
        description=f"The canary of **{pipeline}** passed. Promote v2 to production?",
        approve=False,
    )
    try:
        answer = pause_flow_run(
            wait_for_input=question,
            timeout=int(canary.approval_timeout.total_seconds()),
            poll_interval=2,
            key=f"canary-{pipeline}",
        )
    except FlowPauseTimeout:
        return False, f"no approval within {canary.approval_timeout}"
    note = f": {answer.note}" if answer.note else ""
    return bool(answer.approve), ("approved" if answer.approve else "rejected") + note


def _run_and_compare(
    pipeline: PipelineFile, root: DataRoot, area: str, version_flow: Any
) -> tuple[Verdict, DiffReport | None, str]:
    """Both versions as subflows at the same time, then the diff of their outputs."""
    # One thread per version, each with a copy of this run's context (so both are subflows of
    # it): the two versions run at the same time.
    with ThreadPoolExecutor(max_workers=len(VERSIONS)) as pool:
        futures = [
            pool.submit(
                copy_context().run, version_flow, pipeline.name, version, area, return_state=True
            )
            for version in VERSIONS
        ]
        states = [future.result() for future in futures]
    broken = {v: s for v, s in zip(VERSIONS, states, strict=True) if not s.is_completed()}
    if "v1" in broken:
        message = f"v1 did not complete on the sample ({broken['v1'].message}); nothing to compare"
        return Verdict.inconclusive, None, message
    if "v2" in broken:
        return Verdict.failed, None, f"v2 did not complete on the sample: {broken['v2'].message}"
    report = compare_outputs(pipeline, root, area)
    return report.verdict, report, "; ".join(report.reasons()) or report.certifies()


def canary_run(
    name: str,
    partition: str | None,
    version_flow: Any,
    settings: Settings | None = None,
) -> State[Any]:
    """Body of the canary flow; ``version_flow`` is the subflow that runs one version."""
    from prefect.logging import get_run_logger  # noqa: PLC0415
    from prefect.states import Completed, Failed  # noqa: PLC0415

    logger = get_run_logger()
    settings = settings or get_settings()
    pipeline = find_pipeline(name, settings)
    canary, _ = _check_config(pipeline)
    root = DataRoot(settings.data_root_url)
    scope = Partition.parse(partition) if partition else None
    run_id = _flow_run_id()
    # Folders sort by start time, so that old runs can be pruned.
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    area = _area(name, "runs", f"{started}-{run_id}")
    spec = canary.sample.spec()

    rows_in = prepare_sample(pipeline, root, scope, area)
    logger.info("sampled %s: %s", spec.describe(), rows_in)
    if not any(rows_in.values()):
        verdict, report = Verdict.inconclusive, None
        message = "the sample is empty: no input row has a key in it; nothing was compared"
    else:
        verdict, report, message = _run_and_compare(pipeline, root, area, version_flow)

    promoted = False
    announced = False
    if verdict is Verdict.passed:
        if canary.promote == "manual":
            outcome = CanaryOutcome(
                name, verdict, report, spec.describe(), rows_in, message=message
            )
            # The verdict is out (event and artifacts) while the run waits for a person.
            _publish(outcome, root, area)
            announced = True
            approved, why = _approved(name, canary)
        else:
            approved, why = True, "promote: auto"
        if approved:
            before, _ = promote(pipeline, root, "v2", by=f"canary run {run_id}", canary_run=run_id)
            promoted = True
            message = f"passed and promoted ({why}): v2 is live, was {before.version}. " + (
                report.certifies() if report else ""
            )
        else:
            message = f"passed but not promoted ({why}); production is unchanged"
    else:
        message = f"{verdict.value}; production is unchanged. {message}"
    outcome = CanaryOutcome(name, verdict, report, spec.describe(), rows_in, promoted, message)
    _publish(outcome, root, area, emit=not announced)
    prune_runs(name, root)
    logger.info("canary of %s: %s", name, message)
    if verdict is Verdict.passed and promoted:
        return Completed(name="Promoted", message=message)
    if verdict is Verdict.passed:
        return Failed(name="NotPromoted", message=message)
    return Failed(name=verdict.value.capitalize(), message=message)


# --------------------------------------------------------------------------------------------
# Deployments


def canary_deployment_name(pipeline: str) -> str:
    """The canary deployment of a pipeline (pipeline names cannot contain '-')."""
    return f"{pipeline}-canary"


def canary_deployment_spec(
    pipeline: PipelineFile, *, tags: list[str], version: str, work_pool: str | None = None
) -> DeploymentSpec | None:
    """The deployment that runs a pipeline's canary from the UI; None without a candidate."""
    if pipeline.config.canary is None:
        return None
    kind = "python" if isinstance(pipeline.config.canary.candidate, PythonTransform) else "sql"
    current = pipeline.config.transform
    was = "sql" if isinstance(current, SqlTransform) else "python" if current else "none"
    return DeploymentSpec(
        name=canary_deployment_name(pipeline.name),
        flow_name=CANARY_FLOW,
        entrypoint=CANARY_ENTRYPOINT,
        description=(
            f"Canary of pipeline {pipeline.name}: the {was} transform (v1) against the {kind} "
            "candidate (v2) on a sample; promotes v2 when they agree."
        ),
        version=version,
        tags=[*tags, "canary"],
        parameters={"name": pipeline.name},
        work_pool=work_pool or pipeline.config.work_pool,
    )


# --------------------------------------------------------------------------------------------
# Entry points for the command line


def run_canary_now(name: str, partition: str | None, settings: Settings) -> tuple[bool, str]:
    """Run the canary flow in this process; return whether v2 was promoted and the report.

    Config mistakes (no candidate, no key, a bad partition) surface before the flow starts.
    """
    from prefect.flows import Flow, load_flow_from_entrypoint  # noqa: PLC0415

    pipeline = find_pipeline(name, settings)
    _check_config(pipeline)
    scope = Partition.parse(partition) if partition else None
    check_versions(pipeline, DataRoot(settings.data_root_url), scope, settings)
    canary_flow: Flow[..., Any] = load_flow_from_entrypoint(
        str(settings.project_dir / CANARY_ENTRYPOINT)
    )
    # Flow.__call__'s overloads do not cover return_state=True.
    state = cast("State[Any]", canary_flow(name, partition, return_state=True))
    text = latest_report(name, DataRoot(settings.data_root_url)) or ""
    summary = f"{name}: canary {state.name}: {state.message or ''}".rstrip(": ")
    return state.is_completed(), f"{text}\n{summary}" if text else summary


def change_live_version(
    name: str, version: str, settings: Settings, *, by: str
) -> tuple[LiveVersion, LiveVersion, bool]:
    """Set the live version of ``name``; emit the event when a Prefect API answers.

    Returns the live version before and after, and whether the event was sent.
    """
    import os  # noqa: PLC0415

    from flowfactory.stack import api_is_healthy  # noqa: PLC0415

    pipeline = find_pipeline(name, settings)
    root = DataRoot(settings.data_root_url)
    url = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url
    online = api_is_healthy(url)
    if online:
        # Prefect reads PREFECT_API_URL once, when imported: set it first.
        os.environ["PREFECT_API_URL"] = url
    before, after = promote(pipeline, root, version, by=by, emit=online)
    if online:
        from prefect.events.worker import EventsWorker  # noqa: PLC0415

        EventsWorker.drain_all(timeout=30)
    return before, after, online
