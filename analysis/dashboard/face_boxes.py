"""The player's face-box overlay: a box and a name on each face the analysis found, drawn in the
browser over the page's ``<video>`` at its current time, so the therapist can check who the
tool took for whom. Boxes are sent for the 10-minute block around the position the page last
had (30 s either side; a few thousand boxes at most) and follow the video while it plays inside
it; beyond it the overlay says the boxes are not loaded there (a click on a moment or the
timeline loads them). Inside it, a face not found has no box (missing, never guessed)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from analysis.dashboard.memo import remembered
from analysis.review import BOX_RATE_HZ, Review, load_face_boxes
from capture.store import Store

BLOCK_S = 600.0          # boxes are sent for the 10-minute block around the video's position (s)
MAX_BOXES = 4000         # at most this many boxes in one block, over all people
DARK2 = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]  # as person_colours

# Runs in the page; the data line changes, the drawing loop is installed once per page load.
_OVERLAY = """
<script>
window.__playbackFaceBoxes = %s;
(function () {
  if (window.__playbackFaceBoxLoop) { return; }
  window.__playbackFaceBoxLoop = true;
  let canvas = null;
  function at(times, t) {                  // index of the last sample at or before t, or -1
    let lo = 0, hi = times.length - 1, found = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (times[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; } }
    return found;
  }
  function draw(video, data) {
    const width = video.clientWidth, height = video.clientHeight;
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    canvas.style.left = video.offsetLeft + "px"; canvas.style.top = video.offsetTop + "px";
    const pen = canvas.getContext("2d");
    pen.clearRect(0, 0, width, height);
    if (!video.videoWidth) { return; }
    const scale = Math.min(width / video.videoWidth, height / video.videoHeight);
    const left = (width - video.videoWidth * scale) / 2, top = (height - video.videoHeight * scale) / 2;
    const now = video.currentTime;
    if (now < data.from_s || now > data.to_s) {        // outside the boxes sent: say so, never "no face"
      pen.font = "bold 14px sans-serif"; pen.fillStyle = "rgba(0, 0, 0, 0.6)";
      pen.fillRect(8, 8, 330, 24); pen.fillStyle = "white";
      pen.fillText("Face boxes not loaded here: press ▶ on a moment", 14, 25);
      return;
    }
    for (const person of data.people) {
      const i = at(person.t, now);
      if (i < 0 || now - person.t[i] > data.gap_s) { continue; }
      let x = person.x[i], y = person.y[i], w = person.w[i];
      const j = i + 1;
      if (j < person.t.length && person.t[j] - person.t[i] <= data.gap_s) {     // between two samples
        const f = (now - person.t[i]) / (person.t[j] - person.t[i]);
        x += f * (person.x[j] - x); y += f * (person.y[j] - y); w += f * (person.w[j] - w);
      }
      const boxW = w * video.videoWidth * scale * 1.2, boxH = boxW * 1.3;
      const cx = left + x * video.videoWidth * scale, cy = top + y * video.videoHeight * scale;
      pen.strokeStyle = person.colour; pen.lineWidth = 3;
      pen.strokeRect(cx - boxW / 2, cy - boxH / 2, boxW, boxH);
      pen.font = "bold 14px sans-serif";
      let label = person.name;                 // as much of the name as the box is wide
      if (pen.measureText(label).width + 10 > boxW) { label = label.split(" ")[0]; }
      while (label.length > 1 && pen.measureText(label + "…").width + 10 > boxW) { label = label.slice(0, -1); }
      if (label !== person.name && !person.name.startsWith(label + " ")) { label += "…"; }
      const labelW = Math.min(pen.measureText(label).width + 10, Math.max(boxW, 24));
      pen.fillStyle = person.colour; pen.fillRect(cx - boxW / 2, cy - boxH / 2 - 22, labelW, 22);
      pen.fillStyle = "white"; pen.fillText(label, cx - boxW / 2 + 5, cy - boxH / 2 - 6);
    }
  }
  function frame() {
    const data = window.__playbackFaceBoxes;
    // only over the session's own video (never the clients' walkthrough clip, which has other times)
    const video = data ? [...document.querySelectorAll("video")].find(v => v.currentSrc === data.src) : null;
    if (canvas && (!data || !video || canvas.parentElement !== video.parentElement)) { canvas.remove(); canvas = null; }
    if (video && data) {
      if (!canvas) {
        canvas = document.createElement("canvas");
        canvas.setAttribute("data-testid", "playbackFaceBoxes");
        canvas.style.cssText = "position:absolute;pointer-events:none;";
        if (getComputedStyle(video.parentElement).position === "static") { video.parentElement.style.position = "relative"; }
        video.parentElement.appendChild(canvas);
      }
      draw(video, data);
    }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})();
</script>
"""


def overlay_data(review: Review, boxes: pd.DataFrame, position_s: float, src: str) -> dict:
    """The ``boxes`` (:func:`analysis.review.face_boxes`) of the 10-minute block around
    ``position_s`` (s, with 30 s either side) as the page's script reads them, for the video
    playing ``src`` only: per person ``name, colour`` and arrays ``t`` (s), ``x, y, w`` (shares of
    the frame), thinned evenly to :data:`MAX_BOXES` in all."""
    start = np.floor(position_s / BLOCK_S) * BLOCK_S - 30.0
    boxes = boxes[(boxes.t_s >= start) & (boxes.t_s <= start + BLOCK_S + 60.0)]
    step = max(1, int(np.ceil(len(boxes) / MAX_BOXES)))
    colours = {pid: DARK2[i % len(DARK2)] for i, pid in enumerate(review.names)}
    people = []
    for pid, mine in boxes.groupby("participant_id", sort=False):
        mine = mine.sort_values("t_s").iloc[::step]
        people.append({"name": review.names.get(pid, pid), "colour": colours.get(pid, "#333333"),
                       "t": [round(float(v), 2) for v in mine.t_s],
                       **{k: [round(float(v), 4) for v in mine[k]] for k in ("x", "y", "w")}})
    # a box is drawn up to this long after its sample (s): longer gaps are a face not found
    return {"src": src, "people": people, "from_s": float(start), "to_s": float(start + BLOCK_S + 60.0),
            "gap_s": round(max(1.5 * step / BOX_RATE_HZ, 0.5), 2)}


def forget_in_browser() -> None:
    """Drop the boxes (with names) from the page in the browser (the dashboard locked)."""
    st.html("<script>window.__playbackFaceBoxes = null;</script>", unsafe_allow_javascript=True)


def face_box_toggle(store: Store, review: Review, position_s: float, src: str) -> None:
    """"Show face boxes" under the player of ``src`` (its URL) when a face was found; on: the
    overlay with the boxes around ``position_s`` (the boxes are read then, not before)."""
    if not review.has_video or not any(review.face_coverage.values()):
        return
    shown = st.toggle("Show face boxes", key="show_face_boxes",
                      help="A box and the name on each face the analysis found: who it took for whom")
    data = None
    if shown:
        boxes = remembered(store, review.session_id, "face_boxes", ["derived/faces.parquet"],
                           lambda: load_face_boxes(store, review.session_id))
        data = overlay_data(review, boxes, position_s, src)
    st.html(overlay_html(data), unsafe_allow_javascript=True)


def overlay_html(data: dict | None) -> str:
    """The overlay's script with ``data`` in it; "</" is written "<\\/" so that no name can
    close the script."""
    return _OVERLAY % json.dumps(data).replace("</", "<\\/")

