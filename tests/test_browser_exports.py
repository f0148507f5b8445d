"""In headless Chromium: a case's trends over three sessions, the take-home summary (refused
while someone lacks the take-home scope, then downloaded as HTML and PDF), an ELAN export
that parses, and a moment confirmed and another dismissed. Sessions are synthetic (analysis.evaluation.synthetic_review: no models needed)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from analysis.evaluation.synthetic_review import synthetic_store_session
from analysis.review import load_decisions
from capture.consent import SCOPES, make_record, write_consent
from capture.store import Store
from conftest import ARTIFACTS, TEST_PASSPHRASE, dashboard_server, launch_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHARTS_DRAWN = ("() => { const c = document.querySelectorAll(\"[data-testid='stVegaLiteChart']\");"
                " return c.length >= %d && [...c].every(e => e.querySelector('canvas, svg')); }")
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def confirm_passphrase(page, form_text: str) -> None:
    form = page.locator("[data-testid='stForm']").filter(has_text=form_text)
    form.get_by_label("Passphrase").fill(TEST_PASSPHRASE)
    form.get_by_role("button", name=re.compile("^Confirm")).click()
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE, timeout=60_000)


def test_trends_take_home_and_eaf_in_the_browser(tmp_path):
    import pympi

    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    case = store.cases.create("Alex & Sam", ["Alex", "Sam"])
    ids = [synthetic_store_session(store, tmp_path, ["Alex", "Sam"], duration_s=600.0) for _ in range(3)]
    for sid in ids:
        store.cases.assign(sid, case.case_id)
    refused, allowed = ids[0], ids[2]
    write_consent(store, allowed, [make_record(pid, list(SCOPES), method="test") for pid in ("p1", "p2")])
    env = {k: v for k, v in os.environ.items() if k != "PLAYBACK_PASSPHRASE"}
    with dashboard_server(store.root, env=env) as port:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_label("Passphrase").fill(TEST_PASSPHRASE)
            page.get_by_role("button", name="Unlock").click()
            page.get_by_text("Who talked, who interrupted").wait_for(timeout=120_000)

            # trends of the case over its three sessions
            page.get_by_text("Sessions", exact=True).first.click()
            page.get_by_text("Cases and sessions").wait_for(timeout=60_000)
            page.get_by_text("Trends across sessions").click()
            page.get_by_text("Share of the talking").wait_for(timeout=60_000)
            page.wait_for_function(CHARTS_DRAWN % 5, timeout=60_000)
            assert page.get_by_text("Open review").count() == 3
            page.screenshot(path=str(ARTIFACTS / "sessions-trends.png"), full_page=True)

            # the take-home summary: refused while someone lacks the scope
            page.get_by_text("Review", exact=True).first.click()
            page.get_by_text(refused, exact=False).first.click()
            page.get_by_text(f"Session {refused}").wait_for(timeout=60_000)
            page.get_by_text("Take-home summary for the clients").click()
            page.get_by_text("not agreed", exact=False).wait_for(timeout=30_000)
            # ... and made once everyone gave it, after the passphrase again
            page.get_by_text(allowed, exact=False).first.click()
            page.get_by_text(f"Session {allowed}").wait_for(timeout=60_000)
            page.wait_for_function(IDLE, timeout=60_000)
            page.wait_for_timeout(1000)
            if not page.get_by_role("button", name="Confirm take-home copy").is_visible():   # the expander is shut
                page.get_by_text("Take-home summary for the clients").click()
            confirm_passphrase(page, "take-home copy")
            with page.expect_download() as html_download:
                page.get_by_role("button", name="Download the summary (HTML)").click()
            html = Path(html_download.value.path()).read_text()
            assert "Alex" in html and "Sam" in html and "http://" not in html and "https://" not in html
            with page.expect_download() as pdf_download:
                page.get_by_role("button", name="Download the summary (PDF)").click()
            assert Path(pdf_download.value.path()).read_bytes().startswith(b"%PDF-")
            page.screenshot(path=str(ARTIFACTS / "take-home.png"), full_page=True)

            # an ELAN file for researchers, after the passphrase again
            page.get_by_role("button", name="Export…").click()
            page.wait_for_function(IDLE, timeout=60_000)
            confirm_passphrase(page, "to export session")
            page.get_by_text("ELAN annotations (EAF)").click()
            page.wait_for_function(IDLE, timeout=60_000)
            with page.expect_download() as eaf_download:
                page.get_by_role("button", name="Download ELAN annotations (EAF)").click()
            eaf = pympi.Elan.Eaf(eaf_download.value.path())
            tiers = eaf.get_tier_names()
            assert any("Alex" in t for t in tiers) and any("Sam" in t for t in tiers), tiers

            # confirm one moment and dismiss another, in the moments list
            page.get_by_role("button", name="✓").first.click()
            page.wait_for_timeout(500)
            page.wait_for_function(IDLE, timeout=60_000)
            page.get_by_role("button", name="✗").nth(1).click()
            page.wait_for_timeout(500)
            page.wait_for_function(IDLE, timeout=60_000)
            browser.close()
    decisions = [d["decision"] for d in load_decisions(store, allowed).values()]
    assert sorted(decisions) == ["confirmed", "dismissed"], decisions
    actions = [(e["action"], e["detail"]) for e in store.audit_log.entries()]
    assert ("export", "takehome_html") in actions and ("export", "takehome_pdf") in actions
    assert ("export", "eaf") in actions
