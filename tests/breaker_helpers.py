"""What the breaker tests of both tiers share: a fake clock, deterministic settings, and a
one-pipeline project with the ``flowfactory`` command run against it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flowfactory.config import CircuitBreakerConfig
from tests.helpers import write_project

FLOWFACTORY = Path(sys.executable).with_name("flowfactory")
RESET = 30.0  # seconds open before a probe; tests move the fake clock past it


class FakeClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


def wait_open_time(clock: FakeClock, seconds: float = RESET) -> None:
    """Let an open period of ``seconds`` run out."""
    clock.advance(seconds + 0.1)


def breaker_config(**changes: object) -> CircuitBreakerConfig:
    """Deterministic breaker settings: no jitter, no backoff, threshold 3."""
    base: dict[str, object] = {
        "failure_threshold": 3,
        "reset_after": RESET,
        "jitter": 0.0,
        "backoff": 1.0,
    }
    return CircuitBreakerConfig.model_validate({**base, **changes})


def breaker_project(root: Path) -> Path:
    """A project whose one pipeline reads ``s3://bucket`` (the dependency ``s3.bucket``)."""
    pipeline = "name: a\nsource: {path: 's3://bucket/x.csv'}\ndestination: {dataset: a}\n"
    return write_project(root, {"deployments/a.yaml": pipeline})


def run_flowfactory(
    root: Path, *args: str, redis_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``flowfactory ARGS`` in ``root``, with none of this environment's FLOWFACTORY_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFACTORY_")}
    env["FLOWFACTORY_PROJECT_DIR"] = str(root)
    if redis_url:
        env["FLOWFACTORY_BREAKER_REDIS_URL"] = redis_url
    return subprocess.run(
        [str(FLOWFACTORY), *args], capture_output=True, text=True, env=env, cwd=root, check=False
    )
