"""The canary's decisions as values: the verdict, the next step, the outcome and its message."""

from __future__ import annotations

import polars as pl
import pytest

from flowfactory.canary import (
    Approval,
    NextStep,
    Verdict,
    awaiting_approval,
    diff_frames,
    judge,
    next_step,
    settle,
)
from flowfactory.config import CanaryConfig

ROWS = {"source": 3}
V1 = pl.DataFrame({"id": [1, 2, 3], "value": [1.0, 2.0, 3.0]})


def canary(promote: str) -> CanaryConfig:
    """A canary section with the given promotion mode."""
    return CanaryConfig.model_validate(
        {
            "candidate": {"sql": "SELECT * FROM source"},
            "sample": {"key": ["id"], "fraction": 0.5},
            "promote": promote,
        }
    )


def test_an_empty_sample_proves_nothing() -> None:
    """No sampled input row: inconclusive, whatever else is known."""
    comparison = judge(sampled_rows={"source": 0}, v2_failure="boom")
    assert comparison.verdict is Verdict.inconclusive
    assert comparison.report is None
    assert "the sample is empty" in comparison.reason


def test_a_broken_v1_is_inconclusive_and_a_broken_v2_fails() -> None:
    """v1 failing leaves nothing to compare; v2 failing is the candidate's fault."""
    assert judge(sampled_rows=ROWS, v1_failure="no such file").verdict is Verdict.inconclusive
    failed = judge(sampled_rows=ROWS, v2_failure="division by zero")
    assert failed.verdict is Verdict.failed
    assert failed.reason == "v2 did not complete on the sample: division by zero"


def test_the_report_decides_when_both_versions_ran() -> None:
    """Equal outputs pass with the report's bound; a changed value fails with its reason."""
    passed = judge(sampled_rows=ROWS, report=diff_frames(V1, V1, ["id"]))
    assert passed.verdict is Verdict.passed
    assert passed.report is not None
    assert passed.reason == passed.report.certifies()
    changed = V1.with_columns(
        pl.when(pl.col("id") == 2).then(9.0).otherwise("value").alias("value")
    )
    failed = judge(sampled_rows=ROWS, report=diff_frames(V1, changed, ["id"]))
    assert failed.verdict is Verdict.failed
    assert "value" in failed.reason
    with pytest.raises(ValueError, match="the diff report decides"):
        judge(sampled_rows=ROWS)


@pytest.mark.parametrize(
    ("verdict_of", "promote", "expected"),
    [
        ("passed", "auto", NextStep.promote),
        ("passed", "manual", NextStep.ask),
        ("failed", "auto", NextStep.keep),
        ("inconclusive", "manual", NextStep.keep),
    ],
)
def test_next_step(verdict_of: str, promote: str, expected: NextStep) -> None:
    """Only a passing canary moves on: to promotion, or to a person's approval."""
    reports = {
        "passed": judge(sampled_rows=ROWS, report=diff_frames(V1, V1, ["id"])),
        "failed": judge(sampled_rows=ROWS, v2_failure="boom"),
        "inconclusive": judge(sampled_rows={"source": 0}),
    }
    assert next_step(reports[verdict_of], canary(promote)) is expected


def test_outcomes_and_their_states() -> None:
    """Promoted, not promoted, and not passed each say what happened to production."""
    passed = judge(sampled_rows=ROWS, report=diff_frames(V1, V1, ["id"]))
    promoted = settle(
        "p", passed, sample="s", rows_in=ROWS, approval=Approval.automatic(), was="v1"
    )
    assert promoted.promoted
    assert promoted.state_name == "Promoted"
    assert promoted.message.startswith("passed and promoted (promote: auto): v2 is live, was v1.")

    rejected = settle("p", passed, sample="s", rows_in=ROWS, approval=Approval(False, "rejected"))
    assert not rejected.promoted
    assert rejected.state_name == "NotPromoted"
    assert rejected.message == "passed but not promoted (rejected); production is unchanged"

    broken = judge(sampled_rows=ROWS, v2_failure="boom")
    failed = settle("p", broken, sample="s", rows_in=ROWS, approval=Approval.automatic())
    assert not failed.promoted
    assert failed.state_name == "Failed"
    assert failed.message.startswith("failed; production is unchanged. v2 did not complete")


def test_the_outcome_while_waiting_for_approval_carries_the_reason() -> None:
    """While a person decides, the published outcome is the verdict and its reason."""
    passed = judge(sampled_rows=ROWS, report=diff_frames(V1, V1, ["id"]))
    pending = awaiting_approval("p", passed, sample="s", rows_in=ROWS)
    assert (pending.verdict, pending.promoted, pending.message) == (
        Verdict.passed,
        False,
        passed.reason,
    )
    assert "**Outcome:**" in pending.markdown()
