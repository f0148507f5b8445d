"""What every time plot of the review page shares, so that their times line up: the room for
row names on the left and the m:ss time axis, and how a chart is sent to the page."""
from __future__ import annotations

import functools

import altair as alt
import numpy as np
import streamlit as st

# Altair checks every object against the schema as it is made ("debug mode"): about 0.1 s a
# review page. Off here; draw_chart's docstring says how the charts are still checked.
alt.utils.schemapi.disable_debug_mode()

LABEL_PX = 230          # room for the row names on the left of every time plot, so their times line up


def clock_axis(window: tuple[float, float], title: str | None = "time (m:ss)") -> alt.Axis:
    """A time axis (values in s) labelled m:ss, with ticks at a round step for the window."""
    span = window[1] - window[0]
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800) if span / s <= 12), 3600)
    ticks = [float(t) for t in np.arange(np.ceil(window[0] / step) * step, window[1] + 1e-9, step)]
    return alt.Axis(title=title, values=ticks, labelExpr="floor(datum.value / 60) + ':' + "
                                                          "format(floor(datum.value % 60), '02d')")


def draw_chart(chart: alt.TopLevelMixin, where=st, **kwargs):
    """``where.altair_chart(chart, **kwargs)`` without Altair's JSON-schema check of the whole
    spec, which costs about 0.5 s a review page at 50 minutes and 6 people; the tests check every
    chart the page draws against the schema (``chart.to_dict()``). Returns what Streamlit returns
    (the selection, with ``on_select``)."""
    object.__setattr__(chart, "to_dict", functools.partial(type(chart).to_dict, chart, validate=False))
    return where.altair_chart(chart, **kwargs)
