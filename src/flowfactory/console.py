"""The `flowfactory` command's entry point: ``flowfactory run`` goes to a warm executor when
one is reachable, every other verb (and ``run`` without one) to the command line in this process.

A cold ``flowfactory run`` spends about two seconds importing Prefect, polars and the command
line before the pipeline's first row is read. A running stack (``flowfactory up``, ``flowfactory
worker``) keeps a process with all of that imported (``flowfactory.stack.warm``); handing the
run to it costs a fork. This module imports only the standard library and the stack's launcher
(which does too) until it knows which path it takes. The run is the same either way: the
fork runs the `flowfactory` command with this process's arguments, environment, working
directory and standard streams, Ctrl-C reaches it, and its exit code is this process's.

Where the executor listens: ``FLOWFACTORY_WARM_SOCKET``, else where the stack puts it for the
state folder (``FLOWFACTORY_STATE_DIR``, by default ``.flowfactory`` in the project folder).
The hand-over is off with ``FLOWFACTORY_WARM_START=false``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flowfactory.stack._warm_launch import connect, hand_over, socket_path

__all__ = ["main", "warm_socket"]

_HANDED_OVER = frozenset({"run"})
_FALSE = frozenset({"0", "false", "no", "off"})


def warm_socket(environ: dict[str, str]) -> str | None:
    """Where a warm executor for this project would listen, or None when it is turned off."""
    if environ.get("FLOWFACTORY_WARM_START", "").strip().lower() in _FALSE:
        return None
    if explicit := environ.get("FLOWFACTORY_WARM_SOCKET"):
        return explicit
    project = Path(environ.get("FLOWFACTORY_PROJECT_DIR", Path.cwd()))
    state = Path(environ.get("FLOWFACTORY_STATE_DIR", ".flowfactory"))
    return str(socket_path(state if state.is_absolute() else project / state))


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv[:1] and argv[0] in _HANDED_OVER and "--help" not in argv:
        sock = connect(warm_socket(dict(os.environ)))
        if sock is not None:
            request = {
                "program": "flowfactory",
                "argv": argv,
                "env": dict(os.environ),
                "cwd": str(Path.cwd()),
            }
            code = hand_over(sock, request)
            if code is not None:
                sys.exit(code)
    from flowfactory.cli import main as cli_main  # noqa: PLC0415 - the cold path only

    cli_main()
