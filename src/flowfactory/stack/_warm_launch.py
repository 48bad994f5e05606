"""Start a flow run through flowfactory's warm executor (see flowfactory.stack.warm).

Run by path, not as a module, so that starting it imports nothing but the standard library.
Without a reachable warm server it becomes ``python -m prefect.engine`` unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path
from types import FrameType

_HEADER = struct.Struct("!I")


def _cold_start() -> None:
    os.execv(sys.executable, [sys.executable, "-m", "prefect.engine", *sys.argv[1:]])  # noqa: S606


def _connect() -> socket.socket | None:
    path = os.environ.get("FLOWFACTORY_WARM_SOCKET")
    if not path:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def main() -> int:
    sock = _connect()
    if sock is None:
        _cold_start()
        return 1
    request = {"env": dict(os.environ), "cwd": str(Path.cwd()), "argv": sys.argv[1:]}
    body = json.dumps(request).encode()
    data = _HEADER.pack(len(body)) + body
    try:
        sent = socket.send_fds(sock, [data], [0, 1, 2])
        sock.sendall(data[sent:])
    except OSError:
        sock.close()
        _cold_start()
        return 1

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
            print("flowfactory: the flow run process ended without an exit code", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
