"""The review dashboard: Streamlit AppTest of the session page, and a real browser screenshot."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from analysis.dashboard.seek import moment_of_jump_key
from conftest import ARTIFACTS, ROOT, TEST_PASSPHRASE, dashboard_server, launch_chromium, listening_sockets, unlocked_app

APP = str(ROOT / "app.py")


@pytest.fixture
def app(sample_session, monkeypatch):
    store, session_id, _ = sample_session
    monkeypatch.setenv("PLAYBACK_STORE", str(store.root))
    return unlocked_app(), session_id          # the unlock page comes first


@pytest.mark.slow
def test_session_page_shows_video_timeline_moments_and_metrics(app):
    at, session_id = app
    assert at.title[0].value == f"Session {session_id}"
    assert "Alex, Sam" in at.caption[0].value
    assert [s.value for s in at.subheader][:3] == [s for s in [at.subheader[0].value] if s.startswith("Moments")] + ["Timeline", "Who talked, who interrupted"]
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Alex", "Sam"} and all(v.endswith("of talk") for v in metrics.values())
    markdown = " ".join(m.value for m in at.markdown)
    assert "Interruption" in markdown


@pytest.mark.slow
def test_every_threshold_is_listed_with_its_meaning(app):
    at, _ = app
    assert not any("recorded as" in t.value for t in at.table)       # drawn only when opened
    at.session_state["thresholds_panel"] = True                      # the therapist opens the panel
    at.run()
    thresholds = {name: row for t in at.table if "recorded as" in t.value
                  for name, row in zip(t.value["recorded as"], t.value.itertuples())}
    assert {"dynamics.turn_gap_s", "diarization.edge_extend_db", "diarization.edge_extend_s",
            "faces.sample_fps"} <= set(thresholds)
    assert not any(name.startswith("multitrack.") for name in thresholds)   # one microphone: not used
    assert thresholds["dynamics.turn_gap_s"].value.endswith(" s")
    assert all(row.meaning and not row.meaning.startswith("...") for row in thresholds.values())


@pytest.mark.slow
def test_choosing_a_moment_moves_the_video(app):
    at, _ = app
    jump = next(b for b in at.button if b.label.startswith("▶") and b.label != "▶ 0:00")
    jump.click().run()
    assert not at.exception
    position = at.session_state.position_s
    assert position > 0
    assert f"Playing from {position:.1f} s" in [c.value for c in at.caption]


@pytest.mark.slow
@pytest.mark.browser
def test_dashboard_in_headless_chromium(sample_session):
    from playwright.sync_api import sync_playwright

    store, session_id, _ = sample_session
    with dashboard_server(store.root, env={**os.environ, "PLAYBACK_STORE": str(store.root)}) as port:
        assert listening_sockets(port) == [f"0100007F:{port:04X}"]   # 127.0.0.1 only
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_label("Passphrase").fill(TEST_PASSPHRASE)
            page.get_by_role("button", name="Unlock").click()
            page.get_by_text(f"Session {session_id}").wait_for(timeout=60_000)
            page.get_by_text("Who talked, who interrupted").wait_for(timeout=60_000)
            page.wait_for_timeout(2500)  # let the chart draw
            page.locator("video").wait_for(timeout=60_000)      # the player can render after the charts
            assert page.locator("video").count() == 1
            assert page.locator("canvas, svg").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            video = page.locator("video")
            src = video.evaluate("v => v.currentSrc")
            assert src.startswith("http://127.0.0.1:") and "/media/" in src      # served by ranges, not a blob
            media_port = int(src.split(":")[2].split("/")[0])
            assert listening_sockets(media_port) == [f"0100007F:{media_port:04X}"]
            buttons = page.get_by_role("button", name="▶")
            assert buttons.count() >= 4
            label = buttons.nth(1).inner_text()                  # "▶ 0:35"
            minutes, seconds = label.split()[-1].split(":")
            # the browser moves the video in the click itself, before any word from the server
            moved = buttons.nth(1).evaluate("b => { b.click(); return document.querySelector('video').currentTime; }")
            assert moved == int(minutes) * 60 + int(seconds), (label, moved)
            page.get_by_text("Playing from").wait_for()
            page.wait_for_function("() => { const v = document.querySelector('video'); "
                                   "return v && v.readyState >= 1 && v.currentTime > 0; }", timeout=30_000)
            at = page.locator("video").evaluate("v => v.currentTime")
            assert abs(at - (int(minutes) * 60 + int(seconds))) <= 1.5, (label, at)
            # clicking the timeline's raised-voice bar (Sam, 40.6-49.8 s) plays from there
            chart = page.locator("[data-testid='stVegaLiteChart']").first
            pixels = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB")).astype(int)
            ys, xs = np.nonzero(np.all(np.abs(pixels - [0x8E, 0x44, 0xAD]) < 12, axis=2))   # its colour
            box = chart.bounding_box()
            page.mouse.click(box["x"] + int(xs.min()) + 5, box["y"] + int(np.median(ys)))
            page.wait_for_function("() => Math.abs(document.querySelector('video').currentTime - 40.6) < 1.5",
                                   timeout=30_000)
            # face boxes over the video: Alex's on the left half, Sam's on the right, in their colours
            page.get_by_text("Show face boxes").click()
            boxes = page.locator("canvas[data-testid='playbackFaceBoxes']")
            boxes.wait_for(state="attached", timeout=30_000)
            page.wait_for_function("() => { const v = document.querySelector('video'); return v.readyState >= 2; }",
                                   timeout=30_000)
            page.wait_for_timeout(500)
            drawn = boxes.evaluate("""c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const at = (r, g, b) => { const xs = []; for (let i = 0; i < d.length; i += 4) {
                    if (d[i + 3] > 200 && Math.abs(d[i] - r) < 8 && Math.abs(d[i + 1] - g) < 8 && Math.abs(d[i + 2] - b) < 8)
                        xs.push((i / 4) % c.width / c.width); } return xs; };
                const mean = xs => xs.length ? xs.reduce((a, b) => a + b) / xs.length : null;
                return {alex: mean(at(0x1b, 0x9e, 0x77)), sam: mean(at(0xd9, 0x5f, 0x02))}; }""")
            assert drawn["alex"] is not None and drawn["sam"] is not None, drawn
            assert drawn["alex"] < 0.5 < drawn["sam"], drawn
            page.screenshot(path=str(ARTIFACTS / "dashboard-face-boxes.png"))
            page.get_by_text("Show face boxes").click()                     # off: the boxes go
            boxes.wait_for(state="detached", timeout=30_000)
            browser.close()


@pytest.mark.slow
def test_therapist_confirms_dismisses_and_notes_moments(app, sample_session):
    from analysis.review import load_decisions

    at, session_id = app
    store = sample_session[0]
    jumps = [b for b in at.button if b.key and b.key.startswith("jump-")]
    first, second = (moment_of_jump_key(b.key) for b in jumps[:2])
    at.button(key=f"confirmed-{first}").click().run()
    at.button(key=f"dismissed-{second}").click().run()
    assert not at.exception, at.exception
    decisions = load_decisions(store, session_id)
    assert decisions[first]["decision"] == "confirmed" and decisions[second]["decision"] == "dismissed"
    keys = {b.key for b in at.button}
    shown = {moment_of_jump_key(k) for k in keys if k and k.startswith("jump-")}
    assert second not in shown and first in shown        # dismissed moments are hidden
    assert any("✓ confirmed" in m.value for m in at.markdown)
    at.toggle(key="show_dismissed").set_value(True).run()
    assert second in {moment_of_jump_key(b.key) for b in at.button if b.key and b.key.startswith("jump-")}
    assert not at.text_area                                          # note boxes are built when opened
    at.session_state[f"note-box-{first}"] = True                     # the therapist opens "Note"
    at.run()
    at.text_area(key=f"note-{first}").input("Ask Alex how this felt.").run()
    at.button(key=f"save-note-{first}").click().run()
    assert load_decisions(store, session_id)[first]["note"] == "Ask Alex how this felt."


def test_every_timeline_kind_has_a_colour_and_a_row():
    from analysis.core.events import TIMELINE_KINDS
    from analysis.dashboard.review import KIND_LAYERS, TIMELINE_GROUPS

    assert set(KIND_LAYERS) == set(TIMELINE_KINDS)
    assert {group for _, group in KIND_LAYERS.values()} <= set(TIMELINE_GROUPS)
    assert len({colour for colour, _ in KIND_LAYERS.values()}) == len(KIND_LAYERS)     # told apart by colour


def test_byte_ranges():
    from analysis.dashboard.media_server import byte_range

    assert byte_range(None, 1000) == (0, 999)
    assert byte_range("bytes=0-", 1000) == (0, 999)
    assert byte_range("bytes=100-199", 1000) == (100, 199)
    assert byte_range("bytes=900-5000", 1000) == (900, 999)
    assert byte_range("bytes=-10", 1000) == (990, 999)
    assert byte_range("bytes=1000-", 1000) is None and byte_range("bytes=5-2", 1000) is None
    assert byte_range("bytes=-", 1000) is None and byte_range("lines=1-2", 1000) is None


def test_media_server_serves_ranges_of_the_encrypted_recording_until_revoked(store):
    import urllib.error
    import urllib.request

    from analysis.dashboard.media_server import MediaServer
    from capture.ingest import import_media
    from conftest import SAMPLE

    session_id = import_media(store, SAMPLE / "session.mp4", "Alex,Sam")
    plain = (SAMPLE / "session.mp4").read_bytes()
    server = MediaServer()
    assert listening_sockets(server.port) == [f"0100007F:{server.port:04X}"]
    url = server.grant(store, session_id, store.manifest(session_id)["media"]["original"])

    def get(address, headers=None):
        with urllib.request.urlopen(urllib.request.Request(address, headers=headers or {}), timeout=10) as r:
            return r.status, dict(r.headers), r.read()

    status, headers, body = get(url, {"Range": "bytes=1048570-1048600"})      # across the first chunk end
    assert status == 206 and body == plain[1048570:1048601]
    assert headers["Content-Range"] == f"bytes 1048570-1048600/{len(plain)}" and headers["Content-Type"] == "video/mp4"
    assert get(url, {"Range": "bytes=-16"})[2] == plain[-16:]
    status, headers, body = get(url)
    assert status == 200 and body == plain and headers["Accept-Ranges"] == "bytes"
    for address, code in ((url + "x", 404), (url.rsplit("/", 1)[0] + "/guess", 404)):
        with pytest.raises(urllib.error.HTTPError) as caught:
            get(address)
        assert caught.value.code == code
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(url, {"Range": f"bytes={len(plain)}-"})
    assert caught.value.code == 416
    server.revoke([url])
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(url)
    assert caught.value.code == 404
    locked = server.grant(store, session_id, "media/original.mp4")
    store.lock()
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(locked)
    assert caught.value.code == 410


def test_agreement_per_kind_with_a_hand_computed_kappa():
    """20 s, 1 s slots. Tool interruptions at 2-4 s (confirmed), 10-12 s (dismissed) and 15-16 s
    (not reviewed: its slot is left out); the therapist added one at 6-8 s. Over 19 slots: both
    yes 2, tool only 2, therapist only 2, neither 13: kappa = (15/19 - 241/361) / (1 - 241/361) = 11/30."""
    import pandas as pd

    from analysis.review import agreement

    events = pd.DataFrame({"event_id": ["e1", "e2", "e3"], "kind": "interruption", "start_s": [2.0, 10.0, 15.0],
                           "end_s": [4.0, 12.0, 16.0]})
    decisions = {"e1": {"decision": "confirmed"}, "e2": {"decision": "dismissed"}}
    added = [{"kind": "interruption", "start_s": 6.0, "end_s": 8.0}]
    table = agreement([(events, decisions, added, 20.0)]).set_index("kind")
    row = table.loc["interruption"]
    assert (row.moments, row.confirmed, row.dismissed, row.not_reviewed, row.added, row.slots) == (3, 1, 1, 1, 1, 19)
    assert row.share_confirmed == 0.5 and row.kappa == pytest.approx(11 / 30)
    assert np.isnan(table.loc["silence"].kappa) and table.loc["silence"].moments == 0
    # two sessions pool their slots and counts
    both = agreement([(events, decisions, added, 20.0)] * 2).set_index("kind").loc["interruption"]
    assert both.moments == 6 and both.kappa == pytest.approx(11 / 30)


@pytest.mark.slow
def test_therapist_adds_a_missed_moment_and_sees_agreement(app, sample_session):
    from analysis.review import load_added

    at, session_id = app
    store = sample_session[0]
    at.session_state["agreement_panel"] = True                       # the agreement panel open
    at.text_input(key="add_start").input("0:12")
    at.text_input(key="add_end").input("15")
    at.selectbox(key="add_kind").set_value("interruption")
    at.multiselect(key="add_people").set_value(["p2"])
    at.button(key="FormSubmitter:add_moment-Add moment").click().run()
    assert not at.exception, at.exception
    added = load_added(store, session_id)
    assert [(a["start_s"], a["end_s"], a["kind"], a["participant_ids"]) for a in added][-1] == \
        (12.0, 15.0, "interruption", ["p2"])
    assert any("added by you — You marked this moment (Sam)." in m.value for m in at.markdown)
    assert [s.value for s in at.success] == ["Added: interruption, 0:12–0:15, showing Sam. It is now in the "
                                             "moments list."]
    shown = at.table[-2].value                                   # "This session"
    assert shown.loc["Interruption", "you added (missed)"] >= 1
    at.text_input(key="add_start").input("9:00")                 # past the end of an 84 s session
    at.text_input(key="add_end").input("9:05")
    at.button(key="FormSubmitter:add_moment-Add moment").click().run()
    assert not at.exception and [e.value for e in at.error] == ["The session is only 1:24 long."]
    assert len(load_added(store, session_id)) == len(added)


@pytest.mark.slow
def test_walkthrough_shows_picked_moments_without_notes_or_vetoed_ones(app, sample_session):
    """Pick three moments, note one, dismiss one; in the walkthrough a client vetoes the first:
    only the remaining picked moment is shown, in plain words, with no note, no confidence, no
    session list; the veto is audited by ids; leaving needs the passphrase."""
    from analysis.review import load_walkthrough

    at, session_id = app
    store = sample_session[0]
    ids = [moment_of_jump_key(b.key) for b in at.button if b.key and b.key.startswith("jump-")][:3]
    for moment_id in ids:
        at.checkbox(key=f"pick-{moment_id}").check().run()
    at.session_state[f"note-box-{ids[1]}"] = True
    at.run()
    at.text_area(key=f"note-{ids[1]}").input("Private: ask about the weekend.").run()
    at.button(key=f"save-note-{ids[1]}").click().run()
    at.button(key=f"dismissed-{ids[2]}").click().run()
    assert load_walkthrough(store, session_id)["picked"] == ids
    at.button(key="start_walkthrough").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Looking back together"
    assert "Moment 1 of 2" in [c.value for c in at.caption]
    first_intro = at.subheader[0].value
    veto = next(b for b in at.button if b.key and b.key.startswith(f"veto-{ids[0]}-"))
    veto.click().run()
    page = " ".join(str(e.value) for kind in (at.markdown, at.caption, at.subheader, at.title) for e in kind)
    assert "Moment 1 of 1" in page and at.subheader[0].value != first_intro
    assert "Private: ask about the weekend." not in page and "confidence" not in page
    assert not at.sidebar.radio                               # no session list, no page choice
    assert load_walkthrough(store, session_id)["vetoed"] == [ids[0]]
    events = [line for line in (store.root / "audit.log").read_text().splitlines() if '"veto"' in line]
    assert events and ids[0] in events[-1] and "Alex" not in events[-1] and "Sam" not in events[-1]
    at.button(key=f"watch-{ids[1]}").click().run()
    assert at.get("video")
    at.text_input(key="leave_pw").input("wrong passphrase")
    at.button(key="FormSubmitter:leave_walkthrough-Leave").click().run()
    assert at.title[0].value == "Looking back together"          # still the clients' screen
    at.text_input(key="leave_pw").input(TEST_PASSPHRASE)
    at.button(key="FormSubmitter:leave_walkthrough-Leave").click().run()
    assert at.title[0].value.startswith("Session ")


def test_times_are_typed_as_minutes_and_seconds():
    from analysis.review import parse_clock

    assert [parse_clock(t) for t in ("0:12", "12", "1:02.5", " 50:00 ", "1:00:05")] == [12.0, 12.0, 62.5, 3000.0, 3605.0]
    for bad in ("", "a:10", "1:75", "-3", "1::2", "1:2:3:4", "inf", "nan", "1:inf"):
        with pytest.raises(ValueError, match="minutes:seconds"):
            parse_clock(bad)


def test_face_boxes_are_thinned_per_person_and_leave_out_missing_faces():
    import pandas as pd

    from analysis.review import face_boxes

    t = np.round(np.arange(0, 10, 0.1), 2)                    # 10 samples a second for 10 s
    faces = pd.DataFrame({"participant_id": ["p1"] * len(t) + ["p2"] * len(t), "t_s": np.r_[t, t],
                          "detected": np.r_[np.ones(len(t), bool), t < 5], "face_x": 0.25, "face_y": 0.5,
                          "face_w": 0.1})
    boxes = face_boxes(faces, rate_hz=5.0)
    assert list(boxes.columns) == ["participant_id", "t_s", "x", "y", "w"]
    assert (boxes.participant_id == "p1").sum() == 50 and (boxes.participant_id == "p2").sum() == 25
    assert boxes[boxes.participant_id == "p2"].t_s.max() < 5.0            # no box where the face was not found


def test_every_face_moment_has_plain_words_for_the_clients():
    """The walkthrough introduces each expression and face moment in its own plain words: what
    was seen, never a reading of it (no contempt, stonewalling or "possible")."""
    from analysis.core.events import EXPRESSIONS, FACE_MOMENTS
    from analysis.review import INTROS

    for label in EXPRESSIONS + FACE_MOMENTS:
        assert label in INTROS, label
        words = INTROS[label].lower()
        assert not any(w in words for w in ("contempt", "stonewall", "possible", "anger", "sad", "disgust")), words


def test_a_name_cannot_close_the_face_box_script():
    from analysis.dashboard.face_boxes import overlay_html

    page = overlay_html({"src": "x", "people": [{"name": "</script><img src=x onerror=alert(1)>"}]})
    assert page.count("</script>") == 1 and page.rstrip().endswith("</script>")
