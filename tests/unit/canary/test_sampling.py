"""Key-hashed samples: stable, nested, join-consistent, stratified."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from flowfactory.canary import SampleSpec, sample, sample_inputs, splitmix64, with_stable_hash
from flowfactory.errors import SamplingError

MASK = (1 << 64) - 1


def _splitmix64_reference(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _ids(n: int = 100_000) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "id": pl.int_range(0, n, eager=True),
            "region": (pl.int_range(0, n, eager=True) % 7).cast(pl.String),
        }
    )


def test_splitmix64_matches_the_reference_arithmetic() -> None:
    values = [0, 1, 2, 2**63 + 5, MASK]
    frame = pl.DataFrame({"x": pl.Series(values, dtype=pl.UInt64)})
    out = frame.select(splitmix64(pl.col("x"))).to_series().to_list()
    assert out == [_splitmix64_reference(v) for v in values]


def test_hash_values_are_pinned() -> None:
    """Fixed expected values: any change to the hash (or to polars arithmetic) fails here."""
    frame = pl.DataFrame({"id": [0, 1, -1], "name": ["a", "b", None]})
    by_id = with_stable_hash(frame.lazy(), ["id"], "h").collect()["h"].to_list()
    # The integer key's hash is SplitMix64 of (salt xor value), computed here independently.
    assert by_id[0] == _splitmix64_reference(0)
    assert by_id[1] == _splitmix64_reference(1)
    assert by_id[2] == _splitmix64_reference(MASK)
    by_name = with_stable_hash(frame.lazy(), ["name"], "h").collect()["h"].to_list()
    blake = int.from_bytes(hashlib.blake2b(b"a", digest_size=8).digest(), "little")
    assert by_name[0] == _splitmix64_reference(blake)


def test_sample_is_identical_across_runs() -> None:
    spec = SampleSpec(keys=("id",), fraction=0.05)
    first = sample(_ids(), spec).collect()
    second = sample(_ids(), spec).collect()
    assert first.equals(second)
    assert 4_000 < first.height < 6_000


def test_smaller_sample_is_a_subset_of_a_larger_one() -> None:
    one = set(sample(_ids(), SampleSpec(keys=("id",), fraction=0.01)).collect()["id"])
    five = set(sample(_ids(), SampleSpec(keys=("id",), fraction=0.05)).collect()["id"])
    assert one
    assert one < five


def test_sample_does_not_depend_on_row_order_or_int_width() -> None:
    spec = SampleSpec(keys=("id",), fraction=0.05)
    base = set(sample(_ids(), spec).collect()["id"])
    shuffled = _ids().collect().sample(fraction=1.0, shuffle=True, seed=1).lazy()
    narrow = _ids().with_columns(pl.col("id").cast(pl.Int32))
    assert set(sample(shuffled, spec).collect()["id"]) == base
    assert set(sample(narrow, spec).collect()["id"]) == base


def test_salt_draws_an_independent_sample() -> None:
    a = set(sample(_ids(), SampleSpec(keys=("id",), fraction=0.05)).collect()["id"])
    b = set(sample(_ids(), SampleSpec(keys=("id",), fraction=0.05, salt=7)).collect()["id"])
    assert a != b


def test_text_keys_and_several_columns() -> None:
    frame = _ids().with_columns(name=pl.format("cust-{}", pl.col("id")))
    spec = SampleSpec(keys=("name", "region"), fraction=0.05)
    first = sample(frame, spec).collect()
    assert first.equals(sample(frame, spec).collect())
    assert 4_000 < first.height < 6_000


def test_stratified_sample_covers_every_stratum() -> None:
    # One rare stratum of 3 keys among 100,000: a 0.1% sample would usually miss it.
    frame = pl.concat(
        [
            _ids(),
            pl.LazyFrame({"id": [10**9, 10**9 + 1, 10**9 + 2], "region": ["rare"] * 3}),
        ]
    )
    spec = SampleSpec(keys=("id",), fraction=0.001, stratify="region", per_stratum=2)
    got = sample(frame, spec).collect()
    per_region = dict(got.group_by("region").len().iter_rows())
    assert set(per_region) == {*map(str, range(7)), "rare"}
    assert per_region["rare"] == 2
    assert got.equals(sample(frame, spec).collect())


def test_inputs_sampled_on_the_same_keys_stay_joinable() -> None:
    orders = _ids().rename({"id": "customer"})
    items = pl.LazyFrame(
        {"customer": pl.int_range(0, 100_000, eager=True).gather([i // 3 for i in range(300_000)])}
    )
    reference = pl.LazyFrame({"code": ["a", "b"]})
    frames, sampled = sample_inputs(
        {"orders": orders, "items": items, "reference": reference},
        SampleSpec(keys=("customer",), fraction=0.02),
    )
    assert sampled == ["orders", "items"]
    assert frames["reference"].collect().height == 2
    kept = set(frames["orders"].collect()["customer"])
    assert set(frames["items"].collect()["customer"]) == kept
    assert frames["items"].collect().height == 3 * len(kept)


def test_bad_specs_are_refused() -> None:
    with pytest.raises(SamplingError):
        SampleSpec(keys=(), fraction=0.1)
    with pytest.raises(SamplingError):
        SampleSpec(keys=("id",))
    with pytest.raises(SamplingError):
        SampleSpec(keys=("id",), fraction=1.5)
    with pytest.raises(SamplingError, match="not in"):
        sample(_ids(), SampleSpec(keys=("nope",), fraction=0.1)).collect()
    floats = pl.LazyFrame({"x": [1.0]})
    with pytest.raises(SamplingError, match="cannot drive a stable sample"):
        sample(floats, SampleSpec(keys=("x",), fraction=0.1))
    with pytest.raises(SamplingError, match="no input has"):
        sample_inputs({"t": _ids()}, SampleSpec(keys=("nope",), fraction=0.1))


def test_stratified_inputs_keep_the_keys_chosen_on_the_stratified_one() -> None:
    orders = _ids().rename({"id": "customer"})
    items = pl.LazyFrame({"customer": pl.int_range(0, 100_000, eager=True).gather([0, 5, 5, 7])})
    spec = SampleSpec(keys=("customer",), fraction=0.001, stratify="region", per_stratum=3)
    frames, sampled = sample_inputs({"items": items, "orders": orders}, spec)
    assert sampled == ["items", "orders"]
    kept = set(frames["orders"].collect()["customer"])
    assert len(kept) >= 7 * 3
    assert set(frames["items"].collect()["customer"]) <= kept
