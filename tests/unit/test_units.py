"""Parsers and formatters for human sizes and context lengths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemmatui.core.units import (
    GiB,
    MAX_CTX,
    MiB,
    UnitError,
    format_bytes,
    format_ctx,
    parse_ctx,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("4096", 4096),
        ("32k", 32768),
        ("32K", 32768),
        ("32768", 32768),
        ("128k", 131072),
        (" 8k ", 8192),
        ("1.5k", 1536),
        ("1m", 1 << 20),
        (2048, 2048),
    ],
)
def test_parse_ctx_accepts(text, tokens):
    assert parse_ctx(text) == tokens


@pytest.mark.parametrize(
    "text", ["abc", "0", "-5", "1e9", "", "32kb", "1.1", "0k", "99999999999", "k", "9" * 400, "9" * 400 + "k"]
)
def test_parse_ctx_rejects_with_the_value_named(text):
    with pytest.raises(UnitError) as err:
        parse_ctx(text)
    assert repr(text.strip()) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("24G", 24 * GiB),
        ("24GiB", 24 * GiB),
        ("24gib", 24 * GiB),
        ("24GB", 24 * 10**9),
        ("8192M", 8 * GiB),
        ("8192MiB", 8 * GiB),
        ("512MB", 512 * 10**6),
        ("1.5G", int(1.5 * GiB)),
        ("1T", 1024 * GiB),
        ("2000000", 2000000),
    ],
)
def test_parse_size_binary_and_decimal(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["0", "0G", "lots", "-8G", "24 gigs", "G", "", "1e3G", "1.5", "24", "9" * 400, "9" * 400 + "G"]
)
def test_parse_size_rejects(text):
    with pytest.raises(UnitError) as err:
        parse_size(text, what="--vram")
    assert "--vram" in str(err.value)


@given(st.integers(min_value=1, max_value=MAX_CTX))
def test_ctx_round_trips_through_its_short_form(tokens):
    assert parse_ctx(format_ctx(tokens)) == tokens


@given(st.integers(min_value=1, max_value=MAX_CTX // 1024))
def test_k_suffix_is_1024(k):
    assert parse_ctx(f"{k}k") == parse_ctx(f"{k}K") == k * 1024


NUMBERS = st.integers(min_value=0, max_value=10**600).map(str)


@given(st.one_of(st.text(max_size=12), st.tuples(NUMBERS, st.sampled_from(["", "k", "M"])).map("".join)))
def test_parse_ctx_never_raises_anything_but_unit_error(text):
    try:
        value = parse_ctx(text)
    except UnitError:
        return
    assert 1 <= value <= MAX_CTX


@given(st.one_of(st.text(max_size=12), st.tuples(NUMBERS, st.sampled_from(["", "G", "GB", "T"])).map("".join)))
def test_parse_size_never_raises_anything_but_unit_error(text):
    try:
        value = parse_size(text)
    except UnitError:
        return
    assert value > 0


@given(st.integers(min_value=1, max_value=4096), st.sampled_from(["G", "GiB", "M", "MiB"]))
def test_binary_units_agree(n, unit):
    factor = GiB if unit.startswith("G") else MiB
    assert parse_size(f"{n}{unit}") == n * factor


def test_format_bytes():
    assert format_bytes(24 * GiB) == "24.0 GiB"
    assert format_bytes(3184 * MiB) == "3.1 GiB"
    assert format_bytes(212 * MiB) == "212 MiB"
