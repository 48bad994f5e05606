"""Partitions of a dataset, written hive style (``year=2013/month=1``), and their row filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

import polars as pl

__all__ = ["Partition"]

_NULL_VALUE: Final = "__HIVE_DEFAULT_PARTITION__"
_ISO_PARSERS: Final[dict[type[pl.DataType], Callable[[str], object]]] = {
    pl.Datetime: dt.datetime.fromisoformat,
    pl.Time: dt.time.fromisoformat,
}


@dataclass(frozen=True, order=True)
class Partition:
    """A partition of a dataset, written ``year=2013/month=1`` (hive style)."""

    values: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Partition:
        """Parse ``col=value/col=value``; raise ValueError with the expected form otherwise."""
        pairs: list[tuple[str, str]] = []
        for part in text.strip().strip("/").split("/"):
            column, sep, value = part.partition("=")
            if not sep or not column or not value:
                raise ValueError(
                    f"partition {text!r} is not of the form column=value[/column=value...]"
                )
            pairs.append((column, unquote(value)))
        return cls(tuple(pairs))

    @classmethod
    def of(cls, columns: Iterable[str], values: Iterable[object]) -> Partition:
        """The partition holding a row whose partition columns have these values."""
        return cls(
            tuple(
                (c, _NULL_VALUE if v is None else _format_value(v))
                for c, v in zip(columns, values, strict=True)
            )
        )

    @property
    def columns(self) -> list[str]:
        """The partition columns, in order."""
        return [c for c, _ in self.values]

    @property
    def path(self) -> str:
        """The relative folder of this partition."""
        return "/".join(f"{c}={quote(v, safe='')}" for c, v in self.values)

    def __str__(self) -> str:
        return self.path

    def predicate(self, schema: Mapping[str, pl.DataType]) -> pl.Expr | None:
        """A filter selecting this partition's rows, on the columns the schema has."""
        conditions = [_condition(c, v, schema[c]) for c, v in self.values if c in schema]
        if not conditions:
            return None
        return pl.all_horizontal(conditions)


def _condition(column: str, value: str, dtype: pl.DataType) -> pl.Expr:
    """Rows whose ``column`` holds the partition value written as ``value``."""
    if value == _NULL_VALUE:
        return pl.col(column).is_null()
    if dtype == pl.Boolean:
        return pl.col(column).cast(pl.String).str.to_lowercase() == pl.lit(value.lower())
    # polars writes datetimes and times as text unlike isoformat(), which names the folders.
    parse = _ISO_PARSERS.get(dtype.base_type())
    if parse is not None:
        try:
            return pl.col(column) == pl.lit(parse(value)).cast(dtype)
        except ValueError:
            return pl.lit(value=False)
    return pl.col(column).cast(pl.String) == pl.lit(value)


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
