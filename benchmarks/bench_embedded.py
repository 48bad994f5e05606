"""The embedded SQLite stack under use: ``flowfactory up`` replaying while a user deploys and runs.

In a temporary copy of the demo project, ``flowfactory up --months 1-N`` starts the local stack
(``prefect server start`` on SQLite, deployments, worker) and replays N months. Once the second
month has landed, while the replay goes on, it calls ``flowfactory deploy`` and then three
``flowfactory run NAME --partition year=2013/month=1`` from other processes, as a user in a
second terminal would. It reports:

- the "database is locked" errors in the server's log (tracebacks and lines);
- each manual run's wall time against its own work (the seconds the run logs for its body);
- the deploy's wall time;
- whether the replay's summary was right: the runs it reports as failed or stalled against the
  final states the API holds once nothing is in progress any more.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

import httpx

from bench_run import _free_port
from flowfactory.config import load_project
from flowfactory.data import Partition
from flowfactory.settings import Settings
from flowfactory.stack.demo import YEAR, expected_runs

__all__ = ["LOCK_TRACEBACK", "count_locks", "run"]

REPO: Final = Path(__file__).resolve().parent.parent
FLOWFACTORY: Final = str(Path(sys.executable).with_name("flowfactory"))
MANUAL_RUNS: Final = ("ingest_weather", "carrier_stats", "flight_delays")
MANUAL_PARTITION: Final = "year=2013/month=1"
# The last line of each traceback of a failed statement; one per error.
LOCK_TRACEBACK: Final = (
    "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked"
)
_OWN_WORK: Final = re.compile(r"partition\(s\) written in ([0-9.]+) s")
_SUMMARY_PROBLEM: Final = re.compile(r"^(FAILED|STALLED): (\w+) (\S+):")


def count_locks(log: str) -> dict[str, int]:
    """'database is locked' in a server log: tracebacks, and every line that mentions it."""
    return {
        "tracebacks": sum(line.startswith(LOCK_TRACEBACK) for line in log.splitlines()),
        "lines": sum("database is locked" in line for line in log.splitlines()),
    }


def _project(root: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("transforms", "deployments", "contracts"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    (root / "pyproject.toml").write_text('[tool.flowfactory]\nallowed_modules = ["transforms"]\n')


def _env(root: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FLOWFACTORY_"))}
    # The clients' own Prefect home, so that nothing is written outside the temporary folder.
    # Prefect's server leaves SQLite lock errors out of its log unless asked to log them.
    return {
        **env,
        "FLOWFACTORY_PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_HOME": str(root / "cli-home"),
        "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",
    }


def _lines(stream: Any, into: queue.Queue[tuple[float, str]]) -> None:
    for line in iter(stream.readline, ""):
        into.put((time.monotonic(), line.rstrip("\n")))
    into.put((time.monotonic(), ""))


def _wait_line(
    lines: queue.Queue[tuple[float, str]], seen: list[str], prefix: str, timeout: float
) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            at, line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith(prefix):
            return at
    tail = "\n".join(seen[-30:])
    raise RuntimeError(f"`flowfactory up` printed no {prefix!r} within {timeout:.0f} s:\n{tail}")


def _cli(args: list[str], root: Path, env: dict[str, str]) -> tuple[float, str, int]:
    started = time.monotonic()
    done = subprocess.run(
        [FLOWFACTORY, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return time.monotonic() - started, done.stdout + done.stderr, done.returncode


def _calls(root: Path, env: dict[str, str], results: dict[str, Any]) -> None:
    """The user's second terminal: a deploy, then three runs, one after the other."""
    seconds, output, code = _cli(["deploy"], root, env)
    results["deploy"] = {"seconds": seconds, "exit": code, "ended": time.monotonic()}
    if code:
        results["deploy"]["output"] = output[-2000:]
    runs = []
    for name in MANUAL_RUNS:
        seconds, output, code = _cli(["run", name, "--partition", MANUAL_PARTITION], root, env)
        own = _OWN_WORK.search(output)
        run = {
            "pipeline": name,
            "seconds": seconds,
            "own_seconds": float(own.group(1)) if own else None,
            "exit": code,
            "ended": time.monotonic(),
        }
        if code:
            run["output"] = output[-2000:]
        runs.append(run)
    results["runs"] = runs


def _final_states(api_url: str, names: set[str], timeout: float = 300.0) -> dict[str, list[str]]:
    """The states of the runs named ``names`` once none of them is in progress (bounded)."""
    deadline = time.monotonic() + timeout
    states: dict[str, list[str]] = {}
    while True:
        response = httpx.post(
            f"{api_url}/flow_runs/filter",
            json={"flow_runs": {"name": {"any_": sorted(names)}}, "limit": 200},
            timeout=30,
        )
        response.raise_for_status()
        states = {}
        busy = False
        for flow_run in response.json():
            state = flow_run.get("state") or {}
            states.setdefault(flow_run["name"], []).append(state.get("name") or "Pending")
            busy = busy or state.get("type") not in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
        if not busy or time.monotonic() > deadline:
            return states
        time.sleep(2)


def _summary_check(
    summary: list[str], months: list[int], root: Path, api_url: str
) -> dict[str, Any]:
    """Did the summary name exactly the (pipeline, month) pairs whose runs did not complete?"""
    project = load_project(root / "deployments", Settings(project_dir=root))
    expected = {
        (run_name, pipeline, partition)
        for month in months
        for partition in [str(Partition.of(["year", "month"], [YEAR, month]))]
        for run_name, pipeline in expected_runs(project, partition).items()
    }
    states = _final_states(api_url, {run_name for run_name, _, _ in expected})
    really_not_completed = sorted(
        f"{pipeline} {partition}"
        for run_name, pipeline, partition in expected
        if "Completed" not in states.get(run_name, [])
    )
    reported = sorted(
        f"{m.group(2)} {m.group(3)}" for line in summary if (m := _SUMMARY_PROBLEM.match(line))
    )
    return {
        "reported_problems": reported,
        "really_not_completed": really_not_completed,
        "right": reported == really_not_completed,
    }


def run(months: int = 4, timeout: float = 1800.0) -> dict[str, Any]:
    """One replay of ``months`` months with a deploy and three runs made while it runs."""
    replayed = list(range(1, months + 1))
    with tempfile.TemporaryDirectory(prefix="ff-bench-embedded-") as tmp:
        root = Path(tmp)
        _project(root)
        port = _free_port()
        env = _env(root, port)
        api_url = env["FLOWFACTORY_PREFECT_API_URL"]
        up = subprocess.Popen(
            [FLOWFACTORY, "up", "--months", f"1-{months}"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[tuple[float, str]] = queue.Queue()
        seen: list[str] = []
        threading.Thread(target=_lines, args=(up.stdout, lines), daemon=True).start()
        results: dict[str, Any] = {}
        try:
            _wait_line(lines, seen, "landed 2013-01", timeout)
            replay_started = time.monotonic()
            _wait_line(lines, seen, "landed 2013-02", timeout)
            calls = threading.Thread(target=_calls, args=(root, env, results))
            calls.start()
            replay_ended = _wait_line(lines, seen, "serving;", timeout)
            calls.join(timeout)
            summary = seen[seen.index(next(s for s in seen if s.startswith("pipeline "))) :]
            check = _summary_check(summary, replayed, root, api_url)
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
        log = (root / ".flowfactory" / "logs" / "server.log").read_text(errors="replace")
    during = [results.get("deploy", {}), *results.get("runs", [])]
    return {
        "months": months,
        "replay_seconds": replay_ended - replay_started,
        "locks": count_locks(log),
        "deploy_seconds": results.get("deploy", {}).get("seconds"),
        "deploy_exit": results.get("deploy", {}).get("exit"),
        "runs": [{k: v for k, v in r.items() if k != "ended"} for r in results.get("runs", [])],
        "calls_during_replay": sum(c.get("ended", float("inf")) <= replay_ended for c in during),
        "calls": len(during),
        "summary": [s for s in summary if s.strip()][:40],
        "summary_check": check,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 4), indent=2))
