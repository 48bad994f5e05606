"""Classify the changes between a locked schema and a new one: allowed, warning or breaking.

Every change is judged in two directions, in Confluent Schema Registry's vocabulary:

- **forward**: a consumer still on the locked (old) schema reads output written with the new
  one. This is the deploy-gate case and the default mode.
- **backward**: a consumer on the new schema reads data written with the old one (history,
  backfills).

In each direction a change is ``safe`` (nothing to do), ``risky`` (safe only for readers that do
not pin dtypes: scan ``schema=``, pandera, a Delta column without widening all reject it) or
``unsafe``. A mode turns that into a verdict: ``forward`` and ``backward`` take their direction,
``full`` the worse of the two, ``none`` allows everything. safe is allowed, risky a warning,
unsafe breaking. The per-change rules follow the rule table of polars dtypes in the README
(section "Schema contracts").

Everything here is pure: schemas in, a report out. Callers decide what a breaking report means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum
from typing import Final, Literal

from flowfactory.schema.contracts import ColumnContract, DType, LockedVersion, TableSchema

__all__ = [
    "Change",
    "ChangeKind",
    "Impact",
    "Mode",
    "Safety",
    "classify",
    "classify_against",
    "compare_dtypes",
    "verdict_for",
]

Mode = Literal["backward", "forward", "full", "none"]


class Safety(IntEnum):
    """How safe a change is in one direction."""

    safe = 0
    risky = 1
    unsafe = 2


class Impact(StrEnum):
    """What a change means under a mode."""

    allowed = "allowed"
    warning = "warning"
    breaking = "breaking"

    @property
    def rank(self) -> int:
        """Order of severity."""
        return _VERDICT_RANK[self]


_VERDICT_RANK: Final = {Impact.allowed: 0, Impact.warning: 1, Impact.breaking: 2}
_VERDICT_OF: Final = {
    Safety.safe: Impact.allowed,
    Safety.risky: Impact.warning,
    Safety.unsafe: Impact.breaking,
}


class ChangeKind(StrEnum):
    """The kinds of change the classifier tells apart."""

    column_added = "column added"
    column_dropped = "column dropped"
    column_renamed = "column renamed"
    columns_reordered = "columns reordered"
    type_widened = "type widened"
    type_narrowed = "type narrowed"
    type_changed = "type changed"
    representation_changed = "representation changed"
    time_zone_changed = "time zone changed"
    time_unit_finer = "time unit finer"
    time_unit_coarser = "time unit coarser"
    decimal_scale_changed = "decimal scale changed"
    enum_categories_added = "enum categories added"
    enum_categories_removed = "enum categories removed"
    enum_categories_reordered = "enum categories reordered"
    field_added = "struct field added"
    field_dropped = "struct field dropped"
    nullability_loosened = "NOT NULL dropped"
    nullability_tightened = "NOT NULL added"
    key_changed = "key changed"
    key_type_changed = "key column type changed"
    key_uniqueness_dropped = "key no longer unique"
    key_uniqueness_added = "key declared unique"
    # Found in the rows by the run-time check (schema.output), not between two schemas.
    null_values = "nulls in a NOT NULL column"
    duplicate_keys = "duplicate keys"


@dataclass(frozen=True)
class Change:
    """One difference between the locked schema and the new one, judged under a mode."""

    column: str
    kind: ChangeKind
    before: str
    after: str
    forward: Safety
    backward: Safety
    verdict: Impact = Impact.allowed
    detail: str = ""
    against_version: int | None = None

    def describe(self) -> str:
        """``column dropped: visib (Float64 -> none)``."""
        if self.before or self.after:
            arrow = f" ({self.before or 'none'} -> {self.after or 'none'})"
        else:
            arrow = ""
        extra = f"; {self.detail}" if self.detail else ""
        version = f" [vs v{self.against_version}]" if self.against_version else ""
        return f"{self.kind}: {self.column}{arrow}{extra}{version}"


def verdict_for(forward: Safety, backward: Safety, mode: Mode) -> Impact:
    """The verdict of a change with these safeties under ``mode``."""
    if mode == "none":
        return Impact.allowed
    if mode == "forward":
        return _VERDICT_OF[forward]
    if mode == "backward":
        return _VERDICT_OF[backward]
    return _VERDICT_OF[max(forward, backward)]


Rule = tuple[Safety, Safety]  # (forward, backward), as in the columns of the rule table


def _change(
    column: str, kind: ChangeKind, before: str, after: str, rule: Rule, *, detail: str = ""
) -> Change:
    return Change(column, kind, before, after, rule[0], rule[1], detail=detail)


S, R, U = Safety.safe, Safety.risky, Safety.unsafe


# --------------------------------------------------------------------------------------------
# Dtypes

_INT_BITS: Final = {
    "Int8": (8, True),
    "Int16": (16, True),
    "Int32": (32, True),
    "Int64": (64, True),
    "Int128": (128, True),
    "UInt8": (8, False),
    "UInt16": (16, False),
    "UInt32": (32, False),
    "UInt64": (64, False),
    "UInt128": (128, False),
}
# Significand bits: an integer type fits a float exactly when its magnitude bits fit.
_FLOAT_BITS: Final = {"Float16": (16, 11), "Float32": (32, 24), "Float64": (64, 53)}
_TIME_UNITS: Final = {"ms": 0, "us": 1, "ns": 2}
_STRINGLIKE: Final = frozenset({"String", "Categorical", "Enum"})


def _int_fits(old: str, new: str) -> bool:
    """Every value of integer type ``old`` is a value of ``new``."""
    old_bits, old_signed = _INT_BITS[old]
    new_bits, new_signed = _INT_BITS[new]
    if old_signed and not new_signed:
        return False
    if old_signed == new_signed:
        return new_bits >= old_bits
    return new_bits > old_bits  # unsigned into signed needs one more bit


def _int_exact_in_float(old: str, new: str) -> bool:
    bits, signed = _INT_BITS[old]
    return bits - int(signed) <= _FLOAT_BITS[new][1]


_DtypeRule = Callable[[str, DType, DType], list[Change] | None]


def _one(
    column: str, old: DType, new: DType, kind: ChangeKind, rule: Rule, *, detail: str = ""
) -> list[Change]:
    return [_change(column, kind, old.text(), new.text(), rule, detail=detail)]


def _from_null(column: str, old: DType, new: DType) -> list[Change] | None:
    if old.type != "Null":
        return None
    return _one(
        column, old, new, ChangeKind.type_widened, (S, S), detail="a column of nulls gets a type"
    )


def _integers(column: str, old: DType, new: DType) -> list[Change] | None:
    a, b = old.type, new.type
    if a not in _INT_BITS or b not in _INT_BITS:
        return None
    if _int_fits(a, b):
        return _one(column, old, new, ChangeKind.type_widened, (R, S))
    if _int_fits(b, a):
        return _one(
            column, old, new, ChangeKind.type_narrowed, (S, U), detail="old values may not fit"
        )
    detail = "neither type holds every value of the other"
    return _one(column, old, new, ChangeKind.type_changed, (U, U), detail=detail)


def _floats(column: str, old: DType, new: DType) -> list[Change] | None:
    a, b = old.type, new.type
    if b not in _FLOAT_BITS or (a not in _INT_BITS and a not in _FLOAT_BITS):
        return None
    if a in _INT_BITS:
        if _int_exact_in_float(a, b):
            return _one(column, old, new, ChangeKind.type_widened, (R, S))
        detail = f"{b} is not exact beyond 2^{_FLOAT_BITS[b][1]}"
        return _one(column, old, new, ChangeKind.type_widened, (R, U), detail=detail)
    if _FLOAT_BITS[b][0] > _FLOAT_BITS[a][0]:
        return _one(column, old, new, ChangeKind.type_widened, (R, S))
    return _one(column, old, new, ChangeKind.type_narrowed, (S, U), detail="precision is lost")


def _strings(column: str, old: DType, new: DType) -> list[Change] | None:
    if old.type not in _STRINGLIKE or new.type not in _STRINGLIKE:
        return None
    if old.type == new.type == "Enum":
        return _compare_enums(column, old, new)
    detail = "joins of String with Categorical fail"
    return _one(column, old, new, ChangeKind.representation_changed, (R, R), detail=detail)


def _dates(column: str, old: DType, new: DType) -> list[Change] | None:
    pair = (old.type, new.type)
    if pair == ("Date", "Datetime"):
        return _one(column, old, new, ChangeKind.type_widened, (R, S))
    if pair == ("Datetime", "Date"):
        return _one(
            column, old, new, ChangeKind.type_narrowed, (S, U), detail="the time of day is lost"
        )
    if old.type == new.type and old.type in ("Datetime", "Duration"):
        return _compare_temporal(column, old, new)
    return None


def _nested(column: str, old: DType, new: DType) -> list[Change] | None:
    if old.type != new.type:
        return None
    if old.type == "Decimal":
        return _compare_decimals(column, old, new)
    if old.type == "Struct":
        return _compare_structs(column, old.fields or [], new.fields or [])
    if old.type in ("List", "Array") and old.inner is not None and new.inner is not None:
        if old.shape != new.shape:
            return _one(
                column, old, new, ChangeKind.type_changed, (U, U), detail="the shape changed"
            )
        return compare_dtypes(f"{column}[]", old.inner, new.inner)
    return None


_DTYPE_RULES: Final[tuple[_DtypeRule, ...]] = (
    _from_null,
    _integers,
    _floats,
    _strings,
    _dates,
    _nested,
)


def compare_dtypes(column: str, old: DType, new: DType) -> list[Change]:
    """The changes from dtype ``old`` to ``new`` of one column (nested types recursively)."""
    if old == new:
        return []
    for rule in _DTYPE_RULES:
        found = rule(column, old, new)
        if found is not None:
            return found
    return _one(
        column, old, new, ChangeKind.type_changed, (U, U), detail="no promotion between them"
    )


def _compare_decimals(column: str, old: DType, new: DType) -> list[Change]:
    before, after = old.text(), new.text()
    if old.scale != new.scale:
        return [
            _change(
                column,
                ChangeKind.decimal_scale_changed,
                before,
                after,
                (U, U),
                detail="values are rounded differently",
            )
        ]
    old_p, new_p = old.precision or 38, new.precision or 38
    if new_p > old_p:
        return [_change(column, ChangeKind.type_widened, before, after, (R, S))]
    detail = "old values may not fit"
    return [_change(column, ChangeKind.type_narrowed, before, after, (S, U), detail=detail)]


def _compare_enums(column: str, old: DType, new: DType) -> list[Change]:
    old_c, new_c = old.categories or [], new.categories or []
    added = [c for c in new_c if c not in old_c]
    removed = [c for c in old_c if c not in new_c]
    changes: list[Change] = []
    if added:
        changes.append(
            _change(column, ChangeKind.enum_categories_added, "", ", ".join(added), (R, S))
        )
    if removed:
        changes.append(
            _change(column, ChangeKind.enum_categories_removed, ", ".join(removed), "", (S, U))
        )
    if not changes:
        changes.append(
            _change(
                column,
                ChangeKind.enum_categories_reordered,
                old.text(),
                new.text(),
                (R, R),
                detail="sorting by the enum changes",
            )
        )
    return changes


def _compare_temporal(column: str, old: DType, new: DType) -> list[Change]:
    before, after = old.text(), new.text()
    changes: list[Change] = []
    if old.time_zone != new.time_zone:
        changes.append(
            _change(
                column,
                ChangeKind.time_zone_changed,
                before,
                after,
                (U, U),
                detail="the same instant reads differently (a strict scan misses naive <-> UTC)",
            )
        )
    old_u, new_u = _TIME_UNITS[old.time_unit or "us"], _TIME_UNITS[new.time_unit or "us"]
    if new_u > old_u:
        detail = "ns limits the range to 1677-2262" if new.time_unit == "ns" else ""
        changes.append(
            _change(column, ChangeKind.time_unit_finer, before, after, (R, S), detail=detail)
        )
    elif new_u < old_u:
        changes.append(
            _change(
                column,
                ChangeKind.time_unit_coarser,
                before,
                after,
                (S, U),
                detail="precision is lost",
            )
        )
    return changes


def _compare_structs(
    column: str, old: list[ColumnContract], new: list[ColumnContract]
) -> list[Change]:
    old_by_name = {f.name: f for f in old}
    new_by_name = {f.name: f for f in new}
    changes: list[Change] = []
    for name, f in old_by_name.items():
        path = f"{column}.{name}"
        if name not in new_by_name:
            changes.append(_change(path, ChangeKind.field_dropped, f.dtype.text(), "", (U, S)))
        else:
            changes.extend(compare_dtypes(path, f.dtype, new_by_name[name].dtype))
    changes.extend(
        _change(f"{column}.{name}", ChangeKind.field_added, "", f.dtype.text(), (R, S))
        for name, f in new_by_name.items()
        if name not in old_by_name
    )
    return changes


# --------------------------------------------------------------------------------------------
# Tables


def _renames(
    dropped: list[ColumnContract], added: list[ColumnContract], declared: Mapping[str, str]
) -> list[tuple[ColumnContract, ColumnContract, bool]]:
    """(old, new, declared) pairs: declared renames, then unambiguous same-dtype drop + add."""
    pairs: list[tuple[ColumnContract, ColumnContract, bool]] = []
    old_by_name = {c.name: c for c in dropped}
    for new in added:
        old_name = declared.get(new.name)
        if old_name is not None and old_name in old_by_name:
            pairs.append((old_by_name.pop(old_name), new, True))
    paired_new = {new.name for _, new, _ in pairs}
    rest = [c for c in added if c.name not in paired_new]
    for old in list(old_by_name.values()):
        matches = [n for n in rest if n.dtype == old.dtype]
        if len(matches) != 1:
            continue
        (new,) = matches
        if sum(o.dtype == new.dtype for o in old_by_name.values()) == 1:
            pairs.append((old, new, False))
            rest.remove(new)
    return pairs


def _column_changes(
    old: TableSchema, new: TableSchema, declared: Mapping[str, str]
) -> list[Change]:
    old_names = [c.name for c in old.columns]
    new_names = [c.name for c in new.columns]
    dropped = [c for c in old.columns if c.name not in new_names]
    added = [c for c in new.columns if c.name not in old_names]
    changes: list[Change] = []
    renamed = _renames(dropped, added, declared)
    for was, now, is_declared in renamed:
        changes.append(
            _change(
                now.name,
                ChangeKind.column_renamed,
                was.name,
                now.name,
                (U, S if is_declared else U),
                detail="declared in schema.renamed"
                if is_declared
                else "a drop and an add of one dtype",
            )
        )
    paired = {was.name for was, _, _ in renamed} | {now.name for _, now, _ in renamed}
    changes.extend(
        _change(column.name, ChangeKind.column_dropped, column.dtype.text(), "", (U, S))
        for column in dropped
        if column.name not in paired
    )
    for column in added:
        if column.name in paired:
            continue
        if column.nullable:
            changes.append(
                _change(column.name, ChangeKind.column_added, "", column.dtype.text(), (S, S))
            )
        else:
            changes.append(
                _change(
                    column.name,
                    ChangeKind.column_added,
                    "",
                    f"{column.dtype.text()} NOT NULL",
                    (S, U),
                    detail="old data has no value for it",
                )
            )
    for column in old.columns:
        now_col = new.column(column.name)
        if now_col is None:
            continue
        changes.extend(compare_dtypes(column.name, column.dtype, now_col.dtype))
        if column.name in old.key and column.dtype != now_col.dtype:
            # Even a widening changes how rows are matched across versions (joins, merges).
            changes.append(
                _change(
                    column.name,
                    ChangeKind.key_type_changed,
                    column.dtype.text(),
                    now_col.dtype.text(),
                    (U, U),
                    detail="rows of the two versions no longer match by key",
                )
            )
        if column.nullable and not now_col.nullable:
            changes.append(_change(column.name, ChangeKind.nullability_tightened, "", "", (S, U)))
        elif not column.nullable and now_col.nullable:
            changes.append(_change(column.name, ChangeKind.nullability_loosened, "", "", (U, S)))
    kept_old = [n for n in old_names if n in new_names]
    kept_new = [n for n in new_names if n in old_names]
    if kept_old != kept_new:
        changes.append(
            _change(
                "(column order)",
                ChangeKind.columns_reordered,
                ", ".join(kept_old),
                ", ".join(kept_new),
                (R, S),
                detail="readers by position (vertical concat, CSV, rows()) see other columns",
            )
        )
    return changes


def _key_changes(old: TableSchema, new: TableSchema) -> list[Change]:
    changes: list[Change] = []
    if old.key != new.key:
        changes.append(
            _change(
                "(key)",
                ChangeKind.key_changed,
                ", ".join(old.key),
                ", ".join(new.key),
                (U, U),
                detail="a row is identified differently",
            )
        )
    elif old.key_unique and not new.key_unique:
        changes.append(_change("(key)", ChangeKind.key_uniqueness_dropped, "", "", (U, U)))
    elif new.key_unique and not old.key_unique:
        changes.append(_change("(key)", ChangeKind.key_uniqueness_added, "", "", (S, U)))
    return changes


def classify(
    old: TableSchema,
    new: TableSchema,
    mode: Mode,
    renamed: Mapping[str, str] | None = None,
) -> list[Change]:
    """Every change from ``old`` to ``new``, each with its verdict under ``mode``."""
    changes = [*_column_changes(old, new, renamed or {}), *_key_changes(old, new)]
    return [replace(c, verdict=verdict_for(c.forward, c.backward, mode)) for c in changes]


def classify_against(
    versions: Iterable[LockedVersion],
    new: TableSchema,
    mode: Mode,
    *,
    transitive: bool,
    renamed: Mapping[str, str] | None = None,
) -> list[Change]:
    """Changes against the newest locked version, or against every one when ``transitive``.

    A change found against several versions is reported once, against the newest of them.
    """
    found: list[Change] = []
    seen: set[tuple[str, ChangeKind, str, str]] = set()
    for index, version in enumerate(versions):
        if index and not transitive:
            break
        for change in classify(version, new, mode, renamed):
            ident = (change.column, change.kind, change.before, change.after)
            if ident in seen:
                continue
            seen.add(ident)
            found.append(replace(change, against_version=version.version if index else None))
    return found
