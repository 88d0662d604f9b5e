"""Line charts drawn on the server as SVG geometry (no JavaScript, no inline style: the
Content-Security-Policy allows neither). Templates render the numbers computed here."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 720, 280


LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


@dataclass(frozen=True)
class Series:
    label: str
    points: str  # "x,y x,y ..." for <polyline points>
    last: tuple[float, float] | None  # where to put the end marker
    band: str = ""  # the confidence band as <polygon points>: upper edge, then lower back


@dataclass(frozen=True)
class Tick:
    at: float  # pixel position along its axis
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    top: int
    bottom: int  # y of the plot's bottom edge
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    title: str


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[date, float]]]],
    *,
    title: str,
    value_format: Callable[[float], str] = lambda v: f"{v:.3g}",
    bands: Sequence[Sequence[tuple[date, float, float]]] | None = None,
) -> LineChart | None:
    """One line per (label, [(day, value), ...]); None when there is nothing to draw.
    ``bands``, one per series in the same order: (day, low, high) of its confidence
    interval, drawn as a shaded band around the line (the scale takes them in)."""
    bands = list(bands or [])
    days = sorted({day for _, points in series for day, _ in points})
    values = [value for _, points in series for _, value in points]
    values += [bound for band in bands for _, low, high in band for bound in (low, high)]
    if not days:
        return None
    low, high = min(values), max(values)
    if low == high:
        low, high = low - (abs(low) * 0.1 or 1), high + (abs(high) * 0.1 or 1)
    step = _nice_step((high - low) / 4)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    first, span = days[0], max((days[-1] - days[0]).days, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: date) -> float:
        return round(LEFT + plot_w * (day - first).days / span, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - (value - low) / (high - low)), 1)

    drawn = []
    for position, (label, points) in enumerate(series):
        coordinates = [(x(day), y(value)) for day, value in points]
        band = bands[position] if position < len(bands) else []
        outline = [(x(day), y(high)) for day, _, high in band]
        outline += [(x(day), y(low)) for day, low, _ in reversed(band)]
        drawn.append(
            Series(
                label=label,
                points=" ".join(f"{px},{py}" for px, py in coordinates),
                last=coordinates[-1] if coordinates else None,
                band=" ".join(f"{px},{py}" for px, py in outline),
            )
        )
    every = max(1, math.ceil(len(days) / 8))
    x_ticks = [Tick(x(day), day.strftime("%b %d")) for day in days[::every]]
    y_ticks = []
    value = low
    while value <= high + step / 2:
        y_ticks.append(Tick(y(value), value_format(value)))
        value += step
    return LineChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=HEIGHT - BOTTOM,
        series=drawn,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        title=title,
    )


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power
