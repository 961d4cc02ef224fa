"""Quantities as users write them: bandwidth (bits per second), duration, ratio, size."""

from __future__ import annotations

import pytest

from testbed.units import (
    BANDWIDTH_HELP,
    DURATION_HELP,
    RATIO_HELP,
    SIZE_HELP,
    UnitError,
    format_bandwidth,
    parse_bandwidth,
    parse_duration,
    parse_ratio,
    parse_size,
)

# --- bandwidth ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "bits"), [
    ("10Mbit", 10_000_000),
    ("10mbit", 10_000_000),
    ("10MBIT", 10_000_000),
    ("10 Mbit", 10_000_000),
    ("  10Mbit ", 10_000_000),
    ("1.5Mbit", 1_500_000),
    ("0.5Mbit", 500_000),
    ("512kbit", 512_000),
    ("512Kbit", 512_000),
    ("1Gbit", 1_000_000_000),
    ("8kbit", 8_000),  # the smallest
    ("8000bit", 8_000),
    ("100Gbit", 100_000_000_000),  # the largest
])
def test_bandwidth_is_bits_per_second_with_si_prefixes(text: str, bits: int) -> None:
    assert parse_bandwidth(text) == bits


@pytest.mark.parametrize(("text", "suggestion"), [
    ("10Mbps", "10Mbit"),
    ("10 Mbps", "10Mbit"),
    ("10MBps", "10Mbit"),
    ("1.5Gbps", "1.5Gbit"),
    ("512kbps", "512kbit"),
    ("10 KBps", "10kbit"),
    ("1000000bps", "1000000bit"),
    ("10M", "10Mbit"),
    ("10m", "10Mbit"),
    ("64kb", "64kbit"),
    ("1MB", "1Mbit"),
])
def test_bytes_or_bare_prefixes_are_ambiguous_and_the_bit_spelling_is_suggested(
        text: str, suggestion: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_bandwidth(text)
    assert str(info.value) == (f"{text!r} is ambiguous (bits or bytes? tc reads 'bps' as bytes "
                               f"per second); write bits per second, e.g. {suggestion}")


@pytest.mark.parametrize("value", ["fast", "", "10", 10, 10.5, True, None, [1], "-1Mbit",
                                   "1e6bit", "10Mibit", "Mbit", "10 Mbit/s"])
def test_bandwidth_without_a_bit_unit_lists_the_units(value: object) -> None:
    with pytest.raises(UnitError) as info:
        parse_bandwidth(value)
    assert str(info.value) == f"expected {BANDWIDTH_HELP}, got {value!r}"
    assert "units: bit, kbit, Mbit, Gbit" in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("7999bit", "'7999bit' is below the smallest supported rate of 8kbit"),
    ("0Mbit", "'0Mbit' is below the smallest supported rate of 8kbit"),
    ("100.1Gbit", "'100.1Gbit' is above the largest supported rate of 100Gbit"),
])
def test_bandwidth_range(text: str, message: str) -> None:
    with pytest.raises(UnitError, match=f"^{message}$"):
        parse_bandwidth(text)


@pytest.mark.parametrize(("bits", "text"), [
    (512_000, "512kbit"), (8_000_000, "8mbit"), (10**9, "1gbit"), (1_500_000, "1500kbit"),
    (1500, "1500bit"), (100 * 10**9, "100gbit"),
])
def test_format_bandwidth_is_the_tc_spelling_and_parses_back(bits: int, text: str) -> None:
    assert format_bandwidth(bits) == text
    if bits >= 8000:
        assert parse_bandwidth(text) == bits


# --- duration -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("10us", 10e-6),
    ("1.5s", 1.5), ("0s", 0.0), ("10 ms", 0.01), ("20MS", 0.02),
])
def test_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["30", 30, 1.5, "0", "10sec", "1d", "ms", "-1s", "", True,
                                   None])
def test_duration_needs_a_unit(value: object) -> None:
    with pytest.raises(UnitError) as info:
        parse_duration(value)
    assert str(info.value) == f"expected {DURATION_HELP}, got {value!r}"
    assert "(units: us, ms, s, m, h)" in str(info.value)


# --- ratio ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "fraction"), [
    ("1%", 0.01), ("0.5%", 0.005), ("5 %", 0.05), ("100%", 1.0), ("0%", 0.0),
    ("0.01", 0.01), (0.01, 0.01), (0, 0.0), (1, 1.0), ("1", 1.0),
])
def test_ratio_is_a_percentage_or_a_fraction(value: object, fraction: float) -> None:
    assert parse_ratio(value) == pytest.approx(fraction)


@pytest.mark.parametrize("value", ["101%", "1.5", 2, 1.0001])
def test_ratio_above_one_is_out_of_range(value: object) -> None:
    with pytest.raises(UnitError) as info:
        parse_ratio(value)
    assert str(info.value) == f"expected {RATIO_HELP}, got {value!r} (out of range)"


@pytest.mark.parametrize("value", ["x", "1 percent", "-1%", "1e-3", True, None, ""])
def test_ratio_that_is_not_a_number(value: object) -> None:
    with pytest.raises(UnitError) as info:
        parse_ratio(value)
    assert str(info.value) == f"expected {RATIO_HELP}, got {value!r}"


# --- size -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "size"), [
    ("1500B", 1500), ("1500b", 1500), ("64KB", 65536), ("64kb", 65536), ("64 KB", 65536),
    ("1MB", 1024**2), ("1GB", 1024**3), ("1.5KB", 1536), ("0B", 0),
])
def test_size_is_bytes_with_binary_prefixes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("value", ["1500", 1500, "64KiB", "1 kilobyte", "1TB", True, None])
def test_size_needs_a_byte_unit(value: object) -> None:
    with pytest.raises(UnitError) as info:
        parse_size(value)
    assert str(info.value) == f"expected {SIZE_HELP}, got {value!r}"
    assert "1KB = 1024 B" in str(info.value)


def test_unit_error_is_a_value_error() -> None:
    assert issubclass(UnitError, ValueError)
