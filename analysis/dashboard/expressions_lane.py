"""The review page's expression lanes: each person's face signals over the timeline's window,
one thin row per signal, darker where the signal is stronger against their own neutral face.
Values come from :func:`analysis.review.expression_lanes`."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from analysis.dashboard.charts import LABEL_PX, clock_axis, draw_chart
from analysis.dashboard.memo import remembered
from analysis.review import Review, expression_lanes
from analysis.stages.expressions import SIGNALS
from capture.store import Store

# What each signal is called on the page (plain words, no verdicts).
SIGNAL_TITLES = {
    "smile": "smile", "one_sided_smile": "one-sided smile", "frown": "brows down, lips pressed",
    "sadness_like": "inner brows up / corners down", "surprise": "brows up, eyes wide", "disgust_like": "nose or upper lip raised",
    "eye_roll": "eyes up", "looking_away": "looking away", "nodding": "nodding", "mouth_activity": "mouth moving",
}
LANE_ROW_PX = 13        # height of one signal's row
LANE_CELLS = 200        # at most this many cells a row over the window


def expression_lane_chart(lanes: pd.DataFrame, position_s: float, window: tuple[float, float],
                          people: list[str]) -> alt.LayerChart | None:
    """Rows ``"name · signal"`` (people in the given order, signals in
    :data:`analysis.stages.expressions.SIGNALS` order) over ``window`` (s), at most
    :data:`LANE_CELLS` cells a row, each coloured by the strongest intensity (0-1) in it; the
    video position as a dashed rule. None when nobody's face was measured in the window."""
    shown = lanes[lanes.name.isin(people) & (lanes.t_s >= window[0]) & (lanes.t_s < window[1])]
    if shown.empty:
        return None
    # at most LANE_CELLS cells a row over the window, each its strongest point (charts stay small)
    cell_s = max((window[1] - window[0]) / LANE_CELLS, float(shown.t_s.diff().abs().replace(0, float("nan")).min() or 0.1))
    shown = shown.assign(cell=((shown.t_s - window[0]) // cell_s).astype(int)).groupby(
        ["name", "signal", "cell"], as_index=False).intensity.max()
    shown = shown.assign(t_s=window[0] + shown.cell * cell_s, end_s=window[0] + (shown.cell + 1) * cell_s,
                         row=shown.name + " · " + shown.signal.map(SIGNAL_TITLES))
    rows = [f"{name} · {SIGNAL_TITLES[s]}" for name in people for s in SIGNALS]
    x_scale = alt.Scale(domain=list(window), nice=False)
    cells = alt.Chart(shown).mark_rect(clip=True).encode(
        x=alt.X("t_s:Q", scale=x_scale, axis=clock_axis(window)), x2=alt.X2("end_s"),
        y=alt.Y("row:N", title=None, sort=rows, scale=alt.Scale(domain=rows),
                axis=alt.Axis(labelLimit=LABEL_PX, minExtent=LABEL_PX, labelFontSize=11, labelOverlap=False)),
        # no legend, so the plot lines up with the timeline above; the caption says what dark means
        color=alt.Color("intensity:Q", legend=None, scale=alt.Scale(domain=[0, 1], range=["#f7fbfb", "#1b6f66"])),
        tooltip=[alt.Tooltip("name:N"), alt.Tooltip("signal:N"), alt.Tooltip("t_s:Q", title="at (s)", format=".1f"),
                 alt.Tooltip("intensity:Q", title="intensity (0-1)", format=".2f")])
    cursor = alt.Chart(pd.DataFrame({"t": [position_s]})).mark_rule(color="black", strokeDash=[4, 3], clip=True).encode(
        x=alt.X("t:Q", scale=x_scale))
    return alt.layer(cells, cursor, height=LANE_ROW_PX * len(rows))


def expression_lanes_panel(store: Store, review: Review, position_s: float, window: tuple[float, float],
                           people: list[str] | None) -> None:
    """The expression lanes under the timeline, for the people chosen there (default all), drawn
    when the therapist opens them: a 50-minute group session has 60 lanes, which would cost the
    page's first render about a second to decode and draw."""
    panel = st.expander("Face signals (each person against their own neutral face, in the timeline's window)",
                        key="face_lanes", on_change="rerun")
    if not panel.open:
        return
    with panel:
        lanes = remembered(store, review.session_id, "expression_lanes",
                           ["derived/expression_signals.parquet", "manifest.json"],
                           lambda: expression_lanes(store, review.session_id, review.names))
        names = [n for n in review.names.values() if people is None or n in people]
        chart = expression_lane_chart(lanes, position_s, window, names)
        if chart is None:
            st.caption("No face was analysed here.")
            return
        draw_chart(chart, width="stretch", height=int(chart.height) + 60)
        st.caption("Darker: stronger than the person's own neutral face (white: as usual; darkest: the strongest "
                   "the signal goes). Gaps: no face found (not measured, not neutral). A face signal is not a "
                   "feeling: ask the person.")
