"""One error hierarchy for everything flowfactory raises on purpose.

Every class derives from :class:`FlowfactoryError` and from the standard exception it is most
like, so callers can catch "any flowfactory error" or the familiar kind. The command line maps
:class:`UsageError` to exit code 2, every other one to a one-line message and exit code 1, and
:class:`ConfigError` to one ``path:line:col: error: ...`` line per problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BadDataError",
    "CanaryError",
    "CircuitOpenError",
    "ConfigError",
    "ContractError",
    "DiffError",
    "ExistingFilesError",
    "FieldValueError",
    "FlowfactoryError",
    "NotAProjectError",
    "PipelineRunError",
    "Problem",
    "SamplingError",
    "SchemaDerivationError",
    "SchemaIncompatibleError",
    "StackError",
    "UnknownVersionError",
    "UsageError",
    "WriteError",
]


@dataclass(frozen=True, order=True)
class Problem:
    """One positioned problem in a config file, printed the way editors and CI read it."""

    path: str
    line: int
    column: int
    message: str
    field: str = ""

    def format(self) -> str:
        """Render as ``path:line:col: error: <field path>: <message>``."""
        where = f"{self.field}: " if self.field else ""
        return f"{self.path}:{self.line}:{self.column}: error: {where}{self.message}"

    @classmethod
    def at_file(cls, path: Path | str, message: str, field: str = "") -> Problem:
        """A problem that concerns a whole file rather than one position in it."""
        return cls(str(path), 1, 1, message, field)


class FlowfactoryError(Exception):
    """Root of every error flowfactory raises on purpose."""


class UsageError(FlowfactoryError, ValueError):
    """Raised when a command is asked for something that does not exist or is malformed
    (an unknown dataset, a bad partition or version); the command line exits 2."""


class ConfigError(FlowfactoryError, ValueError):
    """Raised when one or more pipeline files are invalid; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems))
        super().__init__("\n".join(p.format() for p in self.problems))


class FieldValueError(ValueError):
    """Raised inside a model validator about one field, so that the error points at it.

    A plain ValueError on purpose: pydantic turns it into a validation error, and the loader
    into a positioned :class:`Problem`; it never reaches a caller on its own.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class ExistingFilesError(FlowfactoryError, FileExistsError):
    """Raised when scaffolding a project would overwrite files; carries every one of them."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths: tuple[str, ...] = tuple(sorted(paths))
        super().__init__(f"{len(self.paths)} file(s) already exist: {', '.join(self.paths)}")


class NotAProjectError(FlowfactoryError):
    """Raised when a verb that works on a project runs in a folder without deployments/."""


class WriteError(FlowfactoryError, OSError):
    """Raised when a dataset partition cannot be written; the previous data is left intact."""


class PipelineRunError(FlowfactoryError, RuntimeError):
    """Raised when a pipeline run fails for a reason other than its config."""


class BadDataError(PipelineRunError, ValueError):
    """Raised when input data cannot be read as the pipeline expects; the message names the
    file (or the API) and what is wrong with it. Nothing is written."""


class StackError(FlowfactoryError, RuntimeError):
    """Raised when the local Prefect stack cannot start or be reached."""


class ContractError(FlowfactoryError, ValueError):
    """Raised when a contract file cannot be read or names a dtype polars does not know."""


class SchemaDerivationError(FlowfactoryError, ValueError):
    """Raised when a pipeline's output schema cannot be derived without data."""


class SchemaIncompatibleError(FlowfactoryError, RuntimeError):
    """Raised when a run's output breaks its locked contract; nothing of it is written."""

    def __init__(self, message: str, columns: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.columns: tuple[str, ...] = tuple(columns)


class CanaryError(FlowfactoryError, RuntimeError):
    """Raised when a canary cannot run (no candidate, unknown version) or a promotion is refused."""


class UnknownVersionError(UsageError, CanaryError):
    """Raised when a pipeline version is asked for that the pipeline does not have: neither v1
    nor v2, or v2 without a canary candidate. A usage error to the command line (exit 2), a
    CanaryError to the canary."""


class DiffError(FlowfactoryError, ValueError):
    """Raised when two frames cannot be diffed as asked (no key columns)."""


class SamplingError(FlowfactoryError, ValueError):
    """Raised when a frame cannot be sampled as asked (missing or unhashable key columns)."""


class CircuitOpenError(FlowfactoryError):
    """Raised instead of a call when the breaker of its dependency is open.

    A fresh instance per rejection, raised from a shallow frame: logging it costs the same
    after a million rejections as after one. ``args`` round-trip through pickle.
    """

    def __init__(self, dependency: str, retry_after: float | None, state: str = "open") -> None:
        super().__init__(dependency, retry_after, state)
        self.dependency = dependency
        self.retry_after = retry_after
        self.state = state

    def __str__(self) -> str:
        when = "" if self.retry_after is None else f"; retry in {self.retry_after:.1f} s"
        return f"circuit breaker {self.dependency!r} is {self.state}: call not made{when}"
