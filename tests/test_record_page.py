"""The dashboard's Record page: the consent step gates Start; a simulated recording shows the
indicator and can be stopped; and a real-browser screenshot of the consent step."""
from __future__ import annotations

import os

import pytest

from conftest import ARTIFACTS, ROOT, TEST_PASSPHRASE, dashboard_server, launch_chromium, unlocked_app

APP = str(ROOT / "app.py")


@pytest.fixture
def record_page(store, monkeypatch):
    store.list_sessions()
    monkeypatch.setenv("PLAYBACK_STORE", str(store.root))
    return unlocked_app("Record")


def _tick(at, name, scopes):
    for scope in scopes:
        at.checkbox(key=f"rec_scope_{name}_{scope}").check()
    at.run()


def test_start_is_disabled_until_everyone_consented_then_records(record_page, store):
    at = record_page
    assert at.title[0].value == "Record a session"
    at.text_input(key="rec_people").input("Alex, Sam").run()
    boxes = [c for c in at.checkbox if c.key.startswith("rec_scope_")]
    assert len(boxes) == 12 and not any(c.value for c in boxes)          # nothing pre-ticked
    assert at.button(key="rec_start").disabled
    _tick(at, "Alex", ["record_audio", "record_video", "analyse_voice", "analyse_face"])
    assert at.button(key="rec_start").disabled
    assert any("Sam (no consent yet)" in e.value for e in at.error)
    _tick(at, "Sam", ["record_audio", "record_video"])
    assert not at.button(key="rec_start").disabled
    assert store.list_sessions() == []
    at.button(key="rec_start").click().run()
    assert not at.exception, at.exception
    assert any("RECORDING" in m.value for m in at.markdown)              # the indicator (C5)
    [row] = store.list_sessions()
    assert row.status == "recording"
    import time

    time.sleep(1.0)
    at.button(key="rec_stop").click().run()
    assert not at.exception, at.exception
    assert store.session_row(row.session_id).status == "analysed"      # analysed live, finished at Stop
    assert any("Recorded" in s.value and "after Stop" in s.value for s in at.success)


def test_a_recording_goes_into_the_chosen_case(record_page, store):
    case = store.cases.create("The Rivers", ["Alex", "Sam"])
    at = record_page.run()
    at.selectbox(key="rec_case").set_value(case.case_id).run()
    assert at.text_input(key="rec_people").value == "Alex, Sam"          # the case's people, filled in
    _tick(at, "Alex", ["record_audio", "record_video"])
    _tick(at, "Sam", ["record_audio", "record_video"])
    at.checkbox(key="rec_live").uncheck().run()                          # only record, analyse later
    at.button(key="rec_start").click().run()
    assert not at.exception, at.exception
    [row] = store.list_sessions()
    assert [r.session_id for r in store.cases.sessions(case.case_id)] == [row.session_id]
    at.button(key="rec_stop").click().run()
    assert store.session_row(row.session_id).status == "recorded"


@pytest.mark.slow
@pytest.mark.browser
def test_record_page_screenshot(store):
    from playwright.sync_api import sync_playwright

    store.list_sessions()
    with dashboard_server(store.root, env=os.environ.copy()) as port:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_label("Passphrase").fill(TEST_PASSPHRASE)
            page.get_by_role("button", name="Unlock").click()
            page.get_by_text("Record", exact=True).click()
            page.get_by_text("Record a session").wait_for(timeout=60_000)
            people = page.get_by_label("Everyone present, left to right as the camera sees them")
            people.fill("Alex, Sam")
            people.press("Enter")
            page.get_by_text("2 · Consent, from each person").wait_for(timeout=30_000)
            page.wait_for_timeout(1000)
            for label in ("Record my voice (audio)", "Record my image (video)",
                          "Analyse my voice (who spoke when, tone), and keep my spoken consent as my voice sample",
                          "Analyse my face (expressions, head movement)"):
                page.get_by_text(label, exact=True).first.click()
                page.wait_for_timeout(400)
            page.get_by_text("Sam (no consent yet)").first.wait_for(timeout=30_000)
            start = page.get_by_role("button", name="Start recording")
            assert start.is_disabled()
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / "record_page.png"), full_page=True)
            browser.close()
    assert store.list_sessions() == []
