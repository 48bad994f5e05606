"""`flowfactory init`'s scaffolding: what it writes, and that it never overwrites."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from tests.helpers import run_cli

from flowfactory.config import load_project, pipeline_json_schema
from flowfactory.deploy import render_prefect_yaml
from flowfactory.deploy.scaffold import EXAMPLE_PIPELINE, project_files, project_name_of, scaffold
from flowfactory.errors import ExistingFilesError
from flowfactory.settings import Settings


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_scaffold_writes_a_project_that_loads_and_renders(tmp_path: Path) -> None:
    """Every file is written, the example loads, prefect.yaml and the schema are current."""
    target = tmp_path / "sales-team"
    report = scaffold(target)
    assert set(report.written) == _tree(target)
    assert {
        ".github/workflows/pipelines.yml",
        ".gitignore",
        "deployments/_defaults.yaml",
        f"deployments/{EXAMPLE_PIPELINE}.yaml",
        "deployments/pipeline.schema.json",
        "data/landing/orders/2024-01.csv",
        "transforms/orders.py",
        f"contracts/{EXAMPLE_PIPELINE}.json",
        "prefect.yaml",
        "pyproject.toml",
    } <= _tree(target)
    assert 'project_name = "sales-team"' in (target / "pyproject.toml").read_text()
    settings = Settings(project_dir=target, project_name="sales-team")
    project = load_project(settings.deployments_dir, settings)
    assert project.names == [EXAMPLE_PIPELINE]
    rendered = render_prefect_yaml(project, project_name="sales-team")
    assert (target / "prefect.yaml").read_text() == rendered
    assert 'entrypoint: "flowfactory.orchestration.flows.pipeline"' in rendered
    schema = (target / "deployments/pipeline.schema.json").read_text()
    assert schema == pipeline_json_schema()


def test_scaffold_refuses_and_lists_every_existing_file(tmp_path: Path) -> None:
    """Existing files stop it before anything is written, and each one is named."""
    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments/_defaults.yaml").write_text("owner: me\n")
    (tmp_path / "prefect.yaml").write_text("mine\n")
    before = _tree(tmp_path)
    with pytest.raises(ExistingFilesError) as caught:
        scaffold(tmp_path)
    assert caught.value.paths == ("deployments/_defaults.yaml", "prefect.yaml")
    assert _tree(tmp_path) == before
    assert (tmp_path / "prefect.yaml").read_text() == "mine\n"


def test_scaffold_keeps_a_pyproject_and_says_what_to_add(tmp_path: Path) -> None:
    """A pyproject.toml without [tool.flowfactory] is kept; the report holds the section."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    report = scaffold(tmp_path, project_name="x")
    assert (tmp_path / "pyproject.toml").read_text() == '[project]\nname = "x"\n'
    assert report.kept["pyproject.toml"].startswith("[tool.flowfactory]\n")
    assert "pyproject.toml" not in report.written


def test_scaffold_leaves_nothing_behind_when_a_write_fails(tmp_path: Path) -> None:
    """A failure mid-way removes what was written: no half project."""
    target = tmp_path / "new"
    files = project_files("new")
    calls = 0
    real_open = Path.open

    def failing_open(self: Path, *args: object, **kwargs: object) -> object:
        nonlocal calls
        if self.is_relative_to(target):
            calls += 1
            if calls == len(files) // 2:
                raise OSError("disk full")
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    with mock.patch.object(Path, "open", failing_open), pytest.raises(OSError, match="disk full"):
        scaffold(target)
    assert not target.exists()


def test_project_name_of_keeps_allowed_characters(tmp_path: Path) -> None:
    assert project_name_of(tmp_path / "My Team's pipelines") == "My-Team-s-pipelines"
    assert project_name_of(tmp_path / "__") == "pipelines"


def test_init_verb_lists_existing_files_and_exits_1(tmp_path: Path) -> None:
    """The command line: a second init names the files and writes nothing."""
    first = run_cli(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    assert "flowfactory run monthly_revenue" in first.stdout
    second = run_cli(tmp_path, "init")
    assert second.returncode == 1
    assert "nothing was written" in second.stderr
    assert "  prefect.yaml" in second.stderr.splitlines()


def test_verbs_outside_a_project_say_to_run_init(tmp_path: Path) -> None:
    """No deployments/ folder: one line that names `flowfactory init`, no traceback."""
    for verb in (["validate"], ["run", "x"], ["deploy"]):
        result = run_cli(tmp_path, *verb)
        assert result.returncode == 1, verb
        assert result.stderr.count("\n") == 1, result.stderr
        assert "flowfactory init" in result.stderr
