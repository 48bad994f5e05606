"""flowfactory as a tool a data team adds to its own folder, from the built wheel.

The wheel goes into a fresh virtualenv with the pinned dependencies (pip's cache makes the
install quick); nothing of this repository is on that virtualenv's path. `flowfactory init`
scaffolds a project, which is validated, deployed to the virtualenv's own `prefect server
start`, run in process, and run again as a deployment through a process worker, which imports
the packaged flow by its module path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers import REPO, free_port

pytestmark = pytest.mark.integration

EXAMPLE = "monthly_revenue"


def _env(home: Path, api_url: str) -> dict[str, str]:
    """The environment of a user's shell: no settings or code of this repository."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLOWFACTORY_", "PREFECT_")) and k not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{argv}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel and the pinned dependencies."""
    base = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    wheels, venv = base / "wheels", base / "venv"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        base,
        env,
    )
    _run([sys.executable, "-m", "venv", str(venv)], base, env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "-r", str(REPO / "requirements.lock")], base, env, timeout=600)
    _run([*pip, "--no-deps", *map(str, wheels.glob("flowfactory-*.whl"))], base, env)
    return venv / "bin"


@pytest.fixture
def server(tmp_path: Path, venv_bin: Path) -> Iterator[dict[str, str]]:
    """The virtualenv's own `prefect server start` on a free port; yields the environment."""
    port = free_port()
    env = _env(tmp_path / "prefect-home", f"http://127.0.0.1:{port}/api")
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(venv_bin / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail(f"no server on port {port}: {(tmp_path / 'server.log').read_text()}")
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_init_validate_deploy_run_in_a_fresh_folder(
    tmp_path: Path, venv_bin: Path, server: dict[str, str]
) -> None:
    """From an empty folder to a completed run and its dataset, with only the wheel installed."""
    started = time.monotonic()
    project = tmp_path / "sales"
    project.mkdir()
    flowfactory = str(venv_bin / "flowfactory")
    assert "wrote prefect.yaml" in _run([flowfactory, "init"], project, server)
    assert not (project / "flows").exists()
    assert f"1 pipeline(s) valid: {EXAMPLE}" in _run([flowfactory, "validate"], project, server)
    _run([flowfactory, "render", "--check"], project, server)
    _run([flowfactory, "schema", "check"], project, server)
    assert "deployed" in _run([flowfactory, "deploy"], project, server)
    assert f"{EXAMPLE}: Completed" in _run([flowfactory, "run", EXAMPLE], project, server)
    output = project / "data" / EXAMPLE
    assert {p.relative_to(output).as_posix() for p in output.rglob("*.parquet")} == {
        "year=2024/month=1/part-0.parquet",
        "year=2024/month=2/part-0.parquet",
    }
    # Prefect's own deploy of the rendered prefect.yaml, then a run through a process worker.
    _run([str(venv_bin / "prefect"), "deploy", "--all", "--no-prompt"], project, server)
    (output / "year=2024").rename(tmp_path / "first-run")
    worker = subprocess.Popen(
        [str(venv_bin / "prefect"), "worker", "start", "--pool", "flowfactory"],
        cwd=project,
        env=server,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ran = _run(
            [
                str(venv_bin / "prefect"),
                "deployment",
                "run",
                f"pipeline/{EXAMPLE}",
                "--param",
                "partition=year=2024/month=1",
                "--watch",
            ],
            project,
            server,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert "Completed" in ran, ran
    assert (output / "year=2024/month=1/part-0.parquet").is_file()
    print(f"init to worker run: {time.monotonic() - started:.1f} s")
