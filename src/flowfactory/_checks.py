"""Small checks shared by the config models (kept free of flowfactory imports)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

__all__ = ["duplicates"]


def duplicates(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted."""
    return sorted(value for value, count in Counter(values).items() if count > 1)
