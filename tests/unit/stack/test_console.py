"""Where the `flowfactory` command looks for a warm executor to hand `run` to."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowfactory.console import warm_socket


def test_the_socket_named_in_the_environment_wins() -> None:
    env = {"FLOWFACTORY_WARM_SOCKET": "/run/ff.sock", "FLOWFACTORY_STATE_DIR": "/var/ff"}
    assert warm_socket(env) == "/run/ff.sock"


def test_else_the_state_folder_of_the_project(tmp_path: Path) -> None:
    env = {"FLOWFACTORY_PROJECT_DIR": str(tmp_path)}
    assert warm_socket(env) == str(tmp_path / ".flowfactory" / "warm.sock")
    env["FLOWFACTORY_STATE_DIR"] = "state"
    assert warm_socket(env) == str(tmp_path / "state" / "warm.sock")
    env["FLOWFACTORY_STATE_DIR"] = "/srv/ff"
    assert warm_socket(env) == "/srv/ff/warm.sock"


@pytest.mark.parametrize("off", ["false", "0", "no", "OFF"])
def test_turned_off(off: str) -> None:
    assert warm_socket({"FLOWFACTORY_WARM_START": off, "FLOWFACTORY_WARM_SOCKET": "/x"}) is None
