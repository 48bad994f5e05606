"""Schema contracts: the locked output schema of a dataset, and how a pipeline declares its own.

A contract is ``contracts/<dataset>.json``: every column with its exact polars dtype (time zone,
time unit, decimal precision and scale, enum categories, nested fields), which columns are NOT
NULL, the key and whether it is unique. polars keeps no nullability in a schema and writes every
Parquet column as optional, so NOT NULL lives here and nowhere else. Each re-lock that changes
the schema keeps the previous versions in ``history``, for the transitive compatibility modes.

Inputs that no pipeline of the project produces (file sources, external datasets) get an input
contract too, locked from a cheap schema read of the files; it is what the static check derives
from when no data is present.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from flowfactory.config.schema import CONTRACTS_DIR
from flowfactory.data import write_local_atomic
from flowfactory.errors import ContractError

__all__ = [
    "CONTRACTS_DIR",
    "ColumnContract",
    "Contract",
    "ContractError",
    "DType",
    "TableSchema",
    "pl_dtype",
    "read_contract",
    "write_contract",
]

CONTRACT_FORMAT: Final = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# Dtypes as JSON

_SIMPLE: Final[dict[str, pl.DataType]] = {
    name: getattr(pl, name)()
    for name in (
        "Boolean",
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "Int128",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
        "UInt128",
        "Float16",
        "Float32",
        "Float64",
        "String",
        "Binary",
        "Date",
        "Time",
        "Null",
        "Object",
        "Unknown",
        "Categorical",
    )
    if hasattr(pl, name)
}


class DType(_Model):
    """A polars dtype with every parameter that matters for compatibility."""

    type: str
    time_unit: Literal["ms", "us", "ns"] | None = None
    time_zone: str | None = None
    precision: int | None = None
    scale: int | None = None
    categories: list[str] | None = None
    inner: DType | None = None
    shape: list[int] | None = None
    fields: list[ColumnContract] | None = None

    @classmethod
    def of(cls, dtype: pl.DataType) -> DType:
        """The JSON form of a polars dtype."""
        for kind, parameters in _PARAMETERS:
            if isinstance(dtype, kind):
                return cls(type=kind.__name__, **parameters(dtype))
        name = dtype.base_type().__name__
        if name not in _SIMPLE:
            raise ContractError(f"dtype {dtype!r} cannot be written to a contract")
        return cls(type=name)

    def to_polars(self) -> pl.DataType:
        """The polars dtype this describes."""
        build = _BUILDERS.get(self.type)
        if build is not None:
            return build(self)
        if self.type not in _SIMPLE:
            raise ContractError(f"unknown dtype {self.type!r} in a contract")
        return _SIMPLE[self.type]

    def text(self) -> str:
        """Short display form: ``Datetime(us, UTC)``, ``Decimal(10, 2)``, ``List(Int32)``."""
        show = _TEXTS.get(self.type)
        return self.type if show is None else f"{self.type}({show(self)})"


class ColumnContract(_Model):
    """One column: its name, dtype and whether it may hold null."""

    name: str
    dtype: DType
    nullable: bool = True


DType.model_rebuild()


def _inner(dtype: DType) -> DType:
    if dtype.inner is None:
        raise ContractError(f"a {dtype.type} dtype needs `inner`")
    return dtype.inner


def _fields(dtype: pl.DataType) -> list[ColumnContract]:
    return [
        ColumnContract(name=f.name, dtype=DType.of(pl_dtype(f.dtype)))
        for f in dtype.fields  # type: ignore[attr-defined]
    ]


def pl_dtype(dtype: pl.DataType | type[pl.DataType]) -> pl.DataType:
    """An instance for a dtype that polars may hand out as its class (``pl.Int64``)."""
    return dtype() if isinstance(dtype, type) else dtype


# Parameters of each parametric dtype, both ways, and how each is shown.
_PARAMETERS: Final[tuple[tuple[type[pl.DataType], Callable[[Any], dict[str, Any]]], ...]] = (
    (pl.Datetime, lambda d: {"time_unit": d.time_unit, "time_zone": d.time_zone}),
    (pl.Duration, lambda d: {"time_unit": d.time_unit}),
    (pl.Decimal, lambda d: {"precision": d.precision, "scale": d.scale}),
    (pl.Enum, lambda d: {"categories": [str(c) for c in d.categories.to_list()]}),
    # One dimension per level: polars nests Array(Int16, (2, 3)) as Array(Array(Int16, 3), 2).
    (pl.Array, lambda d: {"inner": DType.of(pl_dtype(d.inner)), "shape": [d.size]}),
    (pl.List, lambda d: {"inner": DType.of(pl_dtype(d.inner))}),
    (pl.Struct, lambda d: {"fields": _fields(d)}),
)
_BUILDERS: Final[dict[str, Callable[[DType], pl.DataType]]] = {
    "Datetime": lambda d: pl.Datetime(d.time_unit or "us", d.time_zone),
    "Duration": lambda d: pl.Duration(d.time_unit or "us"),
    "Decimal": lambda d: pl.Decimal(d.precision, d.scale or 0),
    "Enum": lambda d: pl.Enum(d.categories or []),
    "Array": lambda d: pl.Array(_inner(d).to_polars(), tuple(d.shape or ())),
    "List": lambda d: pl.List(_inner(d).to_polars()),
    "Struct": lambda d: pl.Struct({f.name: f.dtype.to_polars() for f in d.fields or []}),
}
_TEXTS: Final[dict[str, Callable[[DType], str]]] = {
    "Datetime": lambda d: ", ".join(p for p in (d.time_unit, d.time_zone) if p),
    "Duration": lambda d: str(d.time_unit),
    "Decimal": lambda d: f"{d.precision}, {d.scale}",
    "Enum": lambda d: ", ".join(d.categories or []),
    "Array": lambda d: f"{_inner(d).text()}, {tuple(d.shape or ())}",
    "List": lambda d: _inner(d).text(),
    "Struct": lambda d: ", ".join(f"{f.name}: {f.dtype.text()}" for f in d.fields or []),
}


# --------------------------------------------------------------------------------------------
# Contracts


class TableSchema(_Model):
    """What is compared between two versions of a dataset."""

    columns: list[ColumnContract]
    key: list[str] = Field(default_factory=list)
    key_unique: bool = False

    @classmethod
    def of(
        cls,
        schema: pl.Schema,
        *,
        not_null: list[str] | None = None,
        key: list[str] | None = None,
        key_unique: bool = False,
    ) -> TableSchema:
        """A table schema from a polars schema and the declarations polars cannot carry."""
        required = {*(not_null or []), *(key or [])}
        return cls(
            columns=[
                ColumnContract(name=name, dtype=DType.of(dtype), nullable=name not in required)
                for name, dtype in schema.items()
            ],
            key=list(key or []),
            key_unique=key_unique and bool(key),
        )

    def polars_schema(self) -> pl.Schema:
        """The columns as a polars schema (for empty LazyFrames that stand in for data)."""
        return pl.Schema({c.name: c.dtype.to_polars() for c in self.columns})

    def column(self, name: str) -> ColumnContract | None:
        """The column called ``name``, if any."""
        return next((c for c in self.columns if c.name == name), None)

    @property
    def not_null(self) -> list[str]:
        """The NOT NULL columns."""
        return [c.name for c in self.columns if not c.nullable]

    def same_as(self, other: TableSchema) -> bool:
        """True when nothing a consumer could notice differs."""
        return (self.columns, self.key, self.key_unique) == (
            other.columns,
            other.key,
            other.key_unique,
        )


class LockedVersion(TableSchema):
    """A table schema as it was locked once."""

    version: int = Field(ge=1)
    locked_at: str


class Contract(LockedVersion):
    """A dataset's contract file: the current version, and the ones locked before it."""

    format: Literal[1] = CONTRACT_FORMAT
    dataset: str
    pipeline: str | None = Field(
        default=None, description="The producing pipeline; None for an input nobody produces."
    )
    history: list[LockedVersion] = Field(
        default_factory=list, description="Earlier versions, newest first."
    )

    @property
    def current(self) -> LockedVersion:
        """The current version on its own."""
        return LockedVersion(
            columns=self.columns,
            key=self.key,
            key_unique=self.key_unique,
            version=self.version,
            locked_at=self.locked_at,
        )

    @property
    def versions(self) -> list[LockedVersion]:
        """Every locked version, newest first."""
        return [self.current, *self.history]

    def relocked(self, schema: TableSchema, pipeline: str | None) -> Contract:
        """This contract with ``schema`` as a new current version (the old one goes to history)."""
        return Contract(
            dataset=self.dataset,
            pipeline=pipeline,
            columns=schema.columns,
            key=schema.key,
            key_unique=schema.key_unique,
            version=self.version + 1,
            locked_at=_now(),
            history=self.versions,
        )

    @classmethod
    def first(cls, dataset: str, pipeline: str | None, schema: TableSchema) -> Contract:
        """Version 1 of a contract."""
        return cls(
            dataset=dataset,
            pipeline=pipeline,
            columns=schema.columns,
            key=schema.key,
            key_unique=schema.key_unique,
            version=1,
            locked_at=_now(),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_contract(path: Path) -> Contract | None:
    """The contract at ``path``, or None if there is none; ContractError if it is unreadable."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return Contract.model_validate_json(text)
    except ValueError as exc:
        first = str(exc).splitlines()
        raise ContractError(
            f"{path}: not a valid contract ({'; '.join(first[:3])}); "
            "re-create it with `flowfactory schema lock`"
        ) from None


def _render(value: object, indent: str = "") -> str:
    """JSON with one column per line: diffs of a contract then show which columns changed."""
    inner = indent + "  "
    if isinstance(value, dict) and any(isinstance(v, list) for v in value.values()):
        body = ",\n".join(f"{inner}{json.dumps(k)}: {_render(v, inner)}" for k, v in value.items())
        return f"{{\n{body}\n{indent}}}"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        body = ",\n".join(f"{inner}{_render(v, inner)}" for v in value)
        return f"[\n{body}\n{indent}]"
    return json.dumps(value)


def write_contract(path: Path, contract: Contract) -> None:
    """Write a contract whole or not at all (temporary file, fsync, rename)."""
    data = contract.model_dump(mode="json", exclude_none=True)
    # Who and which version first, then the columns, then the history: reads top-down.
    first = ("format", "dataset", "pipeline", "version", "locked_at", "key", "key_unique")
    ordered = {k: data[k] for k in first if k in data} | data
    write_local_atomic(path, (_render(ordered) + "\n").encode())
