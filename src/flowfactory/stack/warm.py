"""A warm executor: flow runs start as forks of a process that has Prefect already imported.

A process worker starts every flow run as ``python -m prefect.engine``: a new interpreter that
spends one to two seconds importing Prefect, polars and the flow before the run's code starts.
For data-aware pipelines that second is the whole latency budget. Here a single-threaded server
imports all of that once and forks a child per run, so a run starts in milliseconds.

The worker's command is a small launcher (``_warm_launch.py``, standard library only) that sends
its environment, working directory and standard streams to the server over a Unix socket, relays
signals to the forked run and exits with its exit code. Without a reachable server the launcher
becomes ``python -m prefect.engine`` itself, so the warm path is an optimisation, never a
dependency.

``flowfactory run`` is handed over the same way (``flowfactory.console``): the fork runs the
`flowfactory` command with the caller's arguments, environment and streams, and the caller's
process, which imported nothing but the standard library, waits for its exit code.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import signal
import socket
import struct
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Final

__all__ = [
    "LAUNCHER",
    "PRELOAD",
    "SOCKET_ENV",
    "launcher_command",
    "read_message",
    "serve",
    "write_message",
]

SOCKET_ENV: Final = "FLOWFACTORY_WARM_SOCKET"
LAUNCHER: Final = Path(__file__).with_name("_warm_launch.py")

# What a pipeline run imports; everything here is imported once, in the server.
PRELOAD: Final = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.deployments.steps",
    "prefect.runner.storage",
    "polars",
    "flowfactory.orchestration.flows",
    # `flowfactory run`, handed over by flowfactory.console; loaded by name (the command sits
    # above this layer, and this server runs it the way `python -m` would).
    "flowfactory.cli",
)

# What a request may ask the fork to run besides a flow run: the `flowfactory` command.
_PROGRAMS: Final = {"flowfactory": ("flowfactory.cli", "main")}

_HEADER: Final = struct.Struct("!I")
_MAX_MESSAGE: Final = 16 * 1024 * 1024


def launcher_command() -> str:
    """The process work pool command that starts runs through the warm server."""
    return f"{sys.executable} {LAUNCHER}"


def write_message(
    sock: socket.socket, message: dict[str, object], fds: list[int] | None = None
) -> None:
    """Send one length-prefixed JSON message, with file descriptors attached to it."""
    body = json.dumps(message).encode()
    data = _HEADER.pack(len(body)) + body
    if fds:
        sent = socket.send_fds(sock, [data], fds)
        data = data[sent:]
    sock.sendall(data)


def read_message(
    sock: socket.socket, *, max_fds: int = 0
) -> tuple[dict[str, object] | None, list[int]]:
    """Read one message; ``None`` when the peer closed the connection first."""
    buffer = b""
    fds: list[int] = []
    while len(buffer) < _HEADER.size or len(buffer) < _HEADER.size + _HEADER.unpack_from(buffer)[0]:
        if max_fds and not fds:
            chunk, received, _flags, _addr = socket.recv_fds(sock, 65536, max_fds)
            fds.extend(received)
        else:
            chunk = sock.recv(65536)
        if not chunk:
            return None, fds
        buffer += chunk
        if len(buffer) >= _HEADER.size and _HEADER.unpack_from(buffer)[0] > _MAX_MESSAGE:
            raise ValueError("warm executor message too large")
    (length,) = _HEADER.unpack_from(buffer)
    message = json.loads(buffer[_HEADER.size : _HEADER.size + length])
    if not isinstance(message, dict):
        raise ValueError("warm executor message is not an object")
    return message, fds


def serve(socket_path: Path, preload: tuple[str, ...] = PRELOAD) -> None:
    """Import ``preload``, then fork one child per launcher connection until SIGTERM."""
    for module in preload:
        importlib.import_module(module)
    # A fork copies only the calling thread: a thread started by an import would be missing,
    # with its locks held, in every run.
    if threading.active_count() != 1:
        names = ", ".join(thread.name for thread in threading.enumerate())
        raise RuntimeError(f"preloading started threads ({names}); forking would be unsafe")

    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished runs

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while True:
            connection, _ = listener.accept()
            _fork_run(listener, connection)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()


def _fork_run(listener: socket.socket, connection: socket.socket) -> None:
    try:
        request, fds = read_message(connection, max_fds=3)
    except (OSError, ValueError):
        connection.close()
        return
    if request is None or len(fds) != 3:  # stdin, stdout, stderr
        for fd in fds:
            os.close(fd)
        connection.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        connection.close()
        return
    # The child: from here on this process is the flow run, and never returns to the loop.
    code = 1
    try:
        listener.close()
        code = _run_child(connection, request, fds)
    finally:
        with contextlib.suppress(OSError):
            write_message(connection, {"exit": code})
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_child(connection: socket.socket, request: dict[str, object], fds: list[int]) -> int:
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    env = request.get("env")
    cwd = request.get("cwd")
    argv = request.get("argv")
    if not isinstance(env, dict) or not isinstance(cwd, str) or not isinstance(argv, list):
        return 1
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update({str(key): str(value) for key, value in env.items()})
    write_message(connection, {"pid": os.getpid()})

    # Settings were read from the server's environment at import; this run has its own.
    from prefect.context import refresh_global_settings_context  # noqa: PLC0415
    from prefect.logging.configuration import setup_logging  # noqa: PLC0415

    refresh_global_settings_context()
    setup_logging(incremental=False)
    program = request.get("program")
    if program is not None:
        return _run_program(str(program), [str(arg) for arg in argv])
    import prefect.engine  # noqa: PLC0415 - preloaded, this only looks it up

    sys.argv = [prefect.engine.__file__, *(str(arg) for arg in argv)]
    from flowfactory.orchestration.flows import engine_settings  # noqa: PLC0415 - preloaded
    from flowfactory.settings import get_settings  # noqa: PLC0415

    try:
        # Exactly what `python -m prefect.engine` runs, on modules that are already imported.
        with engine_settings(get_settings()):
            runpy.run_path(prefect.engine.__file__, run_name="__main__")
    except SystemExit as exit_:
        return _exit_code(exit_)
    return 0


def _run_program(program: str, argv: list[str]) -> int:
    """Run a command of ``_PROGRAMS`` with ``argv``, as its console script would."""
    if program not in _PROGRAMS:
        sys.stderr.write(f"flowfactory: the warm executor does not run {program!r}\n")
        return 2
    module, function = _PROGRAMS[program]
    sys.argv = [program, *argv]
    try:
        getattr(importlib.import_module(module), function)()
    except SystemExit as exit_:
        return _exit_code(exit_)
    return 0


def _exit_code(exit_: SystemExit) -> int:
    return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
