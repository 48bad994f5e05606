"""Check one run's output against its locked contract, before anything is written.

Unlike ``schema check``, this looks at what a run produces: dtypes are judged on the plan's
schema under the pipeline's mode before any data moves, and NOT NULL and key uniqueness on the
rows, counted over the staged files before they are committed. The run (the check-contract task)
and the unit tier of the pytest plugin both ask `check_output` and decide what a breaking
report means for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from flowfactory.config import PipelineFile
from flowfactory.schema.contracts import ColumnContract, DType, TableSchema, read_contract
from flowfactory.schema.derive import contract_path, project_relative, schema_config
from flowfactory.schema.rules import Change, ChangeKind, Impact, Mode, Safety, classify
from flowfactory.settings import Settings

__all__ = [
    "OutputCheck",
    "OutputFacts",
    "check_output",
    "data_requirements",
    "frame_facts",
    "frame_violations",
    "output_violations",
]


@dataclass(frozen=True)
class OutputFacts:
    """What the rows of an output show against its contract: nulls and duplicate keys."""

    nulls: dict[str, int] = field(default_factory=dict)
    duplicate_keys: int = 0


def frame_facts(frame: pl.DataFrame, contract: TableSchema) -> OutputFacts:
    """The facts of an output held in memory (samples and tests; runs measure staged files)."""
    present = [c for c in contract.not_null if c in frame.columns]
    nulls: dict[str, int] = {}
    if present:
        counts = frame.select(pl.col(present).null_count()).row(0)
        nulls = {c: int(n) for c, n in zip(present, counts, strict=True) if n}
    duplicates = 0
    if contract.key_unique and contract.key and all(k in frame.columns for k in contract.key):
        duplicates = frame.height - frame.select(contract.key).n_unique()
    return OutputFacts(nulls, duplicates)


def frame_violations(
    frame: pl.DataFrame,
    contract: TableSchema,
    mode: Mode,
    renamed: Mapping[str, str] | None = None,
) -> list[Change]:
    """How an output held in memory departs from its contract (see ``output_violations``)."""
    return output_violations(frame.schema, contract, mode, renamed, frame_facts(frame, contract))


def output_violations(
    schema: Mapping[str, pl.DataType],
    contract: TableSchema,
    mode: Mode,
    renamed: Mapping[str, str] | None = None,
    facts: OutputFacts | None = None,
) -> list[Change]:
    """How an output departs from its contract: dtypes under ``mode``, then the data's facts.

    NOT NULL and key uniqueness are facts about the rows, not about schema evolution, so their
    violations are breaking under every mode, ``none`` included.
    """
    declared = {c.name: c for c in contract.columns}
    observed = TableSchema(
        columns=[
            ColumnContract(
                name=name,
                dtype=DType.of(dtype),
                nullable=declared[name].nullable if name in declared else True,
            )
            for name, dtype in schema.items()
        ],
        key=contract.key,
        key_unique=contract.key_unique,
    )
    changes = classify(contract, observed, mode, renamed)
    if facts is None:
        return changes
    changes.extend(
        Change(
            column,
            ChangeKind.null_values,
            "NOT NULL",
            f"{count:,} null(s)",
            Safety.unsafe,
            Safety.unsafe,
            Impact.breaking,
        )
        for column, count in facts.nulls.items()
    )
    if facts.duplicate_keys:
        changes.append(
            Change(
                ", ".join(contract.key),
                ChangeKind.duplicate_keys,
                "unique",
                f"{facts.duplicate_keys:,} duplicate row(s)",
                Safety.unsafe,
                Safety.unsafe,
                Impact.breaking,
            )
        )
    return changes


@dataclass(frozen=True)
class OutputCheck:
    """A run's output against its locked contract, before anything is written."""

    pipeline: str
    dataset: str
    contract: str
    version: int
    mode: str
    changes: tuple[Change, ...]

    @property
    def breaking(self) -> list[Change]:
        """The changes that refuse the write."""
        return [c for c in self.changes if c.verdict is Impact.breaking]

    @property
    def warnings(self) -> list[Change]:
        """The changes that are written with a warning."""
        return [c for c in self.changes if c.verdict is Impact.warning]

    @property
    def columns(self) -> list[str]:
        """The columns of the breaking changes."""
        return list(dict.fromkeys(c.column for c in self.breaking))

    def describe_breaking(self) -> str:
        """Every breaking change, described, one after another."""
        return "; ".join(c.describe() for c in self.breaking)

    def message(self) -> str:
        """Why the write was refused, naming every column."""
        return (
            f"pipeline {self.pipeline!r}: the output breaks the contract of dataset "
            f"{self.dataset!r} ({self.contract} v{self.version}, mode {self.mode}) in column(s) "
            f"{', '.join(self.columns)}: {self.describe_breaking()}. Nothing was written; fix "
            f"the transform, or accept the change with `flowfactory schema lock {self.pipeline}`"
        )

    def payload(self) -> dict[str, object]:
        """The payload of ``schema.incompatible``: the blocking changes."""
        return {
            "pipeline": self.pipeline,
            "dataset": self.dataset,
            "contract": self.contract,
            "contract_version": self.version,
            "mode": self.mode,
            "columns": self.columns,
            "changes": [
                {
                    "column": c.column,
                    "kind": c.kind.name,
                    "before": c.before,
                    "after": c.after,
                    "description": c.describe(),
                }
                for c in self.breaking
            ],
        }


def check_output(
    pipeline: PipelineFile,
    output: pl.DataFrame | Mapping[str, pl.DataType],
    settings: Settings,
    facts: OutputFacts | None = None,
) -> OutputCheck | None:
    """Check an output against the pipeline's locked contract (None when none is locked).

    ``output`` is the rows (all is checked) or only their schema: dtypes are judged under the
    pipeline's mode, like ``schema check``, and NOT NULL and key uniqueness, which break under
    every mode, are judged on ``facts`` when given.
    """
    path = contract_path(pipeline, settings)
    contract = read_contract(path)
    if contract is None:
        return None
    config = schema_config(pipeline)
    if isinstance(output, pl.DataFrame):
        changes = frame_violations(output, contract, config.direction, config.renamed)
    else:
        changes = output_violations(output, contract, config.direction, config.renamed, facts)
    return OutputCheck(
        pipeline=pipeline.name,
        dataset=pipeline.config.destination.dataset,
        contract=project_relative(path, settings),
        version=contract.version,
        mode=config.compatibility,
        changes=tuple(changes),
    )


def data_requirements(pipeline: PipelineFile, settings: Settings) -> tuple[list[str], list[str]]:
    """The columns the locked contract holds NOT NULL, and its key when it must be unique:
    what a run counts on its staged output."""
    contract = read_contract(contract_path(pipeline, settings))
    if contract is None:
        return [], []
    return list(contract.not_null), list(contract.key) if contract.key_unique else []
