"""Seeking the review page's video in the browser, at the click, without waiting for the server.

One click listener on the page (:func:`install_client_seek`) moves the page's ``<video>`` as the
click happens:
- a moment's ▶ button carries its time in its key (:func:`jump_key`: ``jump-<id>-at-<ms>``,
  which Streamlit turns into the class ``st-key-jump-<id>-at-<ms>`` around the button);
- a bar of the timeline or the whole-session strip (charts keyed ``timeline-…`` and
  ``overview-…``) is read from its tooltip, which the pointer has just opened: its "from (s)" or
  "at (s)" row. Without a tooltip (a touch screen) the server's answer moves the video instead.
The server's rerun that follows keeps the page's state (position, window, the moments' page)
in step and asks for the same whole second, so the video does not jump back.
"""
from __future__ import annotations

import streamlit as st

# Runs in the page itself (st.html, not an iframe); installed once per page load.
_LISTENER = """
<script>
(function () {
  if (window.__playbackClientSeek) { return; }
  window.__playbackClientSeek = true;
  function hoveredStart() {              // the "from (s)" / "at (s)" row of the bar's tooltip
    const tip = document.getElementById("vg-tooltip-element");
    if (!tip || !tip.classList.contains("visible")) { return null; }
    for (const row of tip.querySelectorAll("tr")) {
      const key = row.querySelector(".key"), value = row.querySelector(".value");
      if (key && value && /^(from|at) \\(s\\)$/.test(key.textContent.trim())) { return parseFloat(value.textContent); }
    }
    return null;
  }
  document.addEventListener("click", function (event) {
    const video = document.querySelector("video");
    const target = event.target;
    if (!video || !target.closest) { return; }
    let at = null;
    const button = target.closest("[class*='st-key-jump-']");
    if (button) {
      const found = /st-key-jump-\\S*-at-(\\d+)/.exec(button.className);
      at = found ? Number(found[1]) / 1000 : null;
    } else if (target.closest("[class*='st-key-timeline-'], [class*='st-key-overview-']")) {
      at = hoveredStart();
    }
    if (at === null || !isFinite(at)) { return; }
    video.currentTime = Math.floor(at);   // the whole second the server's st.video will ask for too
  }, true);
})();
</script>
"""


def jump_key(moment_id: str, t_s: float) -> str:
    """The widget key of a moment's ▶ button: the moment's id and its start in whole ms."""
    return f"jump-{moment_id}-at-{int(round(t_s * 1000))}"


def moment_of_jump_key(key: str) -> str:
    """The moment id inside a ▶ button's key (the inverse of :func:`jump_key`)."""
    return key.removeprefix("jump-").rsplit("-at-", 1)[0]


def install_client_seek() -> None:
    """Put the page's click listener for ▶ buttons in place (a no-op after the first time)."""
    st.html(_LISTENER, unsafe_allow_javascript=True)
