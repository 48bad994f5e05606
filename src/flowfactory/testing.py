"""Testing tiers for pipeline authors: a pytest plugin with unit and integration fixtures.

Enable it in your ``conftest.py``::

    pytest_plugins = ["flowfactory.testing"]

- **unit** (no server, milliseconds): ``run_transform("flight_delays", flights=[{...}], ...)``
  runs the transform of ``deployments/flight_delays.yaml`` over a few hand-written rows. Each
  input's rows are completed from its locked contract: columns you leave out are null, values
  are cast to the contract's dtypes (so ``"2013-01-01 05:00"`` becomes a UTC datetime). The
  output is checked against the pipeline's own contract, as a real run would check it.
- **integration** (a real local Prefect server, seconds): ``prefect_pipeline.run(name, ...)``
  deploys a copy of the project to a ``prefect server start`` with a process worker, runs the
  pipeline's deployment and returns the final state and the dataset it wrote.

The static tier is ``flowfactory validate`` and ``flowfactory schema check``; the data-diff tier
is the canary. The README shows all four on a demo pipeline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import polars as pl
import pytest

from flowfactory.config import PipelineFile, find_pipeline, load_project
from flowfactory.data import DataRoot, Partition, apply_transform, read_dataset, resolve_transform
from flowfactory.deploy import deploy_project
from flowfactory.errors import PipelineRunError, SchemaIncompatibleError
from flowfactory.schema import check_output, locked_input_schemas
from flowfactory.settings import Settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State

    from flowfactory.stack import LocalStack

__all__ = [
    "PipelineRun",
    "PrefectPipelines",
    "Rows",
    "copy_project",
    "flowfactory_settings",
    "flowfactory_stack",
    "prefect_pipeline",
    "run_transform",
    "transform_rows",
]

Rows: TypeAlias = pl.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
# What a project copy for an end-to-end run needs; data and state stay behind.
_PROJECT_PARTS: Final = ("deployments", "contracts", "pyproject.toml", "prefect.yaml")


def _typed(rows: Rows, schema: pl.Schema | None) -> pl.DataFrame:
    """Hand-written rows as a frame of the input's contract: missing columns null, cast."""
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, infer_schema_length=None)
    if schema is None:
        return frame
    columns: list[pl.Expr] = []
    for name, dtype in schema.items():
        if name not in frame.columns:
            columns.append(pl.lit(None, dtype).alias(name))
        elif frame.schema[name] == pl.String and isinstance(dtype, pl.Datetime):
            columns.append(
                pl.col(name).str.to_datetime(time_unit=dtype.time_unit, time_zone=dtype.time_zone)
            )
        elif frame.schema[name] == pl.String and dtype == pl.Date:
            columns.append(pl.col(name).str.to_date())
        else:
            columns.append(pl.col(name).cast(dtype))
    extra = [c for c in frame.columns if c not in schema]
    return frame.select(*columns, *extra)


def transform_rows(
    pipeline: str,
    settings: Settings | None = None,
    *,
    check_contract: bool = True,
    **inputs: Rows,
) -> pl.DataFrame:
    """Run one pipeline's transform over hand-written rows, by input (table) name.

    Only the pipeline's own file is read (plus the contracts of its inputs, when locked). With
    ``check_contract`` the output must satisfy the pipeline's locked contract, dtypes and NOT
    NULL and key uniqueness included; a breaking difference raises SchemaIncompatibleError.
    """
    settings = settings or Settings()
    found = find_pipeline(pipeline, settings)
    tables = found.config.inputs
    unknown = sorted(set(inputs) - set(tables))
    missing = sorted(set(tables) - set(inputs))
    if unknown or missing:
        raise PipelineRunError(
            f"pipeline {pipeline!r} reads {', '.join(sorted(tables))}; "
            f"rows were given for {', '.join(sorted(inputs)) or 'none'}"
        )
    # An input without a locked contract takes the rows' own dtypes.
    schemas = locked_input_schemas(found, settings)
    frames = {table: _typed(rows, schemas.get(table)).lazy() for table, rows in inputs.items()}
    output = apply_transform(found, frames, resolve_transform(found, settings)).collect()
    if check_contract:
        _check(found, output, settings)
    return output


def _check(pipeline: PipelineFile, output: pl.DataFrame, settings: Settings) -> None:
    report = check_output(pipeline, output, settings)
    if report is not None and report.breaking:
        raise SchemaIncompatibleError(
            f"pipeline {pipeline.name!r}: the output breaks its contract: "
            f"{report.describe_breaking()}",
            report.columns,
        )


def copy_project(source: Path, target: Path) -> Path:
    """A copy of a project's files (pipelines, transforms, contracts) without its data."""
    settings = Settings(project_dir=source)
    parts = [*_PROJECT_PARTS, *{m.split(".", 1)[0] for m in settings.allowed_modules}]
    target.mkdir(parents=True, exist_ok=True)
    for part in parts:
        origin = source / part
        if origin.is_dir():
            shutil.copytree(
                origin, target / part, ignore=shutil.ignore_patterns("__pycache__", ".*")
            )
        elif origin.is_file():
            shutil.copy2(origin, target / part)
    return target


@dataclass(frozen=True)
class PipelineRun:
    """The outcome of an end-to-end run: the flow run, its final state, what was written."""

    flow_run: FlowRun
    state: State[Any]
    settings: Settings
    dataset: str

    @property
    def completed(self) -> bool:
        """True when the run ended Completed."""
        return self.state.is_completed()

    def output(self, partition: str | None = None) -> pl.DataFrame:
        """The dataset the pipeline writes (one partition of it, if given)."""
        root = DataRoot(self.settings.data_root_url)
        scope = Partition.parse(partition) if partition else None
        return read_dataset(root, self.dataset, scope).collect()


@dataclass
class PrefectPipelines:
    """Runs pipelines of a project as deployments on a real local Prefect server."""

    stack: LocalStack
    deployed: set[Path] = field(default_factory=set)

    def run(
        self,
        pipeline: str,
        project_dir: Path,
        *,
        partition: str | None = None,
        timeout: float = 300.0,
    ) -> PipelineRun:
        """Deploy the project (once), run the pipeline's deployment, wait for its end."""
        from prefect.deployments import run_deployment  # noqa: PLC0415 - unit tests load no Prefect

        settings = Settings(
            project_dir=project_dir,
            prefect_api_url=self.stack.api_url,
            project_name=project_dir.name.replace("_", "-") or "test",
        )
        with self.stack.client_environment():
            if project_dir not in self.deployed:
                project = load_project(settings.deployments_dir, settings)
                asyncio.run(deploy_project(project, settings, prune=False))
                self.deployed.add(project_dir)
            # Called from sync code, run_deployment runs to completion itself.
            flow_run: FlowRun = run_deployment(  # type: ignore[assignment]
                name=f"pipeline/{pipeline}",
                parameters={"name": pipeline, "partition": partition},
                timeout=timeout,
                poll_interval=0.5,
            )
        if flow_run.state is None:  # pragma: no cover - run_deployment waits for a state
            raise PipelineRunError(f"run of {pipeline} has no state after {timeout:.0f} s")
        found = find_pipeline(pipeline, settings)
        return PipelineRun(flow_run, flow_run.state, settings, found.config.destination.dataset)


# --------------------------------------------------------------------------------------------
# pytest fixtures


@pytest.fixture
def flowfactory_settings(request: pytest.FixtureRequest) -> Settings:
    """The project under test: FLOWFACTORY_PROJECT_DIR, else pytest's root folder."""
    folder = os.environ.get("FLOWFACTORY_PROJECT_DIR") or str(request.config.rootpath)
    return Settings(project_dir=Path(folder))


@pytest.fixture
def run_transform(flowfactory_settings: Settings) -> Callable[..., pl.DataFrame]:
    """``run_transform(name, **rows_by_input)``: a pipeline's transform over hand-written rows."""

    def run(pipeline: str, *, check_contract: bool = True, **inputs: Rows) -> pl.DataFrame:
        return transform_rows(
            pipeline, flowfactory_settings, check_contract=check_contract, **inputs
        )

    return run


@pytest.fixture(scope="session")
def flowfactory_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A real ``prefect server start`` (SQLite) and a process worker, for the whole session."""

    from flowfactory.stack import LocalStack  # noqa: PLC0415 - unit tests load no Prefect

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = tmp_path_factory.mktemp("flowfactory-stack")
    settings = Settings(
        project_dir=base,
        state_dir=base / "state",
        prefect_api_url=f"http://127.0.0.1:{port}/api",
        poll_seconds=0.5,
    )
    stack = LocalStack(settings)
    try:
        stack.start_server()
        stack.start_worker("flowfactory")
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def prefect_pipeline(flowfactory_stack: LocalStack) -> PrefectPipelines:
    """Run pipelines end to end as deployments on the session's local Prefect server."""
    return PrefectPipelines(flowfactory_stack)
