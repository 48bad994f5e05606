"""Deterministic key-hashed samples that stay the same across runs, machines and polars versions.

polars' own ``Expr.hash`` is documented to change between polars versions, so a sample drawn
with it is not reproducible after an upgrade. Here every key column is mapped to a 64-bit
integer by plain arithmetic (integers, dates, booleans) or by BLAKE2b from the standard library
(text), and the columns are mixed with the SplitMix64 finalizer written as wrapping UInt64
expressions. A key is kept when its hash falls below ``fraction`` of the 64-bit range, so a
smaller fraction always gives a subset of a larger one, and every table sampled on the same key
columns keeps the same keys (joins inside the pipeline stay whole).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from flowfactory.errors import SamplingError

__all__ = [
    "HASH_NAME",
    "SampleSpec",
    "SamplingError",
    "in_sample",
    "sample",
    "sample_inputs",
    "splitmix64",
    "with_stable_hash",
]

HASH_NAME: Final = "splitmix64+blake2b-64/v1"
_U64: Final = pl.UInt64
_GOLDEN_GAMMA: Final = 0x9E3779B97F4A7C15
_MIX_1: Final = 0xBF58476D1CE4E5B9
_MIX_2: Final = 0x94D049BB133111EB
_NULL_KEY: Final = 0x6A09E667F3BCC908  # any fixed odd constant: nulls sample like one key
# Fractions resolve to 2**-53: as fine as a float can say, and exact in integer arithmetic.
_FRACTION_BITS: Final = 53
_HASH_COLUMN: Final = "__sample_hash"


@dataclass(frozen=True)
class SampleSpec:
    """Which keys to keep: a fraction of them, and at least ``per_stratum`` keys per stratum."""

    keys: tuple[str, ...]
    fraction: float | None = None
    stratify: str | None = None
    per_stratum: int | None = None
    salt: int = 0
    hash_name: str = field(default=HASH_NAME, init=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SamplingError("a sample needs at least one key column")
        if self.fraction is None and self.per_stratum is None:
            raise SamplingError("a sample needs a fraction, or a stratify column and per_stratum")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise SamplingError(f"fraction {self.fraction} is not between 0 and 1")
        if (self.stratify is None) != (self.per_stratum is None):
            raise SamplingError("stratify and per_stratum go together")

    def describe(self) -> str:
        """One line naming what was sampled and how, so a reader can reproduce it."""
        parts = [f"keys ({', '.join(self.keys)})"]
        if self.fraction is not None:
            parts.append(f"fraction {self.fraction:g}")
        if self.stratify is not None:
            parts.append(f"at least {self.per_stratum} key(s) per {self.stratify}")
        return f"{', '.join(parts)}; hash {self.hash_name}, salt {self.salt}"


def splitmix64(value: pl.Expr) -> pl.Expr:
    """The SplitMix64 finalizer over UInt64 (wrapping arithmetic; shifts as floor division)."""
    z = value + pl.lit(_GOLDEN_GAMMA, dtype=_U64)
    z = (z ^ (z // pl.lit(1 << 30, dtype=_U64))) * pl.lit(_MIX_1, dtype=_U64)
    z = (z ^ (z // pl.lit(1 << 27, dtype=_U64))) * pl.lit(_MIX_2, dtype=_U64)
    return z ^ (z // pl.lit(1 << 31, dtype=_U64))


def _blake2b_u64(series: pl.Series) -> pl.Series:
    """BLAKE2b-64 of each text value's UTF-8 bytes (hashing each distinct value once)."""
    distinct = series.drop_nulls().unique()
    digests = [
        int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little")
        for v in distinct.to_list()
    ]
    mapping = pl.Series(digests, dtype=_U64)
    return series.replace_strict(distinct, mapping, default=None, return_dtype=_U64)


def _column_hash(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column's values as UInt64 with a meaning that does not depend on the polars version."""
    column = pl.col(name)
    if dtype == pl.UInt64:
        as_u64 = column
    elif dtype.is_unsigned_integer() or dtype == pl.Boolean:
        as_u64 = column.cast(_U64)
    elif dtype.is_integer():
        # Int32 5 and Int64 5 hash alike, so tables typed differently still sample alike.
        as_u64 = column.cast(pl.Int64).reinterpret(signed=False)
    elif dtype.is_temporal():
        as_u64 = column.to_physical().cast(pl.Int64).reinterpret(signed=False)
    elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        as_u64 = column.cast(pl.String).map_batches(_blake2b_u64, return_dtype=_U64)
    else:
        raise SamplingError(
            f"key column {name!r} has type {dtype}, which cannot drive a stable sample "
            "(use integer, text, boolean or date/time keys)"
        )
    return as_u64.fill_null(pl.lit(_NULL_KEY, dtype=_U64))


def with_stable_hash(
    frame: pl.LazyFrame, keys: Sequence[str], name: str, salt: int = 0
) -> pl.LazyFrame:
    """``frame`` with a UInt64 column ``name`` hashing the key columns, stable everywhere."""
    schema = frame.collect_schema()
    missing = [k for k in keys if k not in schema]
    if missing:
        raise SamplingError(f"key column(s) {', '.join(missing)} not in {', '.join(schema)}")
    parts = [f"{name}::{i}" for i in range(len(keys))]
    frame = frame.with_columns(
        *(_column_hash(k, schema[k]).alias(p) for k, p in zip(keys, parts, strict=True)),
        pl.lit(salt & (2**64 - 1), dtype=_U64).alias(name),
    )
    # One column per step: as one nested expression, each reuse of z would copy the tree.
    z = pl.col(name)
    for part in parts:
        frame = frame.with_columns((z ^ pl.col(part)) + pl.lit(_GOLDEN_GAMMA, dtype=_U64))
        frame = frame.with_columns((z ^ (z // pl.lit(1 << 30, dtype=_U64))) * _lit(_MIX_1))
        frame = frame.with_columns((z ^ (z // pl.lit(1 << 27, dtype=_U64))) * _lit(_MIX_2))
        frame = frame.with_columns(z ^ (z // pl.lit(1 << 31, dtype=_U64)))
    return frame.drop(parts)


def _lit(value: int) -> pl.Expr:
    return pl.lit(value, dtype=_U64)


def _threshold(fraction: float) -> int:
    return int(fraction * (1 << _FRACTION_BITS))


def in_sample(hashed: pl.Expr, fraction: float) -> pl.Expr:
    """True for the keys a ``fraction`` sample keeps; nested: smaller fractions keep subsets."""
    bucket = hashed // pl.lit(1 << (64 - _FRACTION_BITS), dtype=_U64)
    return bucket < pl.lit(_threshold(fraction), dtype=_U64)


def _keep(frame: pl.LazyFrame, spec: SampleSpec) -> pl.LazyFrame:
    """Rows of ``frame`` with the key hash alongside, filtered to the sample."""
    schema = frame.collect_schema()
    hashed = with_stable_hash(frame, spec.keys, _HASH_COLUMN, spec.salt)
    by_fraction = (
        in_sample(pl.col(_HASH_COLUMN), spec.fraction)
        if spec.fraction is not None
        else pl.lit(value=False)
    )
    if spec.stratify is None:
        return hashed.filter(by_fraction)
    if spec.stratify not in schema:
        raise SamplingError(f"stratify column {spec.stratify!r} not in {', '.join(schema)}")
    # The keys with the smallest hashes in each stratum: rare strata are always represented.
    rank = pl.col(_HASH_COLUMN).rank("dense").over(spec.stratify)
    return hashed.filter(by_fraction | (rank <= spec.per_stratum))


def sample(frame: pl.LazyFrame, spec: SampleSpec) -> pl.LazyFrame:
    """The rows of ``frame`` whose keys are in the sample (same columns as ``frame``)."""
    return _keep(frame, spec).drop(_HASH_COLUMN)


def sample_inputs(
    frames: Mapping[str, pl.LazyFrame], spec: SampleSpec
) -> tuple[dict[str, pl.LazyFrame], list[str]]:
    """Sample every input that has the key columns; the others (reference tables) stay whole.

    Returns the frames and the names of the sampled ones. With ``stratify``, the keys are chosen
    on the first input that has the stratify column and the other keyed inputs keep those keys,
    so that every table agrees on the sample.
    """
    keyed = [
        name for name, f in frames.items() if set(spec.keys) <= set(f.collect_schema().names())
    ]
    if not keyed:
        raise SamplingError(
            f"no input has every sample key column ({', '.join(spec.keys)}); "
            f"inputs are {', '.join(frames)}"
        )
    out = dict(frames)
    if spec.stratify is None:
        for name in keyed:
            out[name] = sample(frames[name], spec)
        return out, keyed
    driver = next(
        (n for n in keyed if spec.stratify in frames[n].collect_schema().names()),
        None,
    )
    if driver is None:
        raise SamplingError(f"no keyed input has the stratify column {spec.stratify!r}")
    chosen = sample(frames[driver], spec).select(spec.keys).unique().collect().lazy()
    for name in keyed:
        out[name] = frames[name].join(chosen, on=list(spec.keys), how="semi", nulls_equal=True)
    return out, keyed
