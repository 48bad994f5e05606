"""Building blocks shared by every model of a pipeline file: the base model, names, durations."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

__all__ = [
    "NAME_PATTERN",
    "ColumnName",
    "Duration",
    "Model",
    "Name",
    "duplicates",
    "listed_once",
    "parse_duration",
]

_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> object:
    """Accept ``90``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` (or a timedelta) as a duration."""
    not_a_duration = f"{value!r} is not a duration such as 30s, 15m, 2h or 1d"
    if isinstance(value, bool):
        raise ValueError(not_a_duration)  # a TypeError would escape pydantic
    if isinstance(value, int | float):
        seconds: float = value
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text or _DURATION_RE.sub("", text) != "":
            raise ValueError(not_a_duration)
        seconds = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_RE.findall(text))
    else:
        return value
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(not_a_duration)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: seconds, or text such as 30s, 15m, 2h, 1d.",
        }
    ),
]

NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,62}$"
Name = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN),
    Field(
        description="Lowercase letters, digits and _ (a letter first): safe as a folder name "
        "under the data root."
    ),
]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class Model(BaseModel):
    """Every pipeline-file model: unknown keys are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def duplicates(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted."""
    return sorted(value for value, count in Counter(values).items() if count > 1)


def listed_once(what: str) -> AfterValidator:
    """A validator refusing a list that names one ``what`` (column, dataset) twice."""

    def check(values: list[str]) -> list[str]:
        repeated = duplicates(values)
        if repeated:
            raise ValueError(f"{what} listed twice: {', '.join(repeated)}")
        return values

    return AfterValidator(check)
