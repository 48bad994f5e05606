"""A real HTTP upstream on loopback that tests switch between healthy, down, slow and 5xx bursts.

It counts every request it receives, so tests prove what a breaker let through.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["healthy", "down", "slow", "error"]
ITEMS: list[dict[str, object]] = [{"faa": "JFK", "alt": 13}, {"faa": "LGA", "alt": 22}]


class Upstream:
    """A threaded HTTP server; ``mode`` decides how it answers, ``requests`` counts arrivals."""

    def __init__(self, slow_seconds: float = 2.0) -> None:
        self.mode: Mode = "healthy"
        self.slow_seconds = slow_seconds
        self.burst_left = 0
        self.requests = 0
        self.headers_seen: list[dict[str, str]] = []
        self.posted: list[bytes] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def set(self, mode: Mode, *, burst: int = 0) -> None:
        """Switch behaviour; ``error`` with ``burst`` answers that many 503s, then healthy."""
        with self._lock:
            self.mode = mode
            self.burst_left = burst
        if mode != "slow":
            self._release.set()  # let hanging slow requests finish
        else:
            self._release.clear()

    def start(self) -> Upstream:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release any slow requests."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def _answer(self) -> tuple[Mode, bool]:
        with self._lock:
            self.requests += 1
            mode = self.mode
            if mode == "error" and self.burst_left > 0:
                self.burst_left -= 1
                if self.burst_left == 0:
                    self.mode = "healthy"
                return "error", True
            return mode, False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mode, _ = upstream._answer()
                if mode == "down":
                    # Drop the connection without a response: the client sees a transport error.
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "slow":
                    upstream._release.wait(upstream.slow_seconds)
                if mode == "error":
                    self._send(503, {"error": "unavailable"})
                    return
                if self.path.startswith("/missing"):
                    self._send(404, {"error": "not found"})
                    return
                upstream.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
                self._send(200, {"ok": True, "path": self.path, "items": ITEMS, "at": time.time()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                upstream.posted.append(self.rfile.read(length))
                self._send(200, {"ok": True})

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout); nothing to tell it

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler


@contextmanager
def running_upstream(slow_seconds: float = 2.0) -> Iterator[Upstream]:
    """An upstream serving for the duration of the block."""
    server = Upstream(slow_seconds).start()
    try:
        yield server
    finally:
        server.stop()
