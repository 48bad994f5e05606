"""The ``canary:`` section of a pipeline file: a candidate transform and how to judge it.

```yaml
canary:
  candidate: {python: transforms.flights:flight_delays}   # or {sql: ...}; v2 of `transform:`
  sample: {key: [origin, year, month, day, hour], fraction: 0.2}
  tolerance: {abs: 1.0e-9, rel: 1.0e-9, columns: {mean_dep_delay: {abs: 0.001}}}
  promote: auto                                            # or manual: approve in the UI
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from flowfactory.config.base import ColumnName, Duration, Model, duplicates
from flowfactory.config.models import Transform
from flowfactory.errors import FieldValueError

__all__ = ["CanaryConfig", "CanarySample", "CanaryTolerance", "ColumnTolerance"]


class CanarySample(Model):
    """Which input rows both versions run on: a key-hashed fraction, stratified if asked."""

    key: list[ColumnName] = Field(
        min_length=1,
        description="Input columns to sample by (the grain of the output); every input that "
        "has them is sampled on the same keys, the others are read whole.",
    )
    fraction: float | None = Field(
        default=None, gt=0, le=1, description="Share of keys kept; 0.01 is 1%."
    )
    stratify: ColumnName | None = Field(
        default=None, description="Also keep the first `per_stratum` keys of every value of it."
    )
    per_stratum: int | None = Field(default=None, ge=1)
    salt: int = Field(default=0, ge=0, description="Change it to draw an independent sample.")

    @model_validator(mode="after")
    def _complete(self) -> CanarySample:
        if self.stratify is not None and self.per_stratum is None:
            raise FieldValueError(("per_stratum",), "`stratify:` needs `per_stratum:` too")
        if self.per_stratum is not None and self.stratify is None:
            raise FieldValueError(("stratify",), "`per_stratum:` needs `stratify:` too")
        if self.fraction is None and self.stratify is None:
            raise FieldValueError(
                ("fraction",), "a sample needs `fraction:`, or `stratify:` with `per_stratum:`"
            )
        repeated = duplicates(self.key)
        if repeated:
            raise FieldValueError(("key",), f"column listed twice: {', '.join(repeated)}")
        return self


class ColumnTolerance(Model):
    """Float values within ``abs + rel * |v1|`` of each other count as equal."""

    abs: float = Field(default=0.0, ge=0)
    rel: float = Field(default=0.0, ge=0)


class CanaryTolerance(ColumnTolerance):
    """The default float tolerance, and per-column ones. Integers, text and dates are exact."""

    columns: dict[ColumnName, ColumnTolerance] = Field(default_factory=dict)


class CanaryConfig(Model):
    """Run a candidate transform (v2) beside the current one (v1) and promote it if they agree."""

    candidate: Transform = Field(description="v2: the same models as `transform:`.")
    sample: CanarySample
    tolerance: CanaryTolerance = Field(default_factory=CanaryTolerance)
    match_on: list[ColumnName] | None = Field(
        default=None,
        description="Output columns that match rows of v1 and v2; default destination.key.",
    )
    promote: Literal["auto", "manual"] = Field(
        default="auto", description="manual: a passing canary waits for approval in the UI."
    )
    approval_timeout: Duration = Field(
        default=timedelta(hours=1), description="How long a manual promotion waits."
    )
    sample_rows: int = Field(
        default=20, ge=1, le=1000, description="Differences shown per kind in the report."
    )

    @model_validator(mode="after")
    def _key_columns_once(self) -> CanaryConfig:
        if self.match_on is not None:
            repeated = duplicates(self.match_on)
            if repeated:
                raise FieldValueError(("match_on",), f"column listed twice: {', '.join(repeated)}")
            if not self.match_on:
                raise FieldValueError(("match_on",), "`match_on:` is empty")
        return self
