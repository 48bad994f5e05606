"""The compatibility classifier: every row of the rule table, under every mode."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pytest

from flowfactory.schema import (
    ChangeKind,
    Contract,
    Impact,
    TableSchema,
    classify,
    classify_against,
)

A, W, B = Impact.allowed, Impact.warning, Impact.breaking
MODES = ("backward", "forward", "full", "none")


def table(
    columns: dict[str, pl.DataType],
    *,
    not_null: tuple[str, ...] = (),
    key: tuple[str, ...] = (),
    unique: bool = False,
) -> TableSchema:
    return TableSchema.of(
        pl.Schema(columns), not_null=list(not_null), key=list(key), key_unique=unique
    )


@dataclass(frozen=True)
class Row:
    """One row of the rule table: a v1 -> v2 change and its verdict under each mode."""

    name: str
    old: TableSchema
    new: TableSchema
    kind: ChangeKind
    # backward, forward, full, none
    verdicts: tuple[Impact, Impact, Impact, Impact]
    renamed: tuple[tuple[str, str], ...] = ()


ID = {"id": pl.Int64()}
UTC_US = pl.Datetime("us", "UTC")
ROWS = [
    Row(
        "add nullable column",
        table(ID),
        table({**ID, "extra": pl.String()}),
        ChangeKind.column_added,
        (A, A, A, A),
    ),
    Row(
        "add NOT NULL column",
        table(ID),
        table({**ID, "extra": pl.String()}, not_null=("extra",)),
        ChangeKind.column_added,
        (B, A, B, A),
    ),
    Row(
        "drop column",
        table({**ID, "legacy": pl.String(), "n": pl.Int8()}),
        table({**ID, "n": pl.Int8()}),
        ChangeKind.column_dropped,
        (A, B, B, A),
    ),
    Row(
        "rename column (undeclared)",
        table({**ID, "country": pl.String()}),
        table({**ID, "country_code": pl.String()}),
        ChangeKind.column_renamed,
        (B, B, B, A),
    ),
    Row(
        "rename column (declared alias)",
        table({**ID, "country": pl.String()}),
        table({**ID, "country_code": pl.String()}),
        ChangeKind.column_renamed,
        (A, B, B, A),
        renamed=(("country_code", "country"),),
    ),
    Row(
        "reorder columns",
        table({"a": pl.Int8(), "b": pl.Int8()}),
        table({"b": pl.Int8(), "a": pl.Int8()}),
        ChangeKind.columns_reordered,
        (A, W, W, A),
    ),
    Row(
        "Int32 -> Int64",
        table({"x": pl.Int32()}),
        table({"x": pl.Int64()}),
        ChangeKind.type_widened,
        (A, W, W, A),
    ),
    Row(
        "UInt16 -> Int32",
        table({"x": pl.UInt16()}),
        table({"x": pl.Int32()}),
        ChangeKind.type_widened,
        (A, W, W, A),
    ),
    Row(
        "Int64 -> Int32 (narrowing)",
        table({"x": pl.Int64()}),
        table({"x": pl.Int32()}),
        ChangeKind.type_narrowed,
        (B, A, B, A),
    ),
    Row(
        "Int32 -> Float64",
        table({"x": pl.Int32()}),
        table({"x": pl.Float64()}),
        ChangeKind.type_widened,
        (A, W, W, A),
    ),
    Row(
        "Int64 -> Float64 (lossy above 2^53)",
        table({"x": pl.Int64()}),
        table({"x": pl.Float64()}),
        ChangeKind.type_widened,
        (B, W, B, A),
    ),
    Row(
        "Float32 -> Float64",
        table({"x": pl.Float32()}),
        table({"x": pl.Float64()}),
        ChangeKind.type_widened,
        (A, W, W, A),
    ),
    Row(
        "Float64 -> Float32",
        table({"x": pl.Float64()}),
        table({"x": pl.Float32()}),
        ChangeKind.type_narrowed,
        (B, A, B, A),
    ),
    Row(
        "Decimal(10,2) -> Decimal(12,2)",
        table({"x": pl.Decimal(10, 2)}),
        table({"x": pl.Decimal(12, 2)}),
        ChangeKind.type_widened,
        (A, W, W, A),
    ),
    Row(
        "Decimal scale change",
        table({"x": pl.Decimal(10, 2)}),
        table({"x": pl.Decimal(12, 4)}),
        ChangeKind.decimal_scale_changed,
        (B, B, B, A),
    ),
    Row(
        "String -> Categorical",
        table({"x": pl.String()}),
        table({"x": pl.Categorical()}),
        ChangeKind.representation_changed,
        (W, W, W, A),
    ),
    Row(
        "String -> Enum",
        table({"x": pl.String()}),
        table({"x": pl.Enum(["a", "b"])}),
        ChangeKind.representation_changed,
        (W, W, W, A),
    ),
    Row(
        "Enum: add category",
        table({"x": pl.Enum(["new", "paid"])}),
        table({"x": pl.Enum(["new", "paid", "refunded"])}),
        ChangeKind.enum_categories_added,
        (A, W, W, A),
    ),
    Row(
        "Enum: remove category",
        table({"x": pl.Enum(["new", "paid", "refunded"])}),
        table({"x": pl.Enum(["new", "paid"])}),
        ChangeKind.enum_categories_removed,
        (B, A, B, A),
    ),
    Row(
        "Date -> Datetime",
        table({"x": pl.Date()}),
        table({"x": pl.Datetime("us")}),
        ChangeKind.type_widened,
        (A, W, W, A),
    ),
    Row(
        "Datetime ms -> us",
        table({"x": pl.Datetime("ms")}),
        table({"x": pl.Datetime("us")}),
        ChangeKind.time_unit_finer,
        (A, W, W, A),
    ),
    Row(
        "Datetime ns -> us",
        table({"x": pl.Datetime("ns")}),
        table({"x": pl.Datetime("us")}),
        ChangeKind.time_unit_coarser,
        (B, A, B, A),
    ),
    Row(
        "Datetime naive -> UTC",
        table({"x": pl.Datetime("us")}),
        table({"x": UTC_US}),
        ChangeKind.time_zone_changed,
        (B, B, B, A),
    ),
    Row(
        "Datetime UTC -> naive",
        table({"x": UTC_US}),
        table({"x": pl.Datetime("us")}),
        ChangeKind.time_zone_changed,
        (B, B, B, A),
    ),
    Row(
        "Datetime UTC -> Australia/Sydney",
        table({"x": UTC_US}),
        table({"x": pl.Datetime("us", "Australia/Sydney")}),
        ChangeKind.time_zone_changed,
        (B, B, B, A),
    ),
    Row(
        "nullable -> NOT NULL",
        table({"x": pl.Int8()}),
        table({"x": pl.Int8()}, not_null=("x",)),
        ChangeKind.nullability_tightened,
        (B, A, B, A),
    ),
    Row(
        "NOT NULL -> nullable",
        table({"x": pl.Int8()}, not_null=("x",)),
        table({"x": pl.Int8()}),
        ChangeKind.nullability_loosened,
        (A, B, B, A),
    ),
    Row(
        "Struct: add field",
        table({"s": pl.Struct({"a": pl.Int8()})}),
        table({"s": pl.Struct({"a": pl.Int8(), "b": pl.String()})}),
        ChangeKind.field_added,
        (A, W, W, A),
    ),
    Row(
        "Struct: drop field",
        table({"s": pl.Struct({"a": pl.Int8(), "b": pl.String()})}),
        table({"s": pl.Struct({"a": pl.Int8()})}),
        ChangeKind.field_dropped,
        (A, B, B, A),
    ),
    Row(
        "List(inner) follows the inner rule",
        table({"l": pl.List(pl.Int32())}),
        table({"l": pl.List(pl.Int64())}),
        ChangeKind.type_widened,
        (A, W, W, A),
    ),
    Row(
        "Null -> any",
        table({"x": pl.Null()}),
        table({"x": pl.String()}),
        ChangeKind.type_widened,
        (A, A, A, A),
    ),
    Row(
        "Int64 -> String (no promotion)",
        table({"x": pl.Int64()}),
        table({"x": pl.String()}),
        ChangeKind.type_changed,
        (B, B, B, A),
    ),
    Row(
        "key change",
        table({"a": pl.Int8(), "b": pl.Int8()}, key=("a",), unique=True),
        table({"a": pl.Int8(), "b": pl.Int8()}, key=("a", "b"), unique=True),
        ChangeKind.key_changed,
        (B, B, B, A),
    ),
    Row(
        "key column type change (even a widening)",
        table({"a": pl.Int32()}, key=("a",), unique=True),
        table({"a": pl.Int64()}, key=("a",), unique=True),
        ChangeKind.key_type_changed,
        (B, B, B, A),
    ),
    Row(
        "Struct: rename field (a drop and an add)",
        table({"s": pl.Struct({"a": pl.Int8()})}),
        table({"s": pl.Struct({"b": pl.Int8()})}),
        ChangeKind.field_dropped,
        (A, B, B, A),
    ),
    Row(
        "key no longer unique",
        table({"a": pl.Int8()}, key=("a",), unique=True),
        table({"a": pl.Int8()}, key=("a",), unique=False),
        ChangeKind.key_uniqueness_dropped,
        (B, B, B, A),
    ),
]


@pytest.mark.parametrize("mode_index", range(len(MODES)), ids=MODES)
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_rule_table(row: Row, mode_index: int) -> None:
    """Each change of the rule table gets its verdict under each mode."""
    mode = MODES[mode_index]
    changes = classify(row.old, row.new, mode, dict(row.renamed))  # type: ignore[arg-type]
    kinds = [c.kind for c in changes]
    assert row.kind in kinds, changes
    (change,) = [c for c in changes if c.kind is row.kind]
    assert change.verdict is row.verdicts[mode_index]


def test_struct_field_type_change_is_named_by_path() -> None:
    """A nested change names the field, not only the column."""
    changes = classify(
        table({"s": pl.Struct({"when": UTC_US})}),
        table({"s": pl.Struct({"when": pl.Datetime("us")})}),
        "forward",
    )
    assert [(c.column, c.kind) for c in changes] == [("s.when", ChangeKind.time_zone_changed)]


def test_no_change_no_report() -> None:
    """Identical schemas give no changes in any mode."""
    schema = table({"a": pl.Int32(), "t": UTC_US}, key=("a",), unique=True)
    for mode in MODES:
        assert classify(schema, schema, mode) == []  # type: ignore[arg-type]


def test_transitive_mode_checks_every_locked_version() -> None:
    """Drop a column in v2 and re-add it with another type in v3: only transitive sees it."""
    v1 = table({**ID, "a": pl.Int64()})
    v2 = table(ID)
    v3 = table({**ID, "a": pl.String()})
    contract = Contract.first("d", "p", v1).relocked(v2, "p")
    last_only = classify_against(contract.versions, v3, "backward", transitive=False)
    assert [c.verdict for c in last_only] == [A]
    every = classify_against(contract.versions, v3, "backward", transitive=True)
    (breaking,) = [c for c in every if c.verdict is B]
    assert breaking.kind is ChangeKind.type_changed
    assert breaking.against_version == 1
