"""The replay's verdicts on a month: progress, stall, failure and blocks as values."""

from __future__ import annotations

from flowfactory.stack.replay import MonthProgress, ObservedRun, Outcome, Verdict, assess

PIPELINES = ["ingest", "delays", "stats"]
UPSTREAM = {"ingest": [], "delays": ["ingest"], "stats": ["delays"]}


def _run(pipeline: str, state: str, *, run: str = "", step: int = 0) -> ObservedRun:
    types = {
        "Scheduled": "SCHEDULED",
        "Late": "SCHEDULED",
        "Pending": "PENDING",
        "Running": "RUNNING",
        "Completed": "COMPLETED",
        "Skipped": "COMPLETED",
        "Failed": "FAILED",
        "Crashed": "CRASHED",
    }
    run_id = run or f"{pipeline}-1"
    return ObservedRun(pipeline, run_id, types[state], state, f"{run_id}-{state}-{step}")


def _assess(
    runs: list[ObservedRun],
    now: float,
    previous: MonthProgress | None = None,
    up_to_date: tuple[str, ...] = (),
) -> MonthProgress:
    return assess(
        PIPELINES,
        UPSTREAM,
        runs,
        now=now,
        stall_after=60.0,
        previous=previous,
        up_to_date=up_to_date,
    )


def test_a_month_whose_pipelines_all_completed_is_settled() -> None:
    runs = [_run("ingest", "Completed"), _run("delays", "Skipped"), _run("stats", "Completed")]
    month = _assess(runs, now=10.0)
    assert month.outcome is Outcome.SETTLED
    assert set(month.verdicts.values()) == {Verdict.COMPLETED}


def test_runs_that_keep_moving_are_waited_for_past_the_stall_bound() -> None:
    """Each observation shows a new state, so the month waits however long it takes."""
    month = _assess([_run("ingest", "Scheduled")], now=0.0)
    month = _assess([_run("ingest", "Running", step=1)], now=50.0, previous=month)
    month = _assess([_run("ingest", "Completed", step=2)], now=100.0, previous=month)
    month = _assess(
        [_run("ingest", "Completed", step=2), _run("delays", "Pending")], now=150.0, previous=month
    )
    assert month.outcome is Outcome.WAITING
    assert month.moved_at == 150.0
    assert month.verdicts == {
        "ingest": Verdict.COMPLETED,
        "delays": Verdict.WAITING,
        "stats": Verdict.WAITING,
    }


def test_a_run_not_yet_created_is_waiting_not_failed() -> None:
    """A completed producer whose consumer's run does not exist yet: no failure, keep waiting."""
    month = _assess([_run("ingest", "Completed")], now=5.0)
    assert month.outcome is Outcome.WAITING
    assert month.named(Verdict.FAILED) == []
    assert month.states["delays"] == ()


def test_no_move_for_the_stall_bound_is_a_stall_not_a_failure() -> None:
    runs = [_run("ingest", "Completed"), _run("delays", "Late")]
    month = _assess(runs, now=0.0)
    month = _assess(runs, now=59.0, previous=month)
    assert month.outcome is Outcome.WAITING
    month = _assess(runs, now=60.0, previous=month)
    assert month.outcome is Outcome.STALLED
    assert month.named(Verdict.WAITING) == ["delays", "stats"]
    assert month.named(Verdict.FAILED) == []


def test_a_failed_run_fails_its_pipeline_and_blocks_the_ones_downstream() -> None:
    month = _assess([_run("ingest", "Completed"), _run("delays", "Failed")], now=1.0)
    assert month.outcome is Outcome.SETTLED
    assert month.named(Verdict.FAILED) == ["delays"]
    assert month.named(Verdict.BLOCKED) == ["stats"]
    assert month.blocked_by == {"stats": ("delays",)}


def test_a_failed_run_then_a_completed_one_is_a_completion() -> None:
    runs = [
        _run("ingest", "Failed", run="ingest-1"),
        _run("ingest", "Completed", run="ingest-2"),
    ]
    month = _assess(runs, now=1.0)
    assert month.verdicts["ingest"] is Verdict.COMPLETED


def test_a_failed_run_beside_one_still_running_keeps_the_pipeline_waiting() -> None:
    runs = [_run("ingest", "Failed", run="ingest-1"), _run("ingest", "Running", run="ingest-2")]
    month = _assess(runs, now=1.0)
    assert month.verdicts["ingest"] is Verdict.WAITING
    assert month.outcome is Outcome.WAITING


def test_a_pipeline_without_a_run_whose_inputs_were_consumed_is_up_to_date() -> None:
    """A month replayed again starts nothing: that settles it, it is no failure."""
    month = _assess([], now=1.0, up_to_date=("ingest", "delays", "stats"))
    assert month.outcome is Outcome.SETTLED
    assert set(month.verdicts.values()) == {Verdict.UP_TO_DATE}


def test_up_to_date_does_not_hide_a_run_in_progress() -> None:
    month = _assess([_run("ingest", "Running")], now=1.0, up_to_date=("ingest",))
    assert month.verdicts["ingest"] is Verdict.WAITING


def test_runs_of_pipelines_not_asked_about_are_ignored() -> None:
    runs = [_run("other", "Failed"), *(_run(p, "Completed") for p in PIPELINES)]
    month = _assess(runs, now=1.0)
    assert month.outcome is Outcome.SETTLED
    assert "other" not in month.verdicts


def test_the_summary_names_failures_blocks_and_stalls_apart() -> None:
    from flowfactory.stack.demo import DemoReport  # noqa: PLC0415 - loads Prefect

    report = DemoReport(runs={p: [] for p in PIPELINES})
    failed = _assess([_run("ingest", "Completed"), _run("delays", "Crashed")], now=0.0)
    report.add_month("year=2013/month=1", failed, stall_after=60.0)
    stalled = _assess([_run("ingest", "Late")], now=0.0)
    stalled = _assess([_run("ingest", "Late")], now=60.0, previous=stalled)
    report.add_month("year=2013/month=2", stalled, stall_after=60.0)
    problems = [line for line in report.text().splitlines() if ":" in line]
    assert problems == [
        "FAILED: delays year=2013/month=1: Crashed",
        "NOT RUN: stats year=2013/month=1: not started, delays did not complete",
        "STALLED: ingest year=2013/month=2: Late; no run moved for 60 s",
        "STALLED: delays year=2013/month=2: no run; no run moved for 60 s",
        "STALLED: stats year=2013/month=2: no run; no run moved for 60 s",
    ]
    assert not report.ok


def test_a_summary_of_completed_months_is_ok() -> None:
    from flowfactory.stack.demo import DemoReport  # noqa: PLC0415 - loads Prefect

    report = DemoReport(runs={p: [] for p in PIPELINES})
    report.add_month(
        "year=2013/month=1", _assess([_run(p, "Completed") for p in PIPELINES], now=0.0), 60.0
    )
    report.outputs = dict.fromkeys(PIPELINES, (1, 10))
    assert report.ok
    assert "ingest" in report.text()
    assert report.runs["ingest"] == ["Completed"]
