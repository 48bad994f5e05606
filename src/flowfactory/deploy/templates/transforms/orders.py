"""Transforms over order files."""

from __future__ import annotations

import polars as pl


def monthly_revenue(source: pl.LazyFrame) -> pl.LazyFrame:
    """Orders and revenue per customer and month: the SQL of monthly_revenue, in Python."""
    return source.group_by("customer", "year", "month").agg(
        pl.len().cast(pl.Int64).alias("orders"),
        pl.col("amount").sum().alias("revenue"),
    )
