"""The canary library without a server: config errors, versions, live state, the comparison."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from tests.helpers import REPO

from flowfactory.canary import (
    Verdict,
    check_versions,
    compare_outputs,
    live_pipeline,
    live_version,
    live_versions,
    prepare_sample,
    prune_runs,
    run_version,
    set_live_version,
    version_pipeline,
)
from flowfactory.config import PythonTransform, SqlTransform, find_pipeline, load_project
from flowfactory.data import (
    DataRoot,
    Partition,
    apply_transform,
    read_source,
    resolve_transform,
    write_dataset,
)
from flowfactory.deploy import project_specs, render_prefect_yaml
from flowfactory.errors import CanaryError, ConfigError
from flowfactory.settings import Settings
from flowfactory.stack import LandingZone

PIPELINE = """\
name: totals
source: {path: landing/sales.csv}
transform:
  sql: SELECT id, country, amount * 2 AS doubled FROM source
destination: {dataset: totals, key: [id]}
canary:
  candidate: {python: transforms.sales:doubled}
  sample: {key: [id], fraction: 0.5}
  tolerance: {abs: 1.0e-9, columns: {doubled: {rel: 1.0e-6}}}
"""
TRANSFORMS = """\
import polars as pl


def doubled(source: pl.LazyFrame) -> pl.LazyFrame:
    return source.select("id", "country", (pl.col("amount") * FACTOR).alias("doubled"))


FACTOR = 2
"""


@pytest.fixture
def project(tmp_path: Path, project_dir: Path) -> Settings:
    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments/totals.yaml").write_text(PIPELINE)
    (tmp_path / "data/landing").mkdir(parents=True)
    rows = "\n".join(f"{i},{['AU', 'US', 'GB'][i % 3]},{i * 0.5}" for i in range(200))
    (tmp_path / "data/landing/sales.csv").write_text("id,country,amount\n" + rows + "\n")
    # A package name of its own: Python caches imports by name across tests.
    package = "tx_" + re.sub(r"\W", "_", tmp_path.name)
    text = PIPELINE.replace("transforms.sales:", f"{package}.sales:")
    (tmp_path / "deployments/totals.yaml").write_text(text)
    return Settings(project_dir=tmp_path, allowed_modules=[package])


def _transforms(settings: Settings, factor: str) -> None:
    """The candidate with this factor, in a module named after it (imports are cached)."""
    package = settings.allowed_modules[0]
    module = f"sales_{factor.replace('.', '_')}"
    folder = settings.project_dir / package
    folder.mkdir(exist_ok=True)
    (folder / "__init__.py").write_text("")
    (folder / f"{module}.py").write_text(TRANSFORMS.replace("FACTOR = 2", f"FACTOR = {factor}"))
    path = settings.deployments_dir / "totals.yaml"
    path.write_text(re.sub(r"\.sales\w*:", f".{module}:", path.read_text()))


def _compare(settings: Settings, area: str = "_canary/totals/runs/test") -> Verdict:
    pipeline = find_pipeline("totals", settings)
    root = DataRoot(settings.data_root_url)
    rows = prepare_sample(pipeline, root, None, area)
    assert 50 < rows["source"] < 150
    for version in ("v1", "v2"):
        run_version(pipeline, version, root, area, settings)
    return compare_outputs(pipeline, root, area).verdict


def test_equivalent_candidate_passes_and_only_the_canary_area_is_written(
    project: Settings,
) -> None:
    _transforms(project, "2")
    assert _compare(project) is Verdict.passed
    data = project.project_dir / "data"
    assert sorted(p.name for p in data.iterdir()) == ["_canary", "landing"]


def test_float_change_beyond_tolerance_fails_on_that_column(project: Settings) -> None:
    _transforms(project, "2.001")
    pipeline = find_pipeline("totals", project)
    root = DataRoot(project.data_root_url)
    area = "_canary/totals/runs/x"
    sampled = prepare_sample(pipeline, root, None, area)["source"]
    for version in ("v1", "v2"):
        run_version(pipeline, version, root, area, project)
    report = compare_outputs(pipeline, root, area)
    assert report.verdict is Verdict.failed
    (column,) = report.differing_columns
    # id 0 doubles to 0 either way: every other sampled row differs.
    zero_sampled = report.rows_in_both - column.unequal
    assert (column.column, report.rows_in_both) == ("doubled", sampled)
    assert zero_sampled in (0, 1)


def test_the_sample_is_the_same_on_every_run(project: Settings) -> None:
    _transforms(project, "2")
    pipeline = find_pipeline("totals", project)
    root = DataRoot(project.data_root_url)
    prepare_sample(pipeline, root, None, "_canary/totals/runs/a")
    prepare_sample(pipeline, root, None, "_canary/totals/runs/b")
    base = project.project_dir / "data/_canary/totals/runs"
    first = pl.read_parquet(base / "a/input/source.parquet")
    assert first.equals(pl.read_parquet(base / "b/input/source.parquet"))


def test_versions_and_the_live_state(project: Settings) -> None:
    _transforms(project, "2")
    pipeline = find_pipeline("totals", project)
    root = DataRoot(project.data_root_url)
    assert isinstance(version_pipeline(pipeline, "v1").config.transform, SqlTransform)
    assert isinstance(version_pipeline(pipeline, "v2").config.transform, PythonTransform)
    assert live_version(pipeline, root).version == "v1"
    assert live_pipeline(pipeline, root) is pipeline

    before, after = set_live_version(pipeline, root, "v2", by="test")
    assert (before.version, after.version) == ("v1", "v2")
    assert isinstance(live_pipeline(pipeline, root).config.transform, PythonTransform)
    project_versions = live_versions(load_project(project.deployments_dir, project), root)
    assert project_versions["totals"].version == "v2"

    before, after = set_live_version(pipeline, root, "v1", by="test")
    assert (before.version, after.version) == ("v2", "v1")
    with pytest.raises(CanaryError, match="unknown version"):
        set_live_version(pipeline, root, "v3", by="test")


def test_a_promotion_holds_for_the_promoted_candidate_only(project: Settings) -> None:
    _transforms(project, "2")
    pipeline = find_pipeline("totals", project)
    root = DataRoot(project.data_root_url)
    set_live_version(pipeline, root, "v2", by="test")
    _transforms(project, "3")  # the candidate in the file changes after the promotion
    changed = find_pipeline("totals", project)
    live = live_version(changed, root)
    assert live.version == "v1"
    assert "no longer" in live.note


def test_a_canary_without_a_key_is_a_positioned_error(project: Settings) -> None:
    path = project.deployments_dir / "totals.yaml"
    path.write_text(path.read_text().replace(", key: [id]", ""))
    pipeline = find_pipeline("totals", project)
    with pytest.raises(ConfigError) as caught:
        prepare_sample(pipeline, DataRoot(project.data_root_url), None, "_canary/totals/x")
    assert caught.value.problems[0].format().startswith("deployments/totals.yaml:6:1: error:")


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("dubled", "no column 'dubled' in the output"),  # unknown column
        ("country", "tolerances apply to float columns only"),  # a text column
    ],
)
def test_a_tolerance_on_a_column_it_cannot_apply_to_is_refused(
    project: Settings, column: str, message: str
) -> None:
    _transforms(project, "2")
    path = project.deployments_dir / "totals.yaml"
    path.write_text(path.read_text().replace("columns: {doubled:", f"columns: {{{column}:"))
    pipeline = find_pipeline("totals", project)
    root = DataRoot(project.data_root_url)
    area = "_canary/totals/runs/t"
    prepare_sample(pipeline, root, None, area)
    for version in ("v1", "v2"):
        run_version(pipeline, version, root, area, project)
    with pytest.raises(ConfigError, match=message):
        compare_outputs(pipeline, root, area)


@pytest.mark.parametrize(
    ("canary", "where", "message"),
    [
        ("  sample: {key: [id]}\n", "canary.sample.fraction", "needs `fraction:`"),
        ("  sample: {key: [], fraction: 0.1}\n", "canary.sample.key", "at least 1 item"),
        ("  sample: {key: [id], fraction: 1.5}\n", "canary.sample.fraction", "less than or equal"),
        (
            "  sample: {key: [id], stratify: country}\n",
            "canary.sample.per_stratum",
            "needs `per_stratum:`",
        ),
        ("  sample: {key: [id], fraction: 0.1}\n  promote: later\n", "canary.promote", "auto"),
        (
            "  sample: {key: [id], fraction: 0.1}\n  tolerance: {abs: -1}\n",
            "canary.tolerance.abs",
            "greater than or equal",
        ),
    ],
)
def test_config_mistakes_are_positioned(
    project: Settings, canary: str, where: str, message: str
) -> None:
    package = project.allowed_modules[0]
    text = PIPELINE.split("canary:", maxsplit=1)[0] + (
        f"canary:\n  candidate: {{python: {package}.sales:doubled}}\n" + canary
    )
    (project.deployments_dir / "totals.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_project(project.deployments_dir, project)
    (problem,) = caught.value.problems
    assert problem.field == where
    assert message in problem.message
    assert problem.path == "deployments/totals.yaml"
    assert problem.line > 5


def test_a_canary_deployment_per_pipeline_with_a_candidate(project: Settings) -> None:
    specs = {s.name: s for s in project_specs(load_project(project.deployments_dir, project))}
    canary = specs["totals-canary"]
    assert canary.entrypoint == "flowfactory.orchestration.flows.canary"
    assert canary.parameters == {"name": "totals"}
    assert "canary" in canary.tags
    assert "totals-canary" in render_prefect_yaml(load_project(project.deployments_dir, project))


def test_the_demo_candidate_is_equivalent_on_real_data(tmp_path: Path) -> None:
    """flight_delays' Python candidate matches its SQL on a sample of January 2013."""
    settings = Settings(project_dir=tmp_path, allowed_modules=["transforms"])
    shutil.copytree(REPO / "deployments", tmp_path / "deployments")
    shutil.copytree(REPO / "transforms", tmp_path / "transforms")
    zone = LandingZone(settings)
    zone.prepare()
    zone.land(1)
    root = DataRoot(settings.data_root_url)
    month = Partition.parse("year=2013/month=1")
    for name in ("ingest_flights", "ingest_weather"):
        producer = find_pipeline(name, settings)
        frames = {t: read_source(s, root, month) for t, s in producer.config.inputs.items()}
        output = apply_transform(producer, frames, resolve_transform(producer, settings))
        write_dataset(root, output.collect(), producer.config.destination, month)
    pipeline = find_pipeline("flight_delays", settings)
    area = "_canary/flight_delays/runs/demo"
    rows = prepare_sample(pipeline, root, month, area)
    assert rows["flights"] > 1_000
    for version in ("v1", "v2"):
        run_version(pipeline, version, root, area, settings)
    report = compare_outputs(pipeline, root, area)
    assert report.verdict is Verdict.passed, report.markdown()
    assert report.rows_in_both > 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  sampel: {key: [id], fraction: 0.1}\n", "unknown key 'sampel'; did you mean 'sample'?"),
        (
            "  sample: {key: [id], fraction: 0.1}\n  sample_rows: 5\n  keys: [id]\n",
            "unknown key 'keys'; did you mean 'key'?",
        ),
        (
            "  sample: {key: [id], fraction: 0.1, promote: auto}\n",
            "unknown key 'promote'; it belongs under `canary:`",
        ),
    ],
)
def test_misplaced_canary_keys_get_hints(project: Settings, text: str, expected: str) -> None:
    package = project.allowed_modules[0]
    pipeline = PIPELINE.split("canary:", maxsplit=1)[0] + (
        f"canary:\n  candidate: {{python: {package}.sales:doubled}}\n" + text
    )
    (project.deployments_dir / "totals.yaml").write_text(pipeline)
    with pytest.raises(ConfigError) as caught:
        load_project(project.deployments_dir, project)
    messages = [p.message for p in caught.value.problems]
    assert any(expected in m for m in messages), messages


def test_a_broken_candidate_is_reported_at_the_candidate(project: Settings) -> None:
    path = project.deployments_dir / "totals.yaml"
    package = project.allowed_modules[0]
    path.write_text(
        path.read_text().replace(
            f"candidate: {{python: {package}.sales:doubled}}",
            "candidate: {sql: 'SELECT id, no_such_column FROM source'}",
        )
    )
    pipeline = find_pipeline("totals", project)
    with pytest.raises(ConfigError) as caught:
        check_versions(pipeline, DataRoot(project.data_root_url), None, project)
    (problem,) = caught.value.problems
    assert problem.field == "canary.candidate.sql"
    assert (problem.line, "no_such_column" in problem.message) == (7, True)


def test_old_canary_runs_are_pruned(project: Settings) -> None:
    root = DataRoot(project.data_root_url)
    for day in range(1, 6):
        root.put_atomic(f"_canary/totals/runs/202601{day:02d}T000000Z-run{day}/report.md", b"x")
    root.put_atomic("_canary/totals/runs/not-a-run/keep.txt", b"x")
    gone = prune_runs("totals", root, keep=2)
    assert [g.rsplit("/", 1)[-1] for g in gone] == [
        f"202601{d:02d}T000000Z-run{d}" for d in (1, 2, 3)
    ]
    left = sorted(p.name for p in (project.project_dir / "data/_canary/totals/runs").iterdir())
    assert left == ["20260104T000000Z-run4", "20260105T000000Z-run5", "not-a-run"]


def test_output_mistakes_surface_before_a_run(project: Settings) -> None:
    _transforms(project, "2")
    path = project.deployments_dir / "totals.yaml"
    path.write_text(path.read_text().replace("columns: {doubled:", "columns: {dubled:"))
    pipeline = find_pipeline("totals", project)
    with pytest.raises(ConfigError) as caught:
        check_versions(pipeline, DataRoot(project.data_root_url), None, project)
    (problem,) = caught.value.problems
    assert problem.field == "canary.tolerance.columns.dubled"
    assert "no column 'dubled' in the output" in problem.message
    assert not (project.project_dir / "data/_canary").exists()
