"""The unit tier of flowfactory.testing: demo transforms over a few hand-written rows, no server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from tests.helpers import write_project

from flowfactory.errors import PipelineRunError, SchemaIncompatibleError
from flowfactory.settings import Settings
from flowfactory.testing import transform_rows

RunTransform = Callable[..., pl.DataFrame]


def test_flight_delays_joins_flights_with_the_weather_of_their_hour(
    run_transform: RunTransform,
) -> None:
    """Two flights in one hour at EWR, one at JFK without weather: one output row."""
    flights = [
        {"origin": "EWR", "year": 2013, "month": 1, "day": 1, "hour": 5, "dep_delay": 2.0},
        {"origin": "EWR", "year": 2013, "month": 1, "day": 1, "hour": 5, "dep_delay": 4.0},
        {"origin": "JFK", "year": 2013, "month": 1, "day": 1, "hour": 5, "dep_delay": 9.0},
    ]
    weather = [
        {
            "origin": "EWR",
            "year": 2013,
            "month": 1,
            "day": 1,
            "hour": 5,
            "wind_speed": 10.4,
            "precip": 0.0,
            "visib": 10.0,
        }
    ]
    out = run_transform("flight_delays", flights=flights, weather=weather)
    assert out.to_dicts() == [
        {
            "origin": "EWR",
            "year": 2013,
            "month": 1,
            "day": 1,
            "hour": 5,
            "flights": 2,
            "mean_dep_delay": 3.0,
            "wind_speed": 10.4,
            "precip": 0.0,
            "visib": 10.0,
        }
    ]
    assert out.schema["year"] == pl.Int32  # rows took the dtypes of the flights contract


def test_carrier_stats_python_transform(run_transform: RunTransform) -> None:
    """The Python transform counts flights and cancellations per carrier and month."""
    flights = {
        "carrier": ["UA", "UA", "AA"],
        "year": [2013, 2013, 2013],
        "month": [1, 1, 1],
        "cancelled": [False, True, False],
        "arr_delay": [20.0, None, 5.0],
        "time_hour": ["2013-01-01 05:00:00"] * 3,
    }
    airlines = {"carrier": ["UA", "AA"], "name": ["United", "American"]}
    out = run_transform("carrier_stats", flights=flights, airlines=airlines).sort("carrier")
    assert out.select("carrier", "flights", "cancelled", "carrier_name").to_dicts() == [
        {"carrier": "AA", "flights": 1, "cancelled": 0, "carrier_name": "American"},
        {"carrier": "UA", "flights": 2, "cancelled": 1, "carrier_name": "United"},
    ]


def test_ingest_flights_parses_time_hour_as_utc(run_transform: RunTransform) -> None:
    """Landing CSV text becomes typed columns; time_hour is UTC, as the contract says."""
    row = {
        "year": 2013,
        "month": 1,
        "day": 1,
        "carrier": "UA",
        "flight": 1545,
        "origin": "EWR",
        "sched_dep_time": 515,
        "dep_time": None,
        "time_hour": "2013-01-01T10:00:00Z",
    }
    out = run_transform("ingest_flights", source=[row])
    assert out["time_hour"].to_list() == [dt.datetime(2013, 1, 1, 10, tzinfo=dt.UTC)]
    assert out["cancelled"].to_list() == [True]


def test_duplicate_keys_break_the_contract(run_transform: RunTransform) -> None:
    """The unit tier checks the output against the contract, as a run does."""
    row = {"year": 2013, "month": 1, "day": 1, "carrier": "UA", "flight": 1, "origin": "EWR"}
    row |= {"sched_dep_time": 515, "time_hour": "2013-01-01T10:00:00Z"}
    with pytest.raises(SchemaIncompatibleError, match="duplicate keys") as caught:
        run_transform("ingest_flights", source=[row, row])
    assert "year" in caught.value.columns[0]
    out = run_transform("ingest_flights", source=[row, row], check_contract=False)
    assert out.height == 2


def test_inputs_must_match_the_pipeline(run_transform: RunTransform) -> None:
    """Rows for an input the pipeline does not read are a clear error."""
    with pytest.raises(PipelineRunError, match="reads flights, weather; rows were given for"):
        run_transform("flight_delays", flights=[])


def test_pipeline_without_contracts_uses_the_rows_dtypes(tmp_path: Path) -> None:
    """A project with no contracts still runs its transform over plain rows."""
    root = write_project(
        tmp_path,
        {
            "deployments/totals.yaml": (
                "name: totals\nsource: {path: landing/x.csv}\n"
                "transform: {sql: 'SELECT k, sum(v) AS v FROM source GROUP BY k'}\n"
                "destination: {dataset: totals, key: [k]}\n"
            )
        },
    )
    out = transform_rows(
        "totals", Settings(project_dir=root), source={"k": ["a", "a", "b"], "v": [1, 2, 3]}
    )
    assert out.sort("k").to_dicts() == [{"k": "a", "v": 3}, {"k": "b", "v": 3}]
