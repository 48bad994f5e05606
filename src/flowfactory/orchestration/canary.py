"""The canary flow's body: both versions as parallel subflows on one sample, then its outcome.

The canary package decides (verdict, whether to promote, the outcome); this shell runs the
subflows, asks for approval in the UI when the pipeline says so, sets the live version, and
publishes the outcome as artifacts and events.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from datetime import UTC, datetime
from typing import Any, cast

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.schemas.objects import State
from prefect.events.worker import EventsWorker
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.input import RunInput
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from flowfactory.canary import (
    VERSIONS,
    Approval,
    CanaryOutcome,
    Comparison,
    LiveVersion,
    NextStep,
    Verdict,
    awaiting_approval,
    canary_area,
    canary_of,
    check_versions,
    compare_outputs,
    judge,
    latest_report,
    next_step,
    parse_version,
    prepare_sample,
    prune_runs,
    run_version,
    sample_spec,
    set_live_version,
    settle,
    write_latest_report,
)
from flowfactory.config import CanaryConfig, PipelineFile, find_pipeline
from flowfactory.data import DataRoot, Partition
from flowfactory.orchestration import events
from flowfactory.orchestration.artifacts import artifact_key
from flowfactory.orchestration.entrypoints import CANARY_ENTRYPOINT
from flowfactory.orchestration.http import read_http
from flowfactory.orchestration.prefect_api import api_is_healthy
from flowfactory.settings import Settings, get_settings

__all__ = ["canary_run", "change_live_version", "run_canary_now", "version_run"]


def _flow_run_id() -> str:
    return str(flow_run.id) if flow_run.id else uuid.uuid4().hex


def version_run(name: str, version: str, area: str) -> int:
    """Body of the per-version subflow: one transform over the sampled inputs."""
    settings = get_settings()
    pipeline = find_pipeline(name, settings)
    root = DataRoot(settings.data_root_url)
    return run_version(pipeline, parse_version(version), root, area, settings)


def _approved(pipeline: str, canary: CanaryConfig) -> Approval:
    """Wait for a person to approve the promotion in the Prefect UI."""

    class PromotionInput(RunInput):
        """Promote v2 of the pipeline to production?"""

        approve: bool = False
        note: str = ""

    question = PromotionInput.with_initial_data(
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
        return Approval(approved=False, why=f"no approval within {canary.approval_timeout}")
    note = f": {answer.note}" if answer.note else ""
    return Approval(
        approved=bool(answer.approve), why=("approved" if answer.approve else "rejected") + note
    )


def _run_versions(
    pipeline: PipelineFile, root: DataRoot, area: str, rows_in: dict[str, int], version_flow: Any
) -> Comparison:
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
    failures = {
        version: str(state.message)
        for version, state in zip(VERSIONS, states, strict=True)
        if not state.is_completed()
    }
    report = None if failures else compare_outputs(pipeline, root, area)
    return judge(
        sampled_rows=rows_in,
        v1_failure=failures.get("v1"),
        v2_failure=failures.get("v2"),
        report=report,
    )


def _publish(outcome: CanaryOutcome, root: DataRoot, area: str, *, emit: bool = True) -> None:
    """Artifacts for the UI, the report next to the outputs, and the verdict event."""
    text = outcome.markdown()
    root.put_atomic(f"{area}/report.md", text.encode())
    write_latest_report(outcome.pipeline, root, text)
    create_markdown_artifact(
        markdown=text,
        key=artifact_key("canary", outcome.pipeline, "summary"),
        description=f"Canary of {outcome.pipeline}: {outcome.verdict.value}",
    )
    rows = outcome.report.differing_rows() if outcome.report else []
    create_table_artifact(
        table=rows or [{"kind": "none", "detail": "no differing rows in the sample"}],
        key=artifact_key("canary", outcome.pipeline, "differences"),
        description=f"Differing rows of v1 and v2 of {outcome.pipeline} (capped sample)",
    )
    if emit:
        events.emit_verdict(outcome, list(VERSIONS))


def canary_run(
    name: str,
    partition: str | None,
    version_flow: Any,
    settings: Settings | None = None,
) -> State[Any]:
    """Body of the canary flow; ``version_flow`` is the subflow that runs one version."""
    logger = get_run_logger()
    settings = settings or get_settings()
    pipeline = find_pipeline(name, settings)
    canary, _ = canary_of(pipeline)
    root = DataRoot(settings.data_root_url)
    scope = Partition.parse(partition) if partition else None
    run_id = _flow_run_id()
    # Folders sort by start time, so that old runs can be pruned.
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    area = canary_area(name, "runs", f"{started}-{run_id}")
    sample = sample_spec(canary.sample).describe()

    rows_in = prepare_sample(pipeline, root, scope, area, read_http=read_http)
    logger.info("sampled %s: %s", sample, rows_in)
    if any(rows_in.values()):
        comparison = _run_versions(pipeline, root, area, rows_in, version_flow)
    else:
        comparison = judge(sampled_rows=rows_in)

    step = next_step(comparison, canary)
    approval: Approval | None = None
    if step is NextStep.ask:
        # The verdict is out (event and artifacts) while the run waits for a person.
        pending = awaiting_approval(name, comparison, sample=sample, rows_in=rows_in)
        _publish(pending, root, area)
        approval = _approved(name, canary)
    elif step is NextStep.promote:
        approval = Approval.automatic()
    was = None
    if approval is not None and approval.approved:
        before, after = set_live_version(pipeline, root, "v2", by=f"canary run {run_id}")
        events.emit_version_change(before, after, run_id)
        was = before.version
    outcome = settle(name, comparison, sample=sample, rows_in=rows_in, approval=approval, was=was)
    _publish(outcome, root, area, emit=step is not NextStep.ask)
    prune_runs(name, root)
    logger.info("canary of %s: %s", name, outcome.message)
    if outcome.verdict is Verdict.passed and outcome.promoted:
        return Completed(name=outcome.state_name, message=outcome.message)
    return Failed(name=outcome.state_name, message=outcome.message)


def run_canary_now(name: str, partition: str | None, settings: Settings) -> tuple[bool, str]:
    """Run the canary flow in this process; return whether v2 was promoted and the report.

    Config mistakes (no candidate, no key, a bad partition) surface before the flow starts.
    """
    pipeline = find_pipeline(name, settings)
    canary_of(pipeline)
    scope = Partition.parse(partition) if partition else None
    check_versions(pipeline, DataRoot(settings.data_root_url), scope, settings)
    canary_flow: Flow[..., Any] = load_flow_from_entrypoint(CANARY_ENTRYPOINT)
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
    pipeline = find_pipeline(name, settings)
    root = DataRoot(settings.data_root_url)
    url = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url
    online = api_is_healthy(url)
    if online:
        # Prefect reads PREFECT_API_URL once, when imported: set it first.
        os.environ["PREFECT_API_URL"] = url
    before, after = set_live_version(pipeline, root, version, by=by)
    if online:
        events.emit_version_change(before, after, "")
        EventsWorker.drain_all(timeout=30)
    return before, after, online
