"""One way to write an experiment's numbers on every page: a rate in percent with two
decimals (6.22%), its difference in percentage points (+0.90 pts), a mean with four
significant figures, an interval as "low to high", a p-value with two significant figures."""

from __future__ import annotations

from registry_ui.core.experiment_stats import Interval


def value(v: float | None, kind: str) -> str:
    if v is None:
        return ""
    return f"{v * 100:.2f}%" if kind == "rate" else f"{v:.4g}"


def signed(v: float | None, kind: str) -> str:
    if v is None:
        return ""
    return f"{v * 100:+.2f} pts" if kind == "rate" else f"{v:+.4g}"


def between(interval: Interval | None, kind: str, *, differences: bool = False) -> str:
    if interval is None:
        return ""
    write = signed if differences else value
    return f"{write(interval.low, kind)} to {write(interval.high, kind)}"


def p_value(p: float | None) -> str:
    if p is None:
        return ""
    return "< 0.0001" if p < 0.0001 else f"{p:.2g}"
