"""What a canary decides, as values: the verdict of a comparison, whether to promote, the outcome.

The canary flow gathers the facts (how each version's run ended, the diff report, a person's
answer) and acts on the decisions made here; nothing in this module does any I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from flowfactory.canary.diff import DiffReport, Verdict
from flowfactory.canary.versions import Version
from flowfactory.config import CanaryConfig

__all__ = [
    "Approval",
    "CanaryOutcome",
    "Comparison",
    "NextStep",
    "awaiting_approval",
    "judge",
    "next_step",
    "settle",
]

_EMPTY_SAMPLE = "the sample is empty: no input row has a key in it; nothing was compared"


@dataclass(frozen=True)
class Comparison:
    """The verdict on v2 against v1, the report behind it (if any), and why."""

    verdict: Verdict
    report: DiffReport | None
    reason: str


def judge(
    *,
    sampled_rows: Mapping[str, int],
    v1_failure: str | None = None,
    v2_failure: str | None = None,
    report: DiffReport | None = None,
) -> Comparison:
    """The verdict from what happened: an empty sample or a broken v1 proves nothing, a broken
    v2 fails, otherwise the diff report decides."""
    if not any(sampled_rows.values()):
        return Comparison(Verdict.inconclusive, None, _EMPTY_SAMPLE)
    if v1_failure is not None:
        reason = f"v1 did not complete on the sample ({v1_failure}); nothing to compare"
        return Comparison(Verdict.inconclusive, None, reason)
    if v2_failure is not None:
        return Comparison(Verdict.failed, None, f"v2 did not complete on the sample: {v2_failure}")
    if report is None:
        raise ValueError("both versions completed: the diff report decides")
    return Comparison(report.verdict, report, "; ".join(report.reasons()) or report.certifies())


class NextStep(StrEnum):
    """What the canary flow does once the verdict is in."""

    promote = "promote"  # passed, promote: auto
    ask = "ask"  # passed, promote: manual: publish the verdict, then wait for a person
    keep = "keep"  # not passed: production stays as it is


def next_step(comparison: Comparison, canary: CanaryConfig) -> NextStep:
    """Promote, ask a person, or keep production as it is."""
    if comparison.verdict is not Verdict.passed:
        return NextStep.keep
    return NextStep.ask if canary.promote == "manual" else NextStep.promote


@dataclass(frozen=True)
class Approval:
    """The answer to "promote v2?": from the config (auto) or from a person in the UI."""

    approved: bool
    why: str

    @classmethod
    def automatic(cls) -> Approval:
        """``promote: auto`` approves every passing canary."""
        return cls(approved=True, why="promote: auto")


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

    @property
    def state_name(self) -> str:
        """The name of the flow run's final state: Promoted, NotPromoted, Failed, Inconclusive."""
        if self.verdict is Verdict.passed:
            return "Promoted" if self.promoted else "NotPromoted"
        return self.verdict.value.capitalize()

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


def settle(
    pipeline: str,
    comparison: Comparison,
    *,
    sample: str,
    rows_in: Mapping[str, int],
    approval: Approval | None = None,
    was: Version | None = None,
) -> CanaryOutcome:
    """The outcome: promoted when the canary passed and was approved (``was``: the version
    live before the promotion); otherwise production is unchanged, and the message says why."""
    verdict, report = comparison.verdict, comparison.report
    promoted = False
    if verdict is not Verdict.passed:
        message = f"{verdict.value}; production is unchanged. {comparison.reason}"
    elif approval is not None and approval.approved:
        promoted = True
        message = f"passed and promoted ({approval.why}): v2 is live, was {was or 'v1'}. " + (
            report.certifies() if report else ""
        )
    else:
        why = approval.why if approval is not None else "no approval"
        message = f"passed but not promoted ({why}); production is unchanged"
    return CanaryOutcome(pipeline, verdict, report, sample, rows_in, promoted, message)


def awaiting_approval(
    pipeline: str, comparison: Comparison, *, sample: str, rows_in: Mapping[str, int]
) -> CanaryOutcome:
    """The outcome published while a passing canary waits for a person's approval."""
    return CanaryOutcome(
        pipeline, comparison.verdict, comparison.report, sample, rows_in, message=comparison.reason
    )
