"""The sections of a pipeline file: sources, transform, destination, schedule, trigger, SLA.

Validated once at load time, typed from then on.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    ByteSize,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from flowfactory.config.base import ColumnName, Duration, Model, Name, listed_once
from flowfactory.errors import FieldValueError

__all__ = [
    "SOURCE_KINDS",
    "TRANSFORM_KINDS",
    "CircuitBreakerConfig",
    "CsvOptions",
    "DatasetSource",
    "Deadline",
    "Destination",
    "FileSource",
    "HttpEndpoint",
    "HttpSource",
    "PythonTransform",
    "Retries",
    "Schedule",
    "Sla",
    "Source",
    "SqlTransform",
    "Transform",
    "Trigger",
]

# --------------------------------------------------------------------------------------------
# Circuit breaker


class CircuitBreakerConfig(Model):
    """How the circuit breaker of an external dependency trips, waits and probes.

    Every field has a default, so a pipeline or source block names only what it changes; a
    source's block is laid over its pipeline's, which is laid over ``_defaults.yaml``.
    """

    enabled: bool = True
    dependency: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
        description="Name of the dependency (shared by everyone who names it); derived from "
        "the source's URL host when left out.",
    )
    failure_threshold: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failures that open the circuit."
    )
    reset_after: Duration = Field(
        default=timedelta(seconds=30), description="How long the circuit stays open at first."
    )
    backoff: float = Field(
        default=2.0, ge=1.0, le=10.0, description="Open time multiplier for each re-open in a row."
    )
    max_reset_after: Duration = Field(
        default=timedelta(minutes=10), description="Ceiling of the backed-off open time."
    )
    jitter: float = Field(
        default=0.2, ge=0.0, le=1.0, description="Open time is shortened by up to this fraction."
    )
    half_open_probes: int = Field(
        default=1, ge=1, le=100, description="Calls let through at once to test recovery."
    )
    failure_rate_threshold: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Also open when this fraction of the last `window` calls failed.",
    )
    slow_call_duration: Duration | None = Field(
        default=None, description="A call slower than this counts toward the slow-call rate."
    )
    slow_call_rate_threshold: float = Field(
        default=1.0, gt=0.0, le=1.0, description="Open when this fraction of the window was slow."
    )
    window: int = Field(default=20, ge=2, le=10_000, description="Calls in the rate window.")
    minimum_calls: int = Field(
        default=10, ge=1, le=10_000, description="No rate is judged on fewer calls than this."
    )
    notify: str | None = Field(
        default=None,
        description="A Prefect notification block (type-slug/name, e.g. slack-webhook/alerts) "
        "to notify when the circuit opens.",
    )
    retry_budget: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Retries allowed per successful call (gRPC-style token bucket); 0: none.",
    )

    @field_validator("reset_after", "max_reset_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be positive")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> CircuitBreakerConfig:
        if self.max_reset_after < self.reset_after:
            raise FieldValueError(("max_reset_after",), "must not be shorter than reset_after")
        if self.minimum_calls > self.window:
            raise FieldValueError(("minimum_calls",), "must not exceed window")
        return self

    def over(self, base: CircuitBreakerConfig | None) -> CircuitBreakerConfig:
        """This block laid over ``base``: the fields set here win."""
        if base is None:
            return self
        return base.model_copy(update={k: getattr(self, k) for k in self.model_fields_set})


# --------------------------------------------------------------------------------------------
# Sources


class CsvOptions(Model):
    """How CSV files are read."""

    separator: str = Field(default=",", min_length=1, max_length=1)
    has_header: bool = True
    null_values: list[str] = Field(default_factory=list, description="Strings read as null.")
    infer_schema_length: int | None = Field(default=10_000, ge=0)


_SUFFIX_FORMATS: Final = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}


class FileSource(Model):
    """Files under the data root (a relative path or glob) or at any fsspec URL."""

    path: str = Field(min_length=1, description="Relative to the data root, or an fsspec URL.")
    format: Literal["csv", "parquet", "ndjson"] | None = Field(
        default=None, description="Inferred from the file suffix when left out."
    )
    csv: CsvOptions = Field(default_factory=CsvOptions)
    external_dataset: Name | None = Field(
        default=None,
        description="Name these files as an external dataset, so that `flowfactory emit NAME` "
        "(or a dataset.updated event for it) can trigger the pipeline.",
    )
    circuit_breaker: CircuitBreakerConfig | None = Field(
        default=None, description="Breaker settings for this source (over the pipeline's)."
    )

    @field_validator("path")
    @classmethod
    def _path_stays_under_root(cls, path: str) -> str:
        if "://" in path:
            return path
        pure = PurePosixPath(path)
        if pure.is_absolute() or path.startswith("~"):
            raise ValueError(
                f"{path!r} is absolute; local paths are relative to the data root "
                "(use a file:// URL to read elsewhere)"
            )
        if ".." in pure.parts:
            raise ValueError(f"{path!r} escapes the data root")
        return path

    @model_validator(mode="after")
    def _format_known(self) -> FileSource:
        if self.format is None and self.inferred_format is None:
            raise ValueError(
                f"cannot tell the format of {self.path!r} from its suffix; "
                "set format: csv | parquet | ndjson"
            )
        return self

    @property
    def inferred_format(self) -> Literal["csv", "parquet", "ndjson"] | None:
        """The declared format, else the one its suffix names."""
        if self.format is not None:
            return self.format
        suffix = PurePosixPath(self.path.split("?")[0]).suffix.lower()
        return _SUFFIX_FORMATS.get(suffix)  # type: ignore[return-value]

    @property
    def is_url(self) -> bool:
        """True for an fsspec URL, False for a path under the data root."""
        return "://" in self.path


class DatasetSource(Model):
    """A dataset produced by another pipeline, or declared external."""

    dataset: Name
    external: bool = Field(
        default=False,
        description="The dataset lands from outside flowfactory; no pipeline produces it.",
    )


class HttpEndpoint(Model):
    """A JSON endpoint of an HTTP API described by a Prefect block."""

    block: str = Field(
        min_length=1,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Name of the `http-json-api` block (base URL, headers, timeouts).",
    )
    path: str = Field(default="/", pattern=r"^/", description="Path under the block's base URL.")
    params: dict[str, str] = Field(default_factory=dict, description="Query parameters.")
    records: str | None = Field(
        default=None,
        description="Dotted key of the list of records in the JSON (left out: the JSON is it).",
    )
    max_size: ByteSize = Field(
        default=ByteSize(64 * 1024 * 1024),
        gt=0,
        description="The largest answer read; a larger one fails the run, naming the endpoint.",
    )


class HttpSource(Model):
    """Records from an HTTP JSON API, behind the API's circuit breaker."""

    http: HttpEndpoint
    circuit_breaker: CircuitBreakerConfig | None = Field(
        default=None, description="Breaker settings for this API (over the pipeline's)."
    )


# The key that tells each kind apart; pydantic also puts it in error locations.
SOURCE_KINDS: Final = ("dataset", "path", "http")
_SOURCE_KINDS: Final = dict(zip((DatasetSource, FileSource, HttpSource), SOURCE_KINDS, strict=True))


def _source_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kinds = [kind for kind in SOURCE_KINDS if kind in value]
        return kinds[0] if len(kinds) == 1 else None
    if isinstance(value, BaseModel):
        return _SOURCE_KINDS.get(type(value))
    return None


Source = Annotated[
    Annotated[DatasetSource, Tag("dataset")]
    | Annotated[FileSource, Tag("path")]
    | Annotated[HttpSource, Tag("http")],
    Discriminator(
        _source_kind,
        custom_error_type="source_kind",
        custom_error_message="a source needs exactly one of `dataset:`, `path:` or `http:`",
    ),
]


# --------------------------------------------------------------------------------------------
# Transform


class SqlTransform(Model):
    """polars SQL over the sources; each source is a table under its name."""

    sql: str = Field(min_length=1)


_CALLABLE_RE: Final = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


class PythonTransform(Model):
    """A function ``module:function`` taking LazyFrames (by source name) and returning one."""

    python: str = Field(description="module.path:function, under an allowed module root.")

    @field_validator("python")
    @classmethod
    def _allowed_root(cls, target: str, info: ValidationInfo) -> str:
        if not _CALLABLE_RE.match(target):
            raise ValueError(f"{target!r} is not of the form module.path:function")
        allowed: list[str] = (info.context or {}).get("allowed_modules", ["transforms"])
        module = target.split(":", 1)[0]
        if not any(module == root or module.startswith(root + ".") for root in allowed):
            roots = ", ".join(allowed) or "(none)"
            raise ValueError(
                f"module {module!r} is outside the allowed module roots ({roots}); "
                "add its root to [tool.flowfactory] allowed_modules in pyproject.toml"
            )
        return target

    @property
    def module(self) -> str:
        """The module part of the target."""
        return self.python.split(":", 1)[0]

    @property
    def function(self) -> str:
        """The function part of the target."""
        return self.python.split(":", 1)[1]


TRANSFORM_KINDS: Final = ("sql", "python")


def _transform_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kinds = [kind for kind in TRANSFORM_KINDS if kind in value]
        return kinds[0] if len(kinds) == 1 else None
    if isinstance(value, BaseModel):
        return "sql" if isinstance(value, SqlTransform) else "python"
    return None


Transform = Annotated[
    Annotated[SqlTransform, Tag("sql")] | Annotated[PythonTransform, Tag("python")],
    Discriminator(
        _transform_kind,
        custom_error_type="transform_kind",
        custom_error_message="a transform needs exactly one of `sql:` or `python:`",
    ),
]


# --------------------------------------------------------------------------------------------
# Destination, schedule, retries


class Destination(Model):
    """A dataset of partitioned Parquet under the data root."""

    dataset: Name
    format: Literal["parquet"] = "parquet"
    partition_by: Annotated[list[ColumnName], listed_once("column")] = Field(
        default_factory=list, description="Columns whose values name each partition folder."
    )
    key: Annotated[list[ColumnName], listed_once("column")] = Field(
        default_factory=list,
        description="Columns that identify a row; each partition is sorted by them "
        "(without a key, rows keep the order the transform gives them).",
    )
    announce: Literal["changed", "always"] = Field(
        default="changed",
        description="Emit dataset.updated for partitions whose rows changed, or for every write.",
    )
    max_file_size: ByteSize = Field(
        default=ByteSize(512 * 1024 * 1024),
        gt=0,
        description="A partition larger than this (in memory) is written as several files.",
    )


@functools.lru_cache(maxsize=1024)
def _cron_is_valid(cron: str) -> bool:
    """croniter's check (cached: it is a quarter of load time on large projects)."""
    return croniter.is_valid(cron) and re.search(r"\b[RH]\b", cron) is None


class Schedule(Model):
    """A cron expression or an interval, in a time zone."""

    cron: str | None = None
    interval: Duration | None = None
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str | None) -> str | None:
        # Prefect rejects croniter's random (R) and hashed (H) extensions; so do we.
        if cron is not None and not _cron_is_valid(cron):
            raise ValueError(f"{cron!r} is not a valid cron expression")
        return cron

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}") from None
        return timezone

    @field_validator("interval")
    @classmethod
    def _positive(cls, interval: timedelta | None) -> timedelta | None:
        if interval is not None and interval.total_seconds() <= 0:
            raise ValueError("interval must be positive")
        return interval

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("a schedule needs exactly one of `cron:` or `interval:`")
        return self


class Retries(Model):
    """Task retries for extract and load steps."""

    attempts: int = Field(default=0, ge=0, le=20)
    delay: Duration = Field(default=timedelta(seconds=10))
    backoff: Literal["constant", "exponential"] = "constant"
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("delay")
    @classmethod
    def _not_negative(cls, delay: timedelta) -> timedelta:
        if delay.total_seconds() < 0:
            raise ValueError("delay must not be negative")
        return delay

    def delays_seconds(self) -> list[float]:
        """The wait before each retry, in seconds."""
        base = self.delay.total_seconds()
        if self.backoff == "constant":
            return [base] * self.attempts
        return [base * 2**i for i in range(self.attempts)]


class Trigger(Model):
    """Run when input datasets are updated: per partition, once all (or any) of them have it."""

    on: Annotated[list[Name], listed_once("dataset")] = Field(
        min_length=1, description="Input datasets whose updates start a run."
    )
    require: Literal["all", "any"] = Field(
        default="all", description="all: once every input has the partition; any: on each update."
    )
    partition: Literal["same", "all"] = Field(
        default="same",
        description="same: one run per updated partition; all: one run over all the data.",
    )


class Deadline(Model):
    """Data must have landed by each tick of a cron schedule."""

    cron: str
    timezone: str = "UTC"

    _valid_cron = field_validator("cron")(Schedule._valid_cron.__func__)  # type: ignore[attr-defined]
    _valid_timezone = field_validator("timezone")(Schedule._valid_timezone.__func__)  # type: ignore[attr-defined]


class Sla(Model):
    """Service levels, checked by automations on the Prefect server."""

    max_duration: Duration | None = Field(
        default=None, description="A run that is still going after this long misses its SLA."
    )
    freshness: Duration | None = Field(
        default=None, description="The output dataset must be updated at least this often."
    )
    deadline: Deadline | None = Field(
        default=None, description="Inputs must have been updated before each tick of this cron."
    )
    notify: str | None = Field(
        default=None,
        description="Name of a Prefect notification block to notify when an SLA is missed.",
    )

    @field_validator("max_duration", "freshness")
    @classmethod
    def _at_least_ten_seconds(cls, value: timedelta | None) -> timedelta | None:
        # Prefect's proactive triggers evaluate windows of 10 s or more.
        if value is not None and value.total_seconds() < 10:
            raise ValueError("must be at least 10s")
        return value

    @model_validator(mode="after")
    def _something(self) -> Sla:
        if self.max_duration is None and self.freshness is None and self.deadline is None:
            raise ValueError("an SLA needs at least one of max_duration, freshness or deadline")
        return self
