"""Static schema derivation over the dataset graph, `schema lock` and `schema check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.helpers import REPO, run_cli, write_project

from flowfactory.config import load_project
from flowfactory.errors import ConfigError
from flowfactory.schema import ChangeKind, Impact, check_project, lock_project, read_contract
from flowfactory.settings import Settings

INGEST = """\
name: ingest_orders
source: {path: landing/orders.csv}
transform:
  sql: |
    SELECT CAST(id AS BIGINT) AS id, day, CAST(amount AS BIGINT) AS amount, customer
    FROM source
destination: {dataset: orders, key: [id]}
schema: {not_null: [day]}
"""
DAILY = """\
name: daily_totals
source: {dataset: orders}
transform:
  sql: SELECT day, sum(amount) AS total, count(*) AS orders FROM source GROUP BY day
destination: {dataset: daily, key: [day]}
"""
REPORT = """\
name: daily_report
source: {dataset: daily}
destination: {dataset: report, key: [day]}
"""
FILES = {
    "deployments/ingest_orders.yaml": INGEST,
    "deployments/daily_totals.yaml": DAILY,
    "deployments/daily_report.yaml": REPORT,
    "data/landing/orders.csv": "id,day,amount,customer\n1,2024-01-01,10,a\n2,2024-01-01,5,b\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A three-pipeline chain, locked, with its landing data removed afterwards."""
    root = write_project(tmp_path, FILES)
    settings = Settings(project_dir=root)
    report = lock_project(load_project(settings.deployments_dir, settings), settings)
    assert report.ok, report.problems
    shutil.rmtree(root / "data")  # the check must not need any data
    return root


def _check(root: Path, names: list[str] | None = None):  # type: ignore[no-untyped-def]
    settings = Settings(project_dir=root)
    return check_project(load_project(settings.deployments_dir, settings), settings, names)


def _edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / "deployments" / f"{name}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_lock_writes_contracts_with_key_and_not_null(project: Path) -> None:
    """The contract has dtypes, NOT NULL (declared and key columns) and the unique key."""
    orders = read_contract(project / "contracts" / "orders.json")
    assert orders is not None
    assert orders.pipeline == "ingest_orders"
    assert orders.version == 1
    assert orders.key == ["id"]
    assert orders.key_unique
    assert orders.not_null == ["id", "day"]
    assert [(c.name, c.dtype.text()) for c in orders.columns] == [
        ("id", "Int64"),
        ("day", "String"),
        ("amount", "Int64"),
        ("customer", "String"),
    ]
    source = read_contract(project / "contracts" / "ingest_orders.source.json")
    assert source is not None
    assert source.pipeline is None


def test_round_trip_lock_check_no_change(project: Path) -> None:
    """A locked project checks clean, with no data present; locking again writes nothing."""
    report = _check(project)
    assert report.ok
    assert [r.status for r in report.results] == ["unchanged"] * 3
    before = {p.name: p.read_text() for p in (project / "contracts").iterdir()}
    settings = Settings(project_dir=project)
    again = lock_project(load_project(settings.deployments_dir, settings), settings)
    assert again.written == ()
    assert len(again.unchanged) == 3
    assert {p.name: p.read_text() for p in (project / "contracts").iterdir()} == before


def test_dropped_column_breaks_and_names_every_downstream(project: Path) -> None:
    """Dropping a column upstream breaks its consumer; both pipeline names are reported."""
    _edit(project, "ingest_orders", ", CAST(amount AS BIGINT) AS amount", "")
    report = _check(project)
    assert not report.ok
    ingest = report.get("ingest_orders")
    (dropped,) = [c for c in ingest.changes if c.verdict is Impact.breaking]
    assert (dropped.column, dropped.kind) == ("amount", ChangeKind.column_dropped)
    assert ingest.downstream == ("daily", "report")
    daily = report.get("daily_totals")
    assert daily.breaking
    assert daily.error is not None
    assert "amount" in daily.error
    assert daily.caused_by == ("ingest_orders",)
    text = report.text()
    assert "column dropped: amount" in text
    assert "caused by a change upstream in: ingest_orders" in text
    assert "affects downstream datasets: daily, report" in text


def test_upstream_type_change_is_rederived_through_the_graph(project: Path) -> None:
    """A type change upstream changes a downstream aggregate's type; the cause is named."""
    _edit(project, "ingest_orders", "CAST(amount AS BIGINT)", "CAST(amount AS DOUBLE)")
    report = _check(project)
    ingest = report.get("ingest_orders")
    (widened,) = ingest.changes
    assert widened.kind is ChangeKind.type_widened
    assert widened.verdict is Impact.warning  # forward: readers that pin Int64 reject it
    daily = report.get("daily_totals")
    (total,) = daily.changes
    assert (total.column, total.before, total.after) == ("total", "Int64", "Float64")
    assert daily.caused_by == ("ingest_orders",)
    report_result = report.get("daily_report")
    assert report_result.caused_by == ("daily_totals",)
    assert report_result.root_causes == ("ingest_orders",)
    assert "caused by a change upstream in: ingest_orders (via daily_totals)" in report.text()


def test_own_change_is_not_blamed_on_upstream(project: Path) -> None:
    """A break in a pipeline's own transform names no upstream cause."""
    _edit(project, "daily_totals", "count(*) AS orders", "count(*) AS n_orders")
    report = _check(project, ["daily_totals"])
    assert [r.pipeline for r in report.results] == ["daily_totals", "daily_report"]
    daily = report.get("daily_totals")
    assert daily.breaking
    assert daily.caused_by == ()
    (renamed,) = [c for c in daily.changes if c.kind is ChangeKind.column_renamed]
    assert (renamed.before, renamed.after) == ("orders", "n_orders")


def test_backward_mode_allows_a_drop_and_relock_keeps_history(project: Path) -> None:
    """Under backward a dropped column is allowed; re-locking bumps the version."""
    _edit(project, "daily_report", "key: [day]}", "key: [day]}\nschema: {compatibility: backward}")
    _edit(project, "daily_totals", ", count(*) AS orders", "")
    report = _check(project)
    assert report.get("daily_totals").breaking
    assert not report.get("daily_report").breaking
    settings = Settings(project_dir=project)
    lock_project(load_project(settings.deployments_dir, settings), settings, ["daily", "report"])
    contract = read_contract(project / "contracts" / "report.json")
    assert contract is not None
    assert contract.version == 2
    assert [v.version for v in contract.history] == [1]
    assert _check(project).ok


def test_not_null_must_name_an_output_column(project: Path) -> None:
    """A NOT NULL declaration of a column the output lacks is an error of the check."""
    _edit(project, "ingest_orders", "not_null: [day]", "not_null: [dayy]")
    result = _check(project).get("ingest_orders")
    assert result.error == "schema.not_null names dayy, which the output does not have"


def test_missing_input_contract_is_reported(tmp_path: Path) -> None:
    """With neither data nor an input contract, check says how to lock it."""
    root = write_project(tmp_path, {"deployments/ingest_orders.yaml": INGEST})
    result = _check(root).get("ingest_orders")
    assert result.breaking
    assert "contracts/ingest_orders.source.json" in (result.error or "")


def test_bad_schema_section_is_a_positioned_config_error(tmp_path: Path) -> None:
    """A wrong compatibility mode is reported at its line, like every config mistake."""
    text = INGEST.replace("schema: {not_null: [day]}", "schema: {compatibility: fwd}")
    root = write_project(tmp_path, {"deployments/ingest_orders.yaml": text})
    settings = Settings(project_dir=root)
    with pytest.raises(ConfigError) as caught:
        load_project(settings.deployments_dir, settings)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (8, "schema.compatibility")


def test_cli_check_exit_codes_and_formats(project: Path) -> None:
    """`schema check` exits 0 clean, 1 breaking (text, json, github), 2 for unknown names."""
    assert run_cli(project, "schema", "check").returncode == 0
    _edit(project, "ingest_orders", ", CAST(amount AS BIGINT) AS amount", "")
    text = run_cli(project, "schema", "check")
    assert text.returncode == 1
    assert "BREAKING  column dropped: amount" in text.stdout
    assert "affects downstream datasets: daily, report" in text.stdout
    machine = run_cli(project, "schema", "check", "--format", "json")
    assert machine.returncode == 1
    data = json.loads(machine.stdout)
    assert not data["ok"]
    (ingest,) = [p for p in data["pipelines"] if p["pipeline"] == "ingest_orders"]
    assert ingest["changes"][0]["column"] == "amount"
    assert ingest["changes"][0]["verdict"] == "breaking"
    github = run_cli(project, "schema", "check", "--format", "github")
    assert github.returncode == 1
    assert github.stdout.startswith(
        "::error file=deployments/ingest_orders.yaml,line=3,title=schema ingest_orders::"
        "column dropped: amount"
    )
    unknown = run_cli(project, "schema", "check", "nope")
    assert unknown.returncode == 2
    assert "no pipeline or dataset named 'nope'" in unknown.stderr


def test_demo_contracts_are_current() -> None:
    """The committed demo contracts match what the demo pipelines derive."""
    settings = Settings(project_dir=REPO)
    report = check_project(load_project(settings.deployments_dir, settings), settings)
    assert report.ok, report.text()
    assert {r.status for r in report.results} == {"unchanged"}


def test_cli_lock_without_data_or_input_contract(tmp_path: Path) -> None:
    """`schema lock` with nothing to read an input's schema from exits 1 and says what to do."""
    root = write_project(tmp_path, {"deployments/ingest_orders.yaml": INGEST})
    result = run_cli(root, "schema", "lock")
    assert result.returncode == 1
    assert "input 'source' has no data to lock its schema from" in result.stdout
    assert not (root / "contracts" / "orders.json").exists()


def test_cli_lock_then_check(tmp_path: Path) -> None:
    """`schema lock` writes every contract, and `schema check` then passes."""
    root = write_project(tmp_path, FILES)
    locked = run_cli(root, "schema", "lock")
    assert locked.returncode == 0, locked.stderr
    assert "locked contracts/orders.json" in locked.stdout
    assert "locked input contracts/ingest_orders.source.json" in locked.stdout
    assert run_cli(root, "schema", "check").returncode == 0


def test_python_transform_that_raises_is_reported(tmp_path: Path) -> None:
    """A Python transform whose signature does not fit its inputs is a breaking finding."""
    root = write_project(
        tmp_path,
        {
            "deployments/x.yaml": (
                "name: x\nsource: {path: a.csv}\n"
                "transform: {python: schema_raising_tf:go}\ndestination: {dataset: x}\n"
            ),
            "schema_raising_tf.py": "def go(flights):\n    return flights\n",
            "contracts/x.source.json": (
                '{"dataset": "x.source", "version": 1, "locked_at": "2026-01-01",'
                ' "columns": [{"name": "a", "dtype": {"type": "Int64"}}]}'
            ),
        },
    )
    settings = Settings(project_dir=root, allowed_modules=["schema_raising_tf"])
    result = check_project(load_project(settings.deployments_dir, settings), settings).get("x")
    assert result.breaking
    assert result.error == (
        "the transform raised TypeError: go() got an unexpected keyword argument 'source'"
    )
