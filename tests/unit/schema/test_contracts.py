"""Contract files: every dtype survives JSON, files are written whole, bad files say so."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flowfactory.config import SchemaConfig
from flowfactory.errors import ContractError
from flowfactory.schema import Contract, DType, TableSchema, read_contract, write_contract

DTYPES = [
    pl.Boolean(),
    pl.Int8(),
    pl.UInt64(),
    pl.Int128(),
    pl.Float32(),
    pl.String(),
    pl.Binary(),
    pl.Date(),
    pl.Time(),
    pl.Null(),
    pl.Categorical(),
    pl.Datetime("ns"),
    pl.Datetime("us", "UTC"),
    pl.Datetime("ms", "Australia/Sydney"),
    pl.Duration("ms"),
    pl.Decimal(12, 4),
    pl.Enum(["new", "paid", "refunded"]),
    pl.List(pl.Datetime("us", "UTC")),
    pl.Array(pl.Int16(), (2, 3)),
    pl.Struct({"a": pl.Int8(), "b": pl.List(pl.Decimal(10, 2))}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dtype_round_trip(dtype: pl.DataType) -> None:
    """A dtype written to JSON reads back equal, time zone and precision included."""
    text = DType.of(dtype).model_dump_json(exclude_none=True)
    assert DType.model_validate_json(text).to_polars() == dtype


def test_contract_file_round_trip(tmp_path: Path) -> None:
    """A contract survives write and read; no temporary file is left behind."""
    schema = TableSchema.of(
        pl.Schema({"id": pl.Int64(), "t": pl.Datetime("us", "UTC")}),
        not_null=["t"],
        key=["id"],
        key_unique=True,
    )
    contract = Contract.first("orders", "ingest_orders", schema)
    path = tmp_path / "contracts" / "orders.json"
    write_contract(path, contract)
    assert read_contract(path) == contract
    assert [p.name for p in path.parent.iterdir()] == ["orders.json"]
    assert path.read_text().splitlines()[1] == '  "format": 1,'


def test_relock_keeps_history() -> None:
    """Each new version pushes the previous ones into the history, newest first."""
    v1 = TableSchema.of(pl.Schema({"a": pl.Int32()}))
    v2 = TableSchema.of(pl.Schema({"a": pl.Int64()}))
    v3 = TableSchema.of(pl.Schema({"a": pl.Int64(), "b": pl.String()}))
    contract = Contract.first("d", "p", v1).relocked(v2, "p").relocked(v3, "p")
    assert contract.version == 3
    assert [v.version for v in contract.versions] == [3, 2, 1]
    assert contract.history[1].same_as(v1)


def test_missing_and_broken_contracts(tmp_path: Path) -> None:
    """No file is no contract; a broken file is an error that says how to fix it."""
    assert read_contract(tmp_path / "none.json") is None
    broken = tmp_path / "broken.json"
    broken.write_text('{"dataset": "x"}')
    with pytest.raises(ContractError, match="re-create it with `flowfactory schema lock`"):
        read_contract(broken)


def test_unknown_dtype_in_a_contract() -> None:
    """A dtype name polars does not know is refused, not guessed."""
    with pytest.raises(ContractError, match="unknown dtype 'Int7'"):
        DType(type="Int7").to_polars()


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        ("/etc/x.json", "must be a path inside the project"),
        ("../x.json", "must be a path inside the project"),
        ("contracts/x.yaml", "must be a .json file"),
    ],
)
def test_schema_config_contract_path(contract: str, message: str) -> None:
    """The contract path stays inside the project and is JSON."""
    with pytest.raises(ValueError, match=message):
        SchemaConfig(contract=contract)


def test_schema_config_modes() -> None:
    """Transitive modes keep their direction."""
    config = SchemaConfig(compatibility="backward_transitive")
    assert config.transitive
    assert config.direction == "backward"
    assert not SchemaConfig().transitive
    assert SchemaConfig().direction == "forward"
