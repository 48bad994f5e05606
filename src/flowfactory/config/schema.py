"""The ``schema:`` section of a pipeline file: its output contract and how changes are judged."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator

from flowfactory.config.base import ColumnName, Model, listed_once

__all__ = ["CONTRACTS_DIR", "Compatibility", "SchemaConfig"]

CONTRACTS_DIR: Final = "contracts"

Compatibility = Literal[
    "backward",
    "backward_transitive",
    "forward",
    "forward_transitive",
    "full",
    "full_transitive",
    "none",
]


class SchemaConfig(Model):
    """The output contract of a pipeline and how its changes are judged."""

    contract: str | None = Field(
        default=None,
        description="The contract file, relative to the project (default: "
        "contracts/<dataset>.json).",
    )
    compatibility: Compatibility = Field(
        default="forward",
        description="forward: consumers still on the locked schema read the new output; "
        "backward: consumers on the new schema read old data; full: both; none: no check. "
        "The *_transitive forms check against every locked version, not only the last.",
    )
    not_null: Annotated[list[ColumnName], listed_once("column")] = Field(
        default_factory=list,
        description="Columns that never hold null (key columns are NOT NULL already).",
    )
    unique_key: bool = Field(
        default=True, description="destination.key identifies at most one row."
    )
    renamed: dict[ColumnName, ColumnName] = Field(
        default_factory=dict,
        description="Declared renames, new name -> old name: readers of the new schema know "
        "the old name, so old data stays readable.",
    )

    @field_validator("contract")
    @classmethod
    def _relative_json(cls, contract: str | None) -> str | None:
        if contract is None:
            return None
        pure = PurePosixPath(contract)
        if pure.is_absolute() or ".." in pure.parts or "://" in contract:
            raise ValueError(f"{contract!r} must be a path inside the project")
        if pure.suffix != ".json":
            raise ValueError(f"{contract!r} must be a .json file")
        return contract

    @property
    def transitive(self) -> bool:
        """True for the modes that check against every locked version."""
        return self.compatibility.endswith("_transitive")

    @property
    def direction(self) -> Literal["backward", "forward", "full", "none"]:
        """The mode without its transitive suffix."""
        return self.compatibility.removesuffix("_transitive")  # type: ignore[return-value]
