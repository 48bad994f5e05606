"""Unit tests of the `flowfactory` command line, run as a subprocess in a scratch project."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from tests.helpers import REPO, run_cli, run_in

from flowfactory.config import load_project, load_yaml, pipeline_paths
from flowfactory.settings import Settings

PROBLEM_LINE = re.compile(r"^deployments/[a-z_]+\.yaml:\d+:\d+: error: .+$")

CLEAN = {
    "a.yaml": "name: a\nsource: {path: landing/a.csv}\ndestination: {dataset: a}\n",
    "b.yaml": "name: b\nsource: {dataset: a}\ndestination: {dataset: b}\n",
}
BROKEN = {
    "bad_values.yaml": (
        'source: {path: x.csv}\ndestination: {dataset: Bad-Name}\nschedule: {cron: "not a cron"}\n'
    ),
    "empty.yaml": "",
    "listed.yaml": "- a\n- b\n",
    "no_destination.yaml": "source: {path: x.csv}\n",
}
BROKEN_LINES = [
    (
        "deployments/bad_values.yaml:2:24: error: destination.dataset: 'Bad-Name' is not a valid "
        "name: use lowercase letters, digits and _, starting with a letter, at most 63 characters"
    ),
    (
        "deployments/bad_values.yaml:3:18: error: schedule.cron: "
        "'not a cron' is not a valid cron expression"
    ),
    "deployments/empty.yaml:1:1: error: file is empty",
    "deployments/listed.yaml:1:1: error: a pipeline file must be a mapping of keys to values",
    "deployments/no_destination.yaml:1:1: error: destination: required key is missing",
]


def make_project(root: Path, files: dict[str, str]) -> Path:
    """A project at ``root`` whose deployments/ holds ``files``."""
    folder = root / "deployments"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def schema_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What `flowfactory schema-json` prints (run once for the module)."""
    result = run_cli(tmp_path_factory.mktemp("schema"), "schema-json")
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    """validate prints one positioned line per problem on stderr, a count, and exits 1."""
    result = run_cli(
        make_project(tmp_path, {**BROKEN, "syntax.yaml": "name: [unclosed\n"}), "validate"
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    *problems, count = result.stderr.splitlines()
    assert count == "6 problem(s) found"
    assert problems[:-1] == BROKEN_LINES
    assert problems[-1].startswith("deployments/syntax.yaml:2:1: error: invalid YAML: ")
    assert all(PROBLEM_LINE.match(line) for line in problems)


def test_validate_json(tmp_path: Path) -> None:
    """validate --format json prints the problems as JSON on stdout and exits 1."""
    result = run_cli(make_project(tmp_path, BROKEN), "validate", "--format", "json")
    assert result.returncode == 1
    assert result.stderr == ""
    report: dict[str, Any] = json.loads(result.stdout)
    assert (report["ok"], report["pipelines"]) == (False, [])
    assert [
        f"{p['path']}:{p['line']}:{p['column']}: error: "
        + (f"{p['field']}: " if p["field"] else "")
        + p["message"]
        for p in report["problems"]
    ] == BROKEN_LINES


@pytest.mark.parametrize(
    ("args", "stdout"),
    [
        ((), "2 pipeline(s) valid: a, b\n"),
        (("deployments/b.yaml", "deployments/a.yaml"), "2 pipeline(s) valid: b, a\n"),
        (
            ("--format", "json"),
            json.dumps({"ok": True, "pipelines": ["a", "b"], "problems": []}, indent=2) + "\n",
        ),
    ],
)
def test_validate_clean(tmp_path: Path, args: tuple[str, ...], stdout: str) -> None:
    """A clean folder (or list of files) validates with exit 0."""
    result = run_cli(make_project(tmp_path, CLEAN), "validate", *args)
    assert (result.returncode, result.stdout, result.stderr) == (0, stdout, "")


def test_render_check(tmp_path: Path) -> None:
    """render --check fails while prefect.yaml is missing or stale and passes after render."""
    project = make_project(tmp_path, CLEAN)
    stale = "prefect.yaml is stale: run `flowfactory render` and commit it\n"
    missing = run_cli(project, "render", "--check")
    assert (missing.returncode, missing.stderr) == (1, stale)
    assert not (project / "prefect.yaml").exists()

    written = run_cli(project, "render")
    assert (written.returncode, written.stdout) == (0, "wrote prefect.yaml\n")
    assert [
        d["name"] for d in yaml.safe_load((project / "prefect.yaml").read_text())["deployments"]
    ] == ["a", "b"]
    fresh = run_cli(project, "render", "--check")
    assert (fresh.returncode, fresh.stdout) == (0, "prefect.yaml is up to date\n")

    (project / "deployments" / "c.yaml").write_text(
        "name: c\nsource: {dataset: b}\ndestination: {dataset: c}\n"
    )
    outdated = run_cli(project, "render", "--check")
    assert (outdated.returncode, outdated.stderr) == (1, stale)
    assert "Traceback" not in outdated.stderr


def test_render_of_an_invalid_project(tmp_path: Path) -> None:
    """render refuses an invalid project with the validate messages and writes nothing."""
    project = make_project(tmp_path, {**CLEAN, **BROKEN})
    result = run_cli(project, "render")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [*BROKEN_LINES, "5 problem(s) found"]
    assert not (project / "prefect.yaml").exists()


def test_schema_json_is_a_json_schema(schema_output: str) -> None:
    """schema-json prints a valid JSON Schema of a pipeline file."""
    schema = json.loads(schema_output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "flowfactory pipeline file"
    assert {"source", "sources", "transform", "destination", "schedule"} <= set(
        schema["properties"]
    )
    assert schema["properties"]["sources"]


def test_committed_schema_is_current(schema_output: str) -> None:
    """deployments/pipeline.schema.json is exactly what schema-json prints."""
    assert (REPO / "deployments" / "pipeline.schema.json").read_text() == schema_output


@pytest.mark.parametrize("path", pipeline_paths(REPO / "deployments"), ids=lambda p: p.name)
def test_shipped_files_match_the_schema(schema_output: str, path: Path) -> None:
    """Each shipped pipeline file is valid against the schema editors use (YAML 1.2 keys)."""
    # flowfactory's loader, like YAML 1.2 editors, keeps `on:` a string; PyYAML makes it True.
    jsonschema.validate(load_yaml(path).data, json.loads(schema_output))


@pytest.mark.parametrize("partition", ["year", "year=2013/=1"])
def test_run_rejects_a_malformed_partition(tmp_path: Path, partition: str) -> None:
    """run --partition with malformed text is a usage error (exit 2), before any API call."""
    result = run_cli(make_project(tmp_path, CLEAN), "run", "a", "--partition", partition)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: partition {partition!r} is not of the form column=value[/column=value...]\n"
    )


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("v3", "error: unknown version 'v3': use v1 (the transform) or v2 (the candidate)\n"),
        ("v2", "error: pipeline 'a' has no canary candidate (v2)\n"),
    ],
)
def test_run_rejects_a_version_it_cannot_run(tmp_path: Path, version: str, message: str) -> None:
    """run --version names v1 or v2, and v2 needs a candidate: usage errors, before any API."""
    result = run_cli(make_project(tmp_path, CLEAN), "run", "a", "--version", version)
    assert result.returncode == 2
    assert result.stderr == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("emit", "nope"), "no pipeline reads or produces dataset 'nope'"),
        (
            ("emit", "a", "--partition", "year"),
            "partition 'year' is not of the form column=value[/column=value...]",
        ),
        (
            ("canary", "a", "--partition", "year"),
            "partition 'year' is not of the form column=value[/column=value...]",
        ),
        (
            ("promote", "a", "v3"),
            "unknown version 'v3': use v1 (the transform) or v2 (the candidate)",
        ),
        (("schema", "lock", "nope"), "no pipeline or dataset named 'nope'; the pipelines are a, b"),
    ],
    ids=["emit-dataset", "emit-partition", "canary-partition", "promote-version", "schema-name"],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """A verb given a name or value that does not exist says so in one line and exits 2."""
    result = run_cli(make_project(tmp_path, CLEAN), *args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"error: {message}\n")


@pytest.mark.parametrize("args", [("--help",), ("validate",)], ids=["help", "validate"])
def test_quick_verbs_load_neither_prefect_nor_polars(tmp_path: Path, args: tuple[str, ...]) -> None:
    """`--help` and `validate` stay quick: Prefect (~1.5 s) and polars load only in verbs that use
    them."""
    probe = (
        "import sys\n"
        "from flowfactory.cli import main\n"
        "sys.argv[0] = 'flowfactory'\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({'httpx', 'polars', 'prefect'} & set(sys.modules)), file=sys.stderr)\n"
    )
    result = run_in(make_project(tmp_path, CLEAN), sys.executable, "-c", probe, *args)
    assert (result.returncode, result.stderr) == (0, "[]\n")


def test_unknown_verb(tmp_path: Path) -> None:
    """An unknown verb is a usage error (exit 2) without a traceback."""
    result = run_cli(tmp_path, "frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_shipped_deployments_validate() -> None:
    """Every shipped pipeline file in the repository's deployments/ loads, as one project."""
    settings = Settings(project_dir=REPO, allowed_modules=["transforms"])
    project = load_project(settings.deployments_dir, settings)
    assert sorted(project.names) == sorted(p.stem for p in pipeline_paths(REPO / "deployments"))
    assert [p.path.name for p in project.pipelines] == [
        p.name for p in pipeline_paths(REPO / "deployments")
    ]
    assert {p.name for p in project.topological_order()[:2]} == {"ingest_flights", "ingest_weather"}
