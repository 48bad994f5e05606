"""`flowfactory worker` serves a work pool no other worker serves: a deployment run on it
completes, through the warm executor, and Ctrl-C stops the worker and everything it started."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from prefect.deployments import run_deployment
from tests.helpers import FLOWFACTORY, cli_env, partition_files
from tests.integration.conftest import project_settings
from tests.integration.test_data_aware import _deploy, _prefix, _wait_for_runs, _write

from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration


def test_worker_serves_its_pool_until_ctrl_c(tmp_path: Path, stack: LocalStack) -> None:
    """The run on the worker's pool completes; its warm executor and worker log under its state."""
    p = _prefix()
    pool = f"{p}-remote"
    root = _write(
        tmp_path / "project",
        {
            f"deployments/{p}_job.yaml": f"""\
name: {p}_job
source: {{path: landing/orders.csv}}
destination: {{dataset: {p}_orders, key: [id]}}
work_pool: {pool}
""",
            "data/landing/orders.csv": "id,amount\n1,2.5\n2,4.0\n",
        },
    )
    settings = project_settings(root, stack)
    _deploy(settings)
    state = tmp_path / "worker-state"
    env = cli_env(stack.api_url, FLOWFACTORY_STATE_DIR=str(state))
    worker = subprocess.Popen(
        [str(FLOWFACTORY), "worker", "--pool", pool],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_deployment(f"pipeline/{p}_job", timeout=0)
        (run,) = _wait_for_runs(f"pipeline/{p}_job", 1, timeout=180)
        assert run.state is not None
        assert run.state.name == "Completed", run.state
        assert partition_files(root / "data", f"{p}_orders")
        assert (state / "logs" / f"worker-{pool}.log").exists()
        assert (state / "logs" / "warm-executor.log").exists()
        worker.send_signal(signal.SIGINT)
        stdout, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, stdout + stderr
    assert f"worker on pool {pool}: runs from {stack.api_url}" in stdout
    assert stdout.rstrip().endswith("stopped")
    assert "Traceback" not in stderr
