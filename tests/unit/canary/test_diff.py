"""The keyed diff: every kind of difference is caught, and a clean result says what it proves."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from flowfactory.canary import Tolerance, Verdict, diff_frames, rule_of_three
from flowfactory.errors import DiffError


def _v1(n: int = 1_000) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": pl.int_range(0, n, eager=True),
            "big": pl.int_range(0, n, eager=True) + 2**60,
            "amount": pl.int_range(0, n, eager=True).cast(pl.Float64) / 7,
            "label": [f"row-{i}" for i in range(n)],
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 365) for i in range(n)],
            "at": pl.datetime_range(
                dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n - 1),
                "1h",
                eager=True,
                time_zone="UTC",
            ),
        }
    )


def _set(frame: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.col("id") == row)
        .then(pl.lit(value, dtype=frame.schema[column]))
        .otherwise(pl.col(column))
        .alias(column)
    )


def test_identical_frames_in_any_row_order_pass() -> None:
    v1 = _v1()
    report = diff_frames(v1, v1.reverse(), ["id"])
    assert report.verdict is Verdict.passed
    assert report.rows_in_both == 1_000
    assert report.unequal_values == 0
    assert "1,000 compared key(s)" in report.certifies()
    assert f"{rule_of_three(1_000):.3%}" in report.certifies()


def test_rule_of_three_is_about_three_over_n() -> None:
    assert rule_of_three(10_000) == pytest.approx(3 / 10_000, rel=0.01)
    assert rule_of_three(0) == 1.0


def test_float_change_beyond_tolerance_fails_with_column_and_count() -> None:
    v1 = _v1()
    v2 = v1.with_columns(
        pl.when(pl.col("id") < 5)
        .then(pl.col("amount") + 0.5)
        .when(pl.col("id") < 50)
        .then(pl.col("amount") + 1e-12)  # within tolerance
        .otherwise(pl.col("amount"))
        .alias("amount")
    )
    report = diff_frames(v1, v2, ["id"], tolerance=Tolerance(abs=1e-9))
    assert report.verdict is Verdict.failed
    (column,) = report.differing_columns
    assert column.column == "amount"
    assert column.unequal == 5
    assert column.max_abs_diff == pytest.approx(0.5)
    assert report.rows_changed == 5
    assert "column amount: 5 unequal value(s)" in report.markdown()


def test_per_column_tolerance_overrides_the_default() -> None:
    v1 = _v1()
    v2 = v1.with_columns(pl.col("amount") * 1.001)
    strict = diff_frames(v1, v2, ["id"], tolerance=Tolerance(abs=1e-9))
    loose = diff_frames(
        v1,
        v2,
        ["id"],
        tolerance=Tolerance(abs=1e-9),
        column_tolerances={"amount": Tolerance(rel=0.01)},
    )
    assert strict.verdict is Verdict.failed
    assert loose.verdict is Verdict.passed


def test_off_by_one_at_two_to_the_sixty_is_caught() -> None:
    v1 = _v1()
    v2 = _set(v1, "big", 3, 2**60 + 3 + 1)
    # A tolerance applies to floats only: integers always compare exactly.
    report = diff_frames(v1, v2, ["id"], tolerance=Tolerance(abs=1.0, rel=0.1))
    assert report.verdict is Verdict.failed
    (column,) = report.differing_columns
    assert (column.column, column.unequal, column.max_abs_diff) == ("big", 1, 1)
    assert report.changed_sample.row(0, named=True) == {
        "id": 3,
        "column": "big",
        "v1": str(2**60 + 3),
        "v2": str(2**60 + 4),
    }


def test_text_date_and_null_changes_are_exact() -> None:
    v1 = _v1()
    v2 = _set(_set(_set(v1, "label", 1, "ROW-1"), "day", 2, dt.date(1999, 1, 1)), "label", 4, None)
    report = diff_frames(v1, v2, ["id"])
    by_column = {c.column: c for c in report.differing_columns}
    assert by_column["label"].unequal == 2
    assert by_column["label"].null_mismatches == 1
    assert by_column["day"].unequal == 1
    assert report.rows_changed == 3


def test_nan_and_null_pairs_are_equal() -> None:
    v1 = pl.DataFrame({"id": [1, 2, 3], "x": [float("nan"), None, 1.0]})
    assert diff_frames(v1, v1, ["id"], tolerance=Tolerance(abs=0.1)).verdict is Verdict.passed
    assert diff_frames(v1, v1, ["id"]).verdict is Verdict.passed
    v2 = pl.DataFrame({"id": [1, 2, 3], "x": [1.0, 1.0, 1.0]})
    report = diff_frames(v1, v2, ["id"], tolerance=Tolerance(abs=0.1))
    assert report.differing_columns[0].unequal == 2
    assert report.differing_columns[0].null_mismatches == 1
    inf = pl.DataFrame({"id": [1, 2], "x": [float("inf"), float("inf")]})
    other = pl.DataFrame({"id": [1, 2], "x": [1.0, float("inf")]})
    report = diff_frames(inf, other, ["id"], tolerance=Tolerance(rel=0.5))
    assert report.differing_columns[0].unequal == 1


def test_dropped_and_added_rows_are_caught() -> None:
    v1 = _v1()
    v2 = pl.concat(
        [v1.filter(pl.col("id") != 7), _set(v1.filter(pl.col("id") == 0), "id", 0, 5_000)]
    )
    report = diff_frames(v1, v2, ["id"])
    assert report.verdict is Verdict.failed
    assert (report.rows_only_v1, report.rows_only_v2, report.rows_changed) == (1, 1, 0)
    assert report.only_v1_sample["id"].to_list() == [7]
    assert report.only_v2_sample["id"].to_list() == [5_000]
    kinds = [row["kind"] for row in report.differing_rows()]
    assert kinds == ["only in v1", "only in v2"]


def test_dropped_column_is_caught() -> None:
    v1 = _v1()
    report = diff_frames(v1, v1.drop("label"), ["id"])
    assert report.verdict is Verdict.failed
    assert [(s.column, s.kind) for s in report.schema_changes] == [("label", "only in v1")]
    assert report.unequal_values == 0


def test_retyped_column_and_time_zone_are_caught() -> None:
    v1 = _v1()
    v2 = v1.with_columns(
        pl.col("big").cast(pl.Int128), pl.col("at").dt.convert_time_zone("Australia/Sydney")
    )
    report = diff_frames(v1, v2, ["id"])
    assert report.verdict is Verdict.failed
    changes = {s.column: (s.kind, s.dtype_v1, s.dtype_v2) for s in report.schema_changes}
    assert changes["big"] == ("type changed", "Int64", "Int128")
    assert changes["at"][0] == "type changed"
    assert "Australia/Sydney" in str(changes["at"][2])


def test_retyped_key_is_reported_not_crashed() -> None:
    v1 = _v1()
    report = diff_frames(v1, v1.with_columns(pl.col("id").cast(pl.String)), ["id"])
    assert report.verdict is Verdict.failed
    assert report.schema_changes[0].column == "id"


def test_empty_sample_is_inconclusive_never_a_pass() -> None:
    empty = _v1().clear()
    report = diff_frames(empty, empty, ["id"])
    assert report.verdict is Verdict.inconclusive
    assert report.certifies().startswith("nothing")
    assert "INCONCLUSIVE" in report.markdown()


def test_one_empty_side_fails() -> None:
    v1 = _v1()
    report = diff_frames(v1, v1.clear(), ["id"])
    assert report.verdict is Verdict.failed
    assert report.rows_only_v1 == 1_000


def test_duplicate_keys_are_reported() -> None:
    v1 = _v1(10)
    v2 = pl.concat([v1, v1.filter(pl.col("id") == 3)])
    report = diff_frames(v1, v2, ["id"])
    assert report.verdict is Verdict.failed
    assert (report.duplicate_keys_v1, report.duplicate_keys_v2) == (0, 1)
    # Duplicates pair by order within the key: one extra v2 row, not a multiplied join.
    assert (report.rows_in_both, report.rows_only_v2) == (10, 1)
    assert report.duplicate_sample.row(0, named=True) == {"id": 3, "rows": 2, "version": "v2"}
    assert any("duplicate keys" in reason for reason in report.reasons())


def test_duplicate_keys_only_on_one_side_unmatched_are_found() -> None:
    v1 = _v1(10)
    extra = pl.concat([v1.filter(pl.col("id") == 3)] * 2).with_columns(
        pl.lit(99, pl.Int64).alias("id")
    )
    report = diff_frames(v1, pl.concat([v1, extra]), ["id"])
    assert report.duplicate_keys_v2 == 1


def test_samples_are_capped() -> None:
    v1 = _v1()
    report = diff_frames(v1, v1.with_columns(pl.col("label") + "!"), ["id"], sample_cap=5)
    assert report.differing_columns[0].unequal == 1_000
    assert report.changed_sample.height == 5


def test_no_keys_is_an_error() -> None:
    with pytest.raises(DiffError):
        diff_frames(_v1(), _v1(), [])


def test_same_duplicates_on_both_sides_are_still_reported() -> None:
    v1 = pl.concat([_v1(10), _v1(10).filter(pl.col("id") == 3)])
    report = diff_frames(v1, v1.reverse(), ["id"])
    assert (report.duplicate_keys_v1, report.duplicate_keys_v2) == (1, 1)
    assert report.verdict is Verdict.failed
    assert report.rows_in_both == 11


def test_changed_values_with_one_row_swapped_for_another() -> None:
    """Same height, different key sets: the join path still counts values and rows."""
    v1 = _v1()
    v2 = _set(_set(v1, "id", 10, 10_000), "label", 20, "changed")
    report = diff_frames(v1, v2, ["id"])
    assert (report.rows_only_v1, report.rows_only_v2) == (1, 1)
    assert [(c.column, c.unequal) for c in report.differing_columns] == [("label", 1)]
