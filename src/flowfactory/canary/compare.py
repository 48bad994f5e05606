"""Running both versions of a pipeline on one sample and diffing their outputs.

Each step reads and writes under one canary run's folder (``area``) in the data root, so the
versions can run in separate processes (the canary flow runs them as parallel subflows).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import polars as pl

from flowfactory.canary.diff import DiffReport, Tolerance, diff_frames
from flowfactory.canary.sampling import SampleSpec, sample_inputs
from flowfactory.canary.versions import VERSIONS, Version, version_pipeline
from flowfactory.config import (
    CanaryConfig,
    CanarySample,
    ColumnTolerance,
    PipelineFile,
    PythonTransform,
)
from flowfactory.data import (
    DataRoot,
    HttpReader,
    Partition,
    apply_transform,
    check_plan,
    read_source,
    resolve_transform,
)
from flowfactory.errors import CanaryError, ConfigError, Problem, SamplingError
from flowfactory.settings import Settings

__all__ = [
    "canary_of",
    "check_versions",
    "compare_outputs",
    "prepare_sample",
    "run_version",
    "sample_spec",
    "tolerance_of",
]


def sample_spec(sample: CanarySample) -> SampleSpec:
    """The sampling library's view of a ``canary.sample`` section."""
    return SampleSpec(
        keys=tuple(sample.key),
        fraction=sample.fraction,
        stratify=sample.stratify,
        per_stratum=sample.per_stratum,
        salt=sample.salt,
    )


def tolerance_of(section: ColumnTolerance) -> Tolerance:
    """The diff library's view of a tolerance section."""
    return Tolerance(abs=section.abs, rel=section.rel)


def canary_of(pipeline: PipelineFile) -> tuple[CanaryConfig, list[str]]:
    """The pipeline's canary section and the key its outputs are matched on."""
    canary = pipeline.config.canary
    if canary is None:
        raise CanaryError(
            f"pipeline {pipeline.name!r} has no `canary:` section; add a candidate to run one"
        )
    key = canary.match_on or pipeline.config.destination.key
    if not key:
        raise ConfigError(
            [
                pipeline.problem(
                    ("canary",),
                    "a canary matches v1 and v2 rows on a key: "
                    "set destination.key or canary.match_on",
                    key=True,
                )
            ]
        )
    return canary, key


def _write_parquet(root: DataRoot, relative: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    root.put_atomic(relative, buffer.getvalue())


def _read_parquet(root: DataRoot, relative: str) -> pl.DataFrame:
    data = root.get(relative)
    if data is None:
        raise CanaryError(f"{relative} is missing under {root.url}")
    return pl.read_parquet(data)


def prepare_sample(
    pipeline: PipelineFile,
    root: DataRoot,
    scope: Partition | None,
    area: str,
    *,
    read_http: HttpReader | None = None,
) -> dict[str, int]:
    """Sample the inputs and write them to the canary area; return rows per sampled table.

    Inputs without the sample key columns (reference tables) are copied whole and not counted.
    """
    canary, _ = canary_of(pipeline)
    frames = {
        table: read_source(source, root, scope, read_http=read_http)
        for table, source in pipeline.config.inputs.items()
    }
    try:
        sampled, keyed = sample_inputs(frames, sample_spec(canary.sample))
    except SamplingError as exc:
        raise ConfigError([pipeline.problem(("canary", "sample"), str(exc))]) from exc
    rows: dict[str, int] = {}
    for table, frame in sampled.items():
        collected = frame.collect()
        if table in keyed:
            rows[table] = collected.height
        _write_parquet(root, f"{area}/input/{table}.parquet", collected)
    return rows


def _at_candidate(pipeline: PipelineFile, error: ConfigError) -> ConfigError:
    """A transform error of v2, positioned at the candidate instead of at `transform:`."""
    canary = pipeline.config.canary
    kind = "python" if canary and isinstance(canary.candidate, PythonTransform) else "sql"
    return ConfigError(
        [
            pipeline.problem(("canary", "candidate", kind), p.message)
            if p.field.startswith("transform")
            else p
            for p in error.problems
        ]
    )


def check_versions(
    pipeline: PipelineFile, root: DataRoot, scope: Partition | None, settings: Settings
) -> None:
    """Resolve both versions' plans on the inputs' schemas: mistakes surface before a run."""
    schemas: list[pl.Schema] = []
    for version in VERSIONS:
        versioned = version_pipeline(pipeline, version)
        try:
            schemas.append(
                check_plan(versioned, root, scope, resolve_transform(versioned, settings))
            )
        except ConfigError as exc:
            raise (_at_candidate(pipeline, exc) if version == "v2" else exc) from None
    problems = _output_problems(pipeline, *schemas)
    if problems:
        raise ConfigError(problems)


def run_version(
    pipeline: PipelineFile, version: Version, root: DataRoot, area: str, settings: Settings
) -> int:
    """Run one version's transform on the sampled inputs; write its output; return its rows."""
    versioned = version_pipeline(pipeline, version)
    frames = {
        table: _read_parquet(root, f"{area}/input/{table}.parquet").lazy()
        for table in pipeline.config.inputs
    }
    try:
        function = resolve_transform(versioned, settings)
        output = apply_transform(versioned, frames, function).collect()
    except ConfigError as exc:
        raise (_at_candidate(pipeline, exc) if version == "v2" else exc) from None
    _write_parquet(root, f"{area}/{version}/output.parquet", output)
    return output.height


def _output_problems(
    pipeline: PipelineFile, v1: Mapping[str, pl.DataType], v2: Mapping[str, pl.DataType]
) -> list[Problem]:
    """Tolerances and keys that name columns the outputs lack, or tolerances on exact types."""
    canary, key = canary_of(pipeline)
    problems = [
        pipeline.problem(
            ("canary", "tolerance", "columns", column),
            f"no column {column!r} in the output (it has {', '.join(v1)})",
            key=True,
        )
        for column in canary.tolerance.columns
        if column not in v1 and column not in v2
    ]
    problems += [
        pipeline.problem(
            ("canary", "tolerance", "columns", column),
            f"column {column!r} is {v1[column]}: tolerances apply to float columns only "
            "(integers, text and dates compare exactly)",
            key=True,
        )
        for column in canary.tolerance.columns
        if column in v1 and not v1[column].is_float()
    ]
    missing_key = [k for k in key if k not in v1 and k not in v2]
    if missing_key:
        problems.append(
            pipeline.problem(
                ("canary", "match_on") if canary.match_on else ("destination", "key"),
                f"key column(s) {', '.join(missing_key)} not in the output",
            )
        )
    return problems


def compare_outputs(pipeline: PipelineFile, root: DataRoot, area: str) -> DiffReport:
    """Diff v2's output against v1's with the pipeline's key and tolerances."""
    canary, key = canary_of(pipeline)
    v1 = _read_parquet(root, f"{area}/v1/output.parquet")
    v2 = _read_parquet(root, f"{area}/v2/output.parquet")
    tolerance = canary.tolerance
    problems = _output_problems(pipeline, v1.schema, v2.schema)
    if problems:
        raise ConfigError(problems)
    return diff_frames(
        v1,
        v2,
        key,
        tolerance=tolerance_of(tolerance),
        column_tolerances={c: tolerance_of(t) for c, t in tolerance.columns.items()},
        sample_cap=canary.sample_rows,
    )
