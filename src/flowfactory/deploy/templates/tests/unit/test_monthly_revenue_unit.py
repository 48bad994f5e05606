"""Tier 2: the transform of monthly_revenue over a few hand-written rows, no server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_revenue_adds_up_per_customer_and_month(run_transform: Callable[..., Any]) -> None:
    month = {"year": 2024, "month": 1}
    out = run_transform(
        "monthly_revenue",
        source=[
            {**month, "order_id": 1, "customer": "acme", "amount": 10.0},
            {**month, "order_id": 2, "customer": "acme", "amount": 5.5},
        ],
    )
    assert out.select("customer", "orders", "revenue").rows() == [("acme", 2, 15.5)]
