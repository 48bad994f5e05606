"""Start a flow run through flowfactory's warm executor (see flowfactory.stack.warm).

Run by path, not as a module, so that starting it imports nothing but the standard library.
Without a reachable warm server it becomes ``python -m prefect.engine`` unchanged. The
`flowfactory` command (``flowfactory.console``) hands ``flowfactory run`` over the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

_HEADER = struct.Struct("!I")
_MAX_UNIX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux


def socket_path(state: Path) -> Path:
    """Where the warm executor of the stack whose state folder is ``state`` listens: in that
    folder, or under the temporary folder when that path is too long for a Unix socket."""
    path = state / "warm.sock"
    if len(str(path)) > _MAX_UNIX_SOCKET_PATH:
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"flowfactory-{digest}.sock"
    return path


def _cold_start() -> None:
    os.execv(sys.executable, [sys.executable, "-m", "prefect.engine", *sys.argv[1:]])  # noqa: S606


def connect(path: str | None) -> socket.socket | None:
    """A connection to the warm executor at ``path``, or None when none answers there."""
    if not path:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def hand_over(sock: socket.socket, request: Mapping[str, object]) -> int | None:
    """Send ``request`` with this process's standard streams; the forked run's exit code.

    Signals that would end this process are relayed to the run. None when the request could
    not be sent, so that the caller can run the work itself.
    """
    body = json.dumps(request).encode()
    data = _HEADER.pack(len(body)) + body
    try:
        sent = socket.send_fds(sock, [data], [0, 1, 2])
        sock.sendall(data[sent:])
    except OSError:
        sock.close()
        return None

    child: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child[0], signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)

    buffer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except InterruptedError:
            continue
        if not chunk:
            # The run died without reporting (killed by a signal, or the server went away).
            print("flowfactory: the forked run ended without an exit code", file=sys.stderr)
            return 1
        buffer += chunk
        while len(buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(buffer)
            if len(buffer) < _HEADER.size + length:
                break
            message = json.loads(buffer[_HEADER.size : _HEADER.size + length])
            buffer = buffer[_HEADER.size + length :]
            if "pid" in message:
                child.append(int(message["pid"]))
            if "exit" in message:
                return int(message["exit"])


def main() -> int:
    """Start the flow run that the worker named, warm if possible, else cold."""
    sock = connect(os.environ.get("FLOWFACTORY_WARM_SOCKET"))
    request = {"env": dict(os.environ), "cwd": str(Path.cwd()), "argv": sys.argv[1:]}
    code = hand_over(sock, request) if sock is not None else None
    if code is None:
        _cold_start()
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
