"""Bad answers from an HTTP API (a real server on loopback): one line naming the endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flowfactory.blocks import HttpJsonApi
from flowfactory.breaker import BreakerRegistry
from flowfactory.config import CircuitBreakerConfig, HttpEndpoint
from flowfactory.errors import BadDataError
from flowfactory.orchestration.http import fetch_records

RECORDS = [{"faa": "JFK", "alt": 13}, {"faa": "LGA", "alt": 22}]
BODIES: dict[str, tuple[str, bytes]] = {
    "/ok": ("application/json", json.dumps({"data": RECORDS}).encode()),
    "/html": ("text/html", b"<html><body>502 Bad Gateway</body></html>"),
    "/shape": ("application/json", json.dumps({"data": {"faa": "JFK"}}).encode()),
    "/scalars": ("application/json", json.dumps({"data": [1, 2, 3]}).encode()),
    "/big": ("application/json", json.dumps({"data": RECORDS * 20_000}).encode()),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        kind, body = BODIES[self.path.split("?")[0]]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - quiet
        return


@pytest.fixture(scope="module")
def api() -> Iterator[HttpJsonApi]:
    """An unsaved block pointing at a loopback server that answers each path its own way."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield HttpJsonApi(base_url=f"http://{host!s}:{port}")
    server.shutdown()


def endpoint(path: str, max_size: str = "1MB") -> HttpEndpoint:
    """An endpoint whose records are under `data`."""
    return HttpEndpoint(block="api", path=path, records="data", max_size=max_size)


def test_a_good_answer_is_records(api: HttpJsonApi) -> None:
    frame = fetch_records(api, endpoint("/ok"), None)
    assert frame.to_dicts() == RECORDS


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/html", "api/html: the answer is not JSON (text/html): <html><body>502 Bad Gateway"),
        ("/shape", "api/shape: expected a list of records under 'data', got an object"),
        ("/scalars", "api/scalars: expected a list of records under 'data', got a list of int"),
        ("/big", "api/big: the answer is over http.max_size (1,000,000 bytes)"),
    ],
)
def test_a_bad_answer_is_one_line_naming_the_endpoint(
    api: HttpJsonApi, path: str, message: str
) -> None:
    with pytest.raises(BadDataError) as caught:
        fetch_records(api, endpoint(path), None)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_wrong_body_counts_against_nothing_but_html_does(api: HttpJsonApi) -> None:
    """An answer of the wrong shape or size is the API up and answering: the breaker stays
    closed. A page that is not JSON is a gateway's, standing in for the API: it counts."""
    breaker = BreakerRegistry().get("api", CircuitBreakerConfig(failure_threshold=1))
    for path in ("/shape", "/big"):
        with pytest.raises(BadDataError):
            fetch_records(api, endpoint(path), breaker)
    assert breaker.state() == "closed"
    with pytest.raises(BadDataError):
        fetch_records(api, endpoint("/html"), breaker)
    assert breaker.state() == "open"
