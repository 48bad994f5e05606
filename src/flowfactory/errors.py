"""One error hierarchy for everything flowfactory raises on purpose."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ConfigError",
    "FlowfactoryError",
    "PipelineRunError",
    "Problem",
    "SchemaIncompatibleError",
    "StackError",
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


class ConfigError(FlowfactoryError, ValueError):
    """Raised when one or more pipeline files are invalid; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems))
        super().__init__("\n".join(p.format() for p in self.problems))


class WriteError(FlowfactoryError, OSError):
    """Raised when a dataset partition cannot be written; the previous data is left intact."""


class PipelineRunError(FlowfactoryError, RuntimeError):
    """Raised when a pipeline run fails for a reason other than its config."""


class StackError(FlowfactoryError, RuntimeError):
    """Raised when the local Prefect stack cannot start or be reached."""


class SchemaIncompatibleError(FlowfactoryError, RuntimeError):
    """Raised when a run's output breaks its locked contract; nothing of it is written."""

    def __init__(self, message: str, columns: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.columns: tuple[str, ...] = tuple(columns)
