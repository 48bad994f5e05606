"""`flowfactory partitions`: the view as text and JSON, and an unknown dataset as a usage error."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli, write_project

PIPELINE = {
    "deployments/orders.yaml": (
        "name: orders\nsource: {path: landing/o.csv}\n"
        "destination: {dataset: orders, partition_by: [month], key: [id]}\n"
    ),
}


def test_an_unknown_dataset_exits_2_with_a_suggestion(tmp_path: Path) -> None:
    project = write_project(tmp_path, PIPELINE)
    result = run_cli(project, "partitions", "ordres")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: no pipeline reads or produces dataset 'ordres'; did you mean 'orders'?"
    )


def test_no_partitions_yet_in_text_and_json(tmp_path: Path) -> None:
    project = write_project(tmp_path, PIPELINE)
    assert run_cli(project, "partitions").stdout == "no partitions written yet\n"
    result = run_cli(project, "partitions", "orders", "--format", "json")
    assert (result.returncode, json.loads(result.stdout)) == (0, [])
