"""What every time plot of the review page shares, so that their times line up: the room for
row names on the left and the m:ss time axis."""
from __future__ import annotations

import altair as alt
import numpy as np

LABEL_PX = 230          # room for the row names on the left of every time plot, so their times line up


def clock_axis(window: tuple[float, float], title: str | None = "time (m:ss)") -> alt.Axis:
    """A time axis (values in s) labelled m:ss, with ticks at a round step for the window."""
    span = window[1] - window[0]
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800) if span / s <= 12), 3600)
    ticks = [float(t) for t in np.arange(np.ceil(window[0] / step) * step, window[1] + 1e-9, step)]
    return alt.Axis(title=title, values=ticks, labelExpr="floor(datum.value / 60) + ':' + "
                                                          "format(floor(datum.value % 60), '02d')")
