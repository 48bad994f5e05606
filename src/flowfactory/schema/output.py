"""Check one run's output against its locked contract, before anything is written.

Unlike ``schema check``, this looks at the produced rows: dtypes are judged under the pipeline's
mode, and NOT NULL and key uniqueness are counted on the data. The run (the check-contract task)
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

__all__ = ["OutputCheck", "check_output", "frame_violations"]


@dataclass(frozen=True)
class _FrameFacts:
    nulls: dict[str, int] = field(default_factory=dict)
    duplicate_keys: int = 0


def _frame_facts(frame: pl.DataFrame, contract: TableSchema) -> _FrameFacts:
    present = [c for c in contract.not_null if c in frame.columns]
    nulls: dict[str, int] = {}
    if present:
        counts = frame.select(pl.col(present).null_count()).row(0)
        nulls = {c: int(n) for c, n in zip(present, counts, strict=True) if n}
    duplicates = 0
    if contract.key_unique and contract.key and all(k in frame.columns for k in contract.key):
        duplicates = frame.height - frame.select(contract.key).n_unique()
    return _FrameFacts(nulls, duplicates)


def frame_violations(
    frame: pl.DataFrame,
    contract: TableSchema,
    mode: Mode,
    renamed: Mapping[str, str] | None = None,
) -> list[Change]:
    """How produced data departs from its contract: dtypes under ``mode``, then the data.

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
            for name, dtype in frame.schema.items()
        ],
        key=contract.key,
        key_unique=contract.key_unique,
    )
    changes = classify(contract, observed, mode, renamed)
    facts = _frame_facts(frame, contract)
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
    pipeline: PipelineFile, frame: pl.DataFrame, settings: Settings
) -> OutputCheck | None:
    """Check produced data against the pipeline's locked contract (None when none is locked).

    Dtypes are judged under the pipeline's mode, like ``schema check``; NOT NULL and key
    uniqueness are checked on the rows and break under every mode.
    """
    path = contract_path(pipeline, settings)
    contract = read_contract(path)
    if contract is None:
        return None
    config = schema_config(pipeline)
    changes = frame_violations(frame, contract, config.direction, config.renamed)
    return OutputCheck(
        pipeline=pipeline.name,
        dataset=pipeline.config.destination.dataset,
        contract=project_relative(path, settings),
        version=contract.version,
        mode=config.compatibility,
        changes=tuple(changes),
    )
