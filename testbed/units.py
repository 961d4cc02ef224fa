"""Parsing of the quantities users write in YAML: bandwidths, durations, sizes, ratios.

Units follow tc's bit-based spelling on purpose ("10Mbit"), and reject the ambiguous
"Mbps" (tc reads it as megaBYTES per second) with a message that says what to write.
"""

from __future__ import annotations

import re

_NUMBER = r"(\d+(?:\.\d+)?)"

_BANDWIDTH_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}

BANDWIDTH_HELP = "a bit rate such as 512kbit, 10Mbit or 1Gbit (units: bit, kbit, Mbit, Gbit)"
DURATION_HELP = "a duration such as 250ms, 30s, 5m (units: us, ms, s, m, h)"
SIZE_HELP = "a size such as 1500B, 64KB, 1MB (units: B, KB, MB, GB; 1KB = 1024 B)"
RATIO_HELP = "a percentage such as 1% or 0.5%, or a fraction between 0 and 1"


class UnitError(ValueError):
    """A quantity could not be parsed; the message says what is allowed."""


def _split(text: object, help_text: str) -> tuple[float, str]:
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected {help_text}, got {text!r}")
    match = re.fullmatch(_NUMBER + r"\s*([A-Za-z%]*)", str(text).strip())
    if not match:
        raise UnitError(f"expected {help_text}, got {text!r}")
    return float(match.group(1)), match.group(2)


def parse_bandwidth(text: object) -> int:
    """Bits per second from '10Mbit'. A bare number is rejected: the unit must be explicit."""
    value, unit = _split(text, BANDWIDTH_HELP)
    low = unit.lower()
    if low.endswith("bps") or low in {"k", "m", "g", "kb", "mb", "gb"}:
        number = str(text).strip()[: len(str(text).strip()) - len(unit)].strip()
        prefix = {"k": "k", "m": "M", "g": "G"}.get(low[0], "")
        raise UnitError(
            f"{text!r} is ambiguous (bits or bytes? tc reads 'bps' as bytes per second); "
            f"write bits per second, e.g. {number}{prefix}bit"
        )
    if low not in _BANDWIDTH_UNITS:
        raise UnitError(f"expected {BANDWIDTH_HELP}, got {text!r}")
    bits = int(round(value * _BANDWIDTH_UNITS[low]))
    if bits < 8_000:
        raise UnitError(f"{text!r} is below the smallest supported rate of 8kbit")
    if bits > 100 * 10**9:
        raise UnitError(f"{text!r} is above the largest supported rate of 100Gbit")
    return bits


def parse_duration(text: object) -> float:
    """Seconds from '250ms' or '30s'."""
    value, unit = _split(text, DURATION_HELP)
    if unit.lower() not in _DURATION_UNITS:
        raise UnitError(f"expected {DURATION_HELP}, got {text!r}")
    return value * _DURATION_UNITS[unit.lower()]


def parse_size(text: object) -> int:
    """Bytes from '64KB'."""
    value, unit = _split(text, SIZE_HELP)
    if unit.lower() not in _SIZE_UNITS:
        raise UnitError(f"expected {SIZE_HELP}, got {text!r}")
    return int(value * _SIZE_UNITS[unit.lower()])


def parse_ratio(text: object) -> float:
    """A fraction in [0, 1] from '1%' or 0.01."""
    value, unit = _split(text, RATIO_HELP)
    if unit == "%":
        value /= 100.0
    elif unit:
        raise UnitError(f"expected {RATIO_HELP}, got {text!r}")
    if not 0.0 <= value <= 1.0:
        raise UnitError(f"expected {RATIO_HELP}, got {text!r} (out of range)")
    return value


def format_bandwidth(bits: int) -> str:
    """The tc spelling of a rate: 512000 -> '512kbit'."""
    for unit, scale in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits % scale == 0:
            return f"{bits // scale}{unit}"
    return f"{bits}bit"
