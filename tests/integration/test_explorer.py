"""The explorer page of a real daemon on the session devnet, driven in headless Chromium (Debian's chromium and
chromedriver, through selenium): the message table, search, chain cards, charts, a live update without reload,
a screenshot, no console errors, and a daemon that stops promptly with the page's event stream still open."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.message import address_to_bytes32
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    all_delivered_once,
    dispatch_spread,
    free_port_block,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver"
# set RELAYER_EXPLORER_SCREENSHOT=/some/dir/explorer.png to keep a copy of the screenshots outside tmp_path
NOTES_COPY = Path(os.environ["RELAYER_EXPLORER_SCREENSHOT"]) if os.environ.get("RELAYER_EXPLORER_SCREENSHOT") else None
WIDTH = 1440
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--force-device-scale-factor=1", "--hide-scrollbars", f"--window-size={WIDTH},1000"]


@contextlib.contextmanager
def headless_chromium(prefix: str) -> Iterator[Any]:
    """A selenium driver of Debian's headless Chromium with a throw-away profile, its console logged; missing
    Chromium fails the test in CI (``.ci/run`` installs it) and skips it elsewhere."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing; .ci/run installs them with: {INSTALL}")
        pytest.skip(f"headless Chromium is not installed; install it with: {INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix=prefix)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[object]:
    with headless_chromium("explorer-chromium-") as driver:
        yield driver


def js(driver, script: str, *args):  # type: ignore[no-untyped-def]
    return driver.execute_script(script, *args)


def rows(driver) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """id -> state of every row of the message table."""
    return js(driver, "return Object.fromEntries([...document.querySelectorAll('#messages tbody tr[data-id]')]"
                      ".map(tr => [tr.dataset.id, tr.dataset.state]))")


def search(driver, text: str) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "search")
    box.clear()
    box.send_keys(text)
    js(driver, "document.getElementById('search-status').textContent = ''")
    driver.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    wait_for(lambda: (js(driver, "return document.getElementById('search-status').textContent")
                      not in ("", "searching…")),
             30, f"the search for {text[:20]!r} to answer")
    return js(driver, "return document.getElementById('search-status').textContent")


def copy_for_the_notes(shot: Path, target: Path | None) -> None:
    """A copy where people look at it, when asked for; the test's own copy is in tmp_path."""
    if target is not None and target.parent.is_dir() and os.access(target.parent, os.W_OK):
        shutil.copyfile(shot, target)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


async def test_explorer_page_in_headless_chromium(devnet, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    client = DevnetClient(devnet)
    await client.mark()
    daemon = DaemonProcess(write_daemon_config(devnet, tmp_path, api_port=free_port_block(1)), tmp_path / "d.log",
                           instance="explorer").start()
    api = daemon.api_url
    timings: dict[str, float] = {}
    try:
        t = time.monotonic()
        ids = ["0x" + i.hex() for i in await dispatch_spread(client, per_route=3)]
        await all_delivered_once(client, [bytes.fromhex(i[2:]) for i in ids], timeout=180)

        def store_has_them_delivered() -> bool:
            return all(httpx.get(f"{api}/v1/messages/{i}", timeout=5).json()["messages"][0]["state"] == "DELIVERED"
                       for i in ids)

        wait_for(store_has_them_delivered, 60, "the daemon's store to show every message DELIVERED", interval=0.5)
        timings["deliver 18 messages"] = time.monotonic() - t
        assert httpx.get(f"{api}/", follow_redirects=False).headers["location"] == "/explorer"

        t = time.monotonic()
        driver.get(f"{api}/explorer?theme=dark")
        wait_for(lambda: js(driver, "return document.body.dataset.ready === 'true'"), 30, "the page to load its data")
        js(driver, "window.__samePage = 'not reloaded'")

        # the table lists the delivered messages (other tests' messages on the shared devnet may come first)
        def listed() -> bool:
            shown = rows(driver)
            if all(shown.get(i) == "DELIVERED" for i in ids):
                return True
            js(driver, "const b = document.getElementById('more'); if (!b.hidden) b.click()")
            return False

        wait_for(listed, 60, "the 18 messages listed as DELIVERED", interval=0.5)
        timings["page: table listed"] = time.monotonic() - t

        # chain cards: the three chains, up, with a height
        def cards() -> dict[str, dict[str, str]]:
            return js(driver, """return Object.fromEntries([...document.querySelectorAll('#chains article.card')].map(c =>
                [c.dataset.chain, {healthy: c.dataset.healthy, height: c.querySelector('[data-field=height] .v').textContent,
                 utilisation: c.querySelector('[data-field=utilisation] .v').textContent,
                 spare: c.querySelector('[data-field=spare] .v').textContent}]))""")  # noqa: E501 (JavaScript kept as is)

        wait_for(lambda: set(cards()) == {"l1", "rollup_a", "rollup_b"}
                 and all(c["healthy"] == "true" and c["height"] != "—" and c["spare"] != "—" for c in cards().values()),
                 60, "three healthy chain cards with heights and spare capacity")

        # charts drew: bars of deliveries, utilisation lines, queue samples; and pixels on the canvases
        def charts_drawn() -> bool:
            d = js(driver, """const c = id => document.getElementById(id).dataset;
                return {bars: +(c('chart-throughput').bars || 0), total: +(c('chart-throughput').total || 0),
                        points: +(c('chart-utilisation').points || 0), rounds: +(c('chart-queue').rounds || 0)}""")
            return d["bars"] > 0 and d["total"] >= len(ids) and d["points"] > 3 and d["rounds"] > 1

        wait_for(charts_drawn, 60, "the throughput, utilisation and queue charts to draw", interval=0.5)
        painted = js(driver, """return ['chart-throughput', 'chart-queue', 'chart-utilisation'].map(id => {
            const c = document.getElementById(id); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })""")  # noqa: E501
        assert all(n > 500 for n in painted), painted
        # the other views of the same two charts: dispatches per origin, spare capacity per chain
        Select(driver.find_element(By.ID, "throughput-kind")).select_by_value("dispatched")
        Select(driver.find_element(By.ID, "capacity-kind")).select_by_value("spare_transfers_per_s")
        wait_for(lambda: js(driver, """const t = document.getElementById('chart-throughput').dataset,
                                          c = document.getElementById('chart-utilisation').dataset;
                                    return t.kind === 'dispatched' && +t.bars > 0 && c.metric === 'spare_transfers_per_s'
                                           && +c.points > 3"""), 30, "dispatches per origin and spare capacity drawn")  # noqa: E501
        print("explorer: dispatched per origin in the window:",
              httpx.get(f"{api}/v1/explorer/throughput", params={"window_s": 900}).json()["totals"]["dispatched"])
        Select(driver.find_element(By.ID, "throughput-kind")).select_by_value("delivered")
        Select(driver.find_element(By.ID, "capacity-kind")).select_by_value("utilisation")

        # search by message id, then by its origin transaction hash
        target = ids[0]
        (record,) = httpx.get(f"{api}/v1/messages/{target}").json()["messages"]
        status = search(driver, target)
        assert "1 message for message id" in status, status
        assert rows(driver) == {target: "DELIVERED"}
        wait_for(lambda: js(driver, "return document.getElementById('detail-body').dataset.id") == target, 30,
                 "the detail panel of the message")
        steps = js(driver,
                   "return [...document.querySelectorAll('#detail-body .timeline li')].map(li => li.dataset.step)")
        assert steps[0] == "dispatched" and "submitted" in steps and steps[-1] == "delivered", steps
        same_tx = httpx.get(f"{api}/v1/messages/{record['origin_tx']}").json()["messages"]
        status = search(driver, record["origin_tx"])
        assert "origin transaction" in status and f"{len(same_tx)} message" in status, status
        assert target in rows(driver) and len(rows(driver)) == len(same_tx)
        # and by its delivery transaction
        status = search(driver, record["delivery_tx"])
        assert "delivery transaction" in status and target in rows(driver), status
        # bad searches say what is wrong
        assert "not a 32-byte hex" in search(driver, "0xnothex")
        assert "not found" in search(driver, "0x" + "ab" * 32)
        driver.find_element(By.ID, "search-clear").click()
        wait_for(lambda: len(rows(driver)) >= len(ids), 30, "the full list after clearing the search")

        # live: a NEW message appears and reaches DELIVERED on the page without a reload
        t = time.monotonic()
        recipient = address_to_bytes32(client.manifest["chains"]["rollup_b"]["contracts"]["test_recipient"])
        _tx, (new_id,) = await client.adapters["l1"].dispatch_messages(client.key("l1"), client.domain("rollup_b"),
                                                                       recipient, [b"explorer live update"])
        new = "0x" + new_id.hex()
        wait_for(lambda: new in rows(driver), 90, "the new message to appear on the page", interval=0.25)
        timings["live: new message shown"] = time.monotonic() - t
        wait_for(lambda: rows(driver).get(new) == "DELIVERED", 120, "the new message to turn DELIVERED on the page",
                 interval=0.25)
        timings["live: new message delivered"] = time.monotonic() - t
        assert js(driver, "return window.__samePage") == "not reloaded"
        assert js(driver, "return document.getElementById('live').dataset.mode") == "live"
        driver.find_element(By.CSS_SELECTOR, f"#messages tbody tr[data-id='{new}']").click()
        wait_for(lambda: js(driver, "return document.getElementById('detail-body').dataset.id") == new, 30,
                 "the detail panel of the new message")

        # the header's counts follow the chain samples (every 2 s): nothing open, everything delivered
        def summary() -> dict[str, int]:
            return js(driver, "return Object.fromEntries([...document.querySelectorAll('#summary .pill')]"
                              ".map(p => [p.dataset.state, +p.querySelector('b').textContent.replace(/\\D/g, '')]))")

        delivered_in_store = sum(by_state.get("DELIVERED", 0)
                                 for by_state in httpx.get(f"{api}/v1/status").json()["messages"].values())
        assert delivered_in_store >= len(ids) + 1
        wait_for(lambda: summary().get("DELIVERED", 0) >= delivered_in_store, 30,
                 "the header to count the new delivery")

        # screenshot of the whole page, at the page's full height
        for _ in range(3):  # the window's frame takes some of its height: grow until the page fits
            height = js(driver, "return Math.ceil(document.documentElement.scrollHeight)")
            inner = js(driver, "return window.innerHeight")
            if inner >= height:
                break
            size = driver.get_window_size()
            driver.set_window_size(WIDTH, size["height"] + height - inner)
            with contextlib.suppress(AssertionError):  # a window at the screen's limit stays; the page is then cut
                wait_for(lambda: js(driver, "return window.innerHeight") != inner, 5, "the window to resize")
        inner = js(driver, "return window.innerHeight")
        assert js(driver, "return window.innerWidth") == WIDTH
        js(driver, "window.scrollTo(0, 0)")
        shot = tmp_path / "explorer.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        assert png_size(shot) == (WIDTH, inner)
        copy_for_the_notes(shot, NOTES_COPY)

        # no console errors; Chromium logs the 404 of the not-found search (an answer the page shows) as one
        logged = driver.get_log("browser")
        errors = [e for e in logged if e["level"] == "SEVERE"
                  and not (e["source"] == "network" and f"/v1/messages/0x{'ab' * 32}" in e["message"]
                           and "404" in e["message"])]
        assert errors == [], errors

        # narrow and light: the same page stacks its panels (a second screenshot, for the notes)
        driver.find_element(By.ID, "theme").click()
        driver.set_window_size(820, 1400)
        wait_for(lambda: js(driver, "return document.documentElement.dataset.theme") == "light"
                 and js(driver, "return window.innerWidth") == 820, 10, "light theme at 820 px")
        assert js(driver, "return document.documentElement.scrollWidth") <= 820, "the page scrolls sideways when narrow"
        narrow = tmp_path / "explorer-narrow-light.png"
        assert driver.save_screenshot(str(narrow)) and narrow.stat().st_size > 20_000
        copy_for_the_notes(narrow, NOTES_COPY and NOTES_COPY.with_name("explorer-narrow-light.png"))

        # without an event stream (a proxy that blocks it, say) the page falls back to polling and still updates
        blocker = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            window.EventSource = class {
              constructor(url) { this.url = url; this.readyState = 0;
                setTimeout(() => { this.readyState = 2; if (this.onerror) this.onerror(new Event('error')); }, 50); }
              addEventListener() {}
              close() { this.readyState = 2; }
            };
            Object.assign(window.EventSource, {CONNECTING: 0, OPEN: 1, CLOSED: 2});"""})
        driver.set_window_size(WIDTH, 1000)
        driver.get(f"{api}/explorer")
        wait_for(lambda: js(driver, "return document.body.dataset.ready === 'true'"), 30, "the page to load again")
        wait_for(lambda: js(driver, "return document.getElementById('live').dataset.mode") == "polling", 30,
                 "the page to fall back to polling")
        js(driver, "window.__samePage = 'not reloaded'")
        t = time.monotonic()
        _tx, (polled_id,) = await client.adapters["rollup_a"].dispatch_messages(
            client.key("rollup_a"), client.domain("l1"),
            address_to_bytes32(client.manifest["chains"]["l1"]["contracts"]["test_recipient"]), [b"explorer polling"])
        polled = "0x" + polled_id.hex()
        wait_for(lambda: rows(driver).get(polled) == "DELIVERED", 120, "the polling page to show the message DELIVERED",
                 interval=0.25)
        timings["polling: new message delivered"] = time.monotonic() - t
        assert js(driver, "return window.__samePage") == "not reloaded"
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": blocker["identifier"]})
        driver.get(f"{api}/explorer")
        wait_for(lambda: js(driver, "return document.getElementById('live').dataset.mode") == "live", 30,
                 "the page's event stream to open again")
        later = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert later == [], later

        # the daemon stops on SIGTERM although the page's event stream is open: the stream ends itself instead of
        # holding uvicorn's shutdown (which would wait for it forever, or be cut by the 3-s backstop that logs)
        assert daemon.proc is not None
        t = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.proc.wait(60)
        timings["daemon stop with stream open"] = time.monotonic() - t
        log_text = (tmp_path / "d.log").read_text()
        assert daemon.proc.returncode == 0, f"the daemon did not stop on SIGTERM; log:\n{log_text[-3000:]}"
        assert "graceful shutdown exceeded" not in log_text, "an event stream held up the stop"
        print("explorer timings (s):", {k: round(v, 1) for k, v in timings.items()})
    finally:
        daemon.stop()
        await client.close()
