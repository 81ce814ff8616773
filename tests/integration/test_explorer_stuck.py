"""The explorer's "Stuck" view and RPC endpoint health, in headless Chromium on the session devnet (issue 15).

A daemon of this module's own (admin key set; rollup_b served by two endpoints: 0 a cuttable proxy to its anvil, 1
the anvil itself) and one browser. Without a key the view says so and sends no admin request; a wrong key shows the
API's 401; with the right key the page pauses a route, lists the messages it holds with their cause, drops one with a
note (an empty note refused in the page), resumes the route (the held message delivered on chain) and retries the
dropped one (delivered on chain); a message over the daemon's gas limit per message is executed from the page with
more gas (delivered on chain). The chain card of rollup_b shows each endpoint up, endpoint 0 down while its proxy
is cut, and up again; no URL is shown."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults.conftest import metric
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    TcpProxy,
    delivered_on,
    dispatch_to_test_recipient,
    free_port_block,
    message_status,
    write_daemon_config,
)
from tests.integration.test_explorer import NOTES_COPY, copy_for_the_notes, headless_chromium

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-" + secrets.token_hex(16)
WRONG_KEY = "admin-wrong-" + secrets.token_hex(8)
RELAY_TIMEOUT_S = 120.0
PAGE_TIMEOUT_S = 30.0
GAS_CAP = 400_000  # relayer.max_gas_per_message of this module's daemon


@pytest.fixture(scope="module")
def rollup_b_proxy(devnet: Any) -> Iterator[TcpProxy]:
    """rollup_b's endpoint 0: a proxy to its anvil that the test cuts and restores."""
    port = int(devnet.manifest()["chains"]["rollup_b"]["rpc_url"].rsplit(":", 1)[1].rstrip("/"))
    proxy = TcpProxy(port)
    proxy.up()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def operated(devnet: Any, rollup_b_proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[DaemonProcess]:
    """The only daemon on the devnet while this module runs: admin key set, rollup_b on two endpoints."""
    directory = tmp_path_factory.mktemp("explorer-stuck")
    path = write_daemon_config(devnet, directory, api_port=free_port_block(1))
    anvil = devnet.manifest()["chains"]["rollup_b"]["rpc_url"]
    text = path.read_text()
    line = f'rpc_url = "{anvil}"'
    assert text.count(line) == 1, "rollup_b's rpc_url line not found once in the daemon config"
    path.write_text(text.replace(line, f'rpc_url = "{rollup_b_proxy.url}"\nfallback_rpc_urls = ["{anvil}"]'))
    daemon = DaemonProcess(path, directory / "daemon.log", instance="explorer-stuck",
                           env={"RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]',
                                "RELAYER__RELAYER__MAX_GAS_PER_MESSAGE": str(GAS_CAP)}).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with headless_chromium("explorer-stuck-chromium-") as chrome:
        yield chrome


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def until(driver: Any, predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    """Poll ``predicate`` until it is truthy (selenium's WebDriverWait), failing with ``what`` at the deadline."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=poll).until(lambda _d: predicate(), f"timed out: {what}")


def open_page(driver: Any, daemon: DaemonProcess, fragment: str = "") -> None:
    driver.get(f"{daemon.api_url}/explorer{fragment}")
    until(driver, lambda: js(driver, "return document.body.dataset.ready === 'true'"), PAGE_TIMEOUT_S,
          "the page to load its data")


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def type_into(driver: Any, css: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, css)
    box.clear()
    if text:
        box.send_keys(text)


def admin_status(driver: Any) -> tuple[str, str]:
    """(kind, text) of the stuck view's status line: kind is ok, error or empty."""
    kind, text = js(driver, "const s = document.getElementById('admin-status'); return [s.dataset.kind || '', "
                            "s.textContent]")
    return str(kind), str(text)


def wait_status(driver: Any, kind: str, contains: str, what: str) -> str:
    until(driver, lambda: admin_status(driver)[0] == kind and contains in admin_status(driver)[1], PAGE_TIMEOUT_S,
          f"{what} (status now {admin_status(driver)!r})")
    return admin_status(driver)[1]


def admin_requests(driver: Any) -> list[str]:
    """Every request the page made to the admin API since it loaded (resource timing: what the browser fetched)."""
    return js(driver, "return performance.getEntriesByType('resource').map(e => e.name)"
                      ".filter(n => n.includes('/admin/'))")


def ticks(driver: Any) -> int:
    """How many times the stuck view looked again (every 5 s while shown), whether it sent anything or not."""
    return int(js(driver, "return +(document.getElementById('stuck').dataset.ticks || 0)"))


def stuck_rows(driver: Any) -> dict[str, dict[str, str]]:
    return js(driver, """return Object.fromEntries([...document.querySelectorAll('#stuck-table tbody tr[data-id]')]
        .map(tr => [tr.dataset.id, {state: tr.dataset.state, reason: tr.dataset.reason,
                                    status: tr.querySelector('.substate').textContent,
                                    cause: tr.querySelector('td.reason').textContent,
                                    route: tr.querySelector('td.route').textContent}]))""")


def severe(driver: Any, allowed: str | None = None) -> list[dict[str, Any]]:
    """The console's errors since the last call, without Chromium's log of an answer the page shows (``allowed``)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and not (allowed is not None and e["source"] == "network" and re.search(allowed, e["message"]))]


def refused(daemon: DaemonProcess, reason: str) -> float:
    return metric(daemon.api_url, "relayer_admin_requests_refused_total", reason=reason)


def send(devnet: Any, body: bytes) -> bytes:
    return dispatch_to_test_recipient(devnet, DevnetClient(devnet).key("l1", 1), "l1", "rollup_a", [body])[0]


def test_without_the_key_no_admin_request_and_a_wrong_key_shows_the_401(operated, driver) -> None:
    daemon = operated
    open_page(driver, daemon)
    js(driver, "sessionStorage.clear()")
    open_page(driver, daemon)
    click(driver, "#tab-stuck")
    until(driver, lambda: ticks(driver) >= 2, PAGE_TIMEOUT_S, "the stuck view to look twice")
    assert js(driver, "return document.getElementById('stuck-needs-key').hidden") is False
    assert js(driver, "return document.getElementById('stuck-content').hidden") is True
    assert "admin key is needed" in js(driver, "return document.getElementById('stuck-needs-key').textContent")
    assert admin_requests(driver) == [] and refused(daemon, "missing_key") == 0
    assert severe(driver) == []

    type_into(driver, "#admin-key", WRONG_KEY)
    click(driver, "#admin-key-form button[type=submit]")
    text = wait_status(driver, "error", "401", "the wrong key's 401 shown")
    assert "admin key is required" in text and WRONG_KEY not in text
    assert refused(daemon, "wrong_key") >= 1
    assert js(driver, "return sessionStorage.getItem('explorer-admin-key')") == WRONG_KEY
    assert WRONG_KEY not in driver.current_url and WRONG_KEY not in js(driver, "return JSON.stringify(localStorage)")
    assert js(driver, "return document.getElementById('admin-key').value") == ""
    sent, seen = len(admin_requests(driver)), ticks(driver)
    until(driver, lambda: ticks(driver) >= seen + 2, PAGE_TIMEOUT_S, "the view to look twice more")
    assert len(admin_requests(driver)) == sent, "a refused key was sent again"
    assert severe(driver, allowed=r"/admin/v1/.* 401") == []

    click(driver, "#admin-forget")
    wait_status(driver, "ok", "forgotten", "the key forgotten")
    assert js(driver, "return sessionStorage.getItem('explorer-admin-key')") is None
    assert js(driver, "return document.getElementById('stuck-needs-key').hidden") is False


def test_stuck_messages_listed_with_their_cause_dropped_resumed_and_retried(devnet, operated, driver,
                                                                            tmp_path) -> None:
    daemon = operated
    open_page(driver, daemon, "#stuck")
    type_into(driver, "#admin-key", ADMIN_KEY)
    click(driver, "#admin-key-form button[type=submit]")
    until(driver, lambda: js(driver, "return !document.getElementById('stuck-content').hidden"
                                     " && !!document.querySelector('#paused-routes tbody td.empty')"),
          PAGE_TIMEOUT_S, "the stuck view with the key: no route paused")

    # pause l1 -> rollup_a from the page, with a note
    js(driver, "document.getElementById('pause-origin').value = 'l1';"
               "document.getElementById('pause-destination').value = 'rollup_a'")
    type_into(driver, "#pause-note", "destination upgrade")
    click(driver, "#pause-form button[type=submit]")
    wait_status(driver, "ok", "paused l1 → rollup_a", "the pause confirmed")
    until(driver, lambda: "destination upgrade" in js(
        driver, "const r = document.querySelector('#paused-routes tr[data-route=\"l1/rollup_a\"]');"
                "return r ? r.textContent : ''"), PAGE_TIMEOUT_S, "the paused route listed with its note")

    held, dropped = send(devnet, b"held by the pause (explorer)"), send(devnet, b"dropped in the explorer")
    held_id, dropped_id = "0x" + held.hex(), "0x" + dropped.hex()
    until(driver, lambda: all(message_status(daemon.api_url, m) == ("waiting", "route_resumed")
                              for m in (held, dropped)), RELAY_TIMEOUT_S, "both messages to wait for their route")

    def listed_waiting(mid: str) -> bool:
        row = stuck_rows(driver).get(mid)
        return (row is not None and row["reason"] == "route_paused" and "destination upgrade" in row["cause"]
                and row["status"] == "waiting · route_resumed" and row["route"] == "l1→rollup_a")

    until(driver, lambda: listed_waiting(held_id) and listed_waiting(dropped_id), PAGE_TIMEOUT_S,
          "both held messages listed with their cause (route paused, the note) and status")

    # drop: an empty note is refused in the page (nothing sent), then dropped with a note
    click(driver, f"#stuck-table button[data-action=drop][data-id='{dropped_id}']")
    click(driver, f"form.drop-form[data-id='{dropped_id}'] button[type=submit]")
    wait_status(driver, "error", "a note is required", "the empty note refused")
    assert not [r for r in admin_requests(driver) if r.endswith("/drop")]
    type_into(driver, f"form.drop-form[data-id='{dropped_id}'] input", "sent by mistake")
    click(driver, f"form.drop-form[data-id='{dropped_id}'] button[type=submit]")
    wait_status(driver, "ok", "dropped", "the drop confirmed")
    until(driver, lambda: (stuck_rows(driver).get(dropped_id) or {}).get("status") == "dropped · operator_dropped"
          and "sent by mistake" in stuck_rows(driver)[dropped_id]["cause"], PAGE_TIMEOUT_S,
          "the dropped message listed as dropped with the note")
    assert message_status(daemon.api_url, dropped) == ("dropped", "operator_dropped")
    shot = tmp_path / "explorer-stuck.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    copy_for_the_notes(shot, NOTES_COPY and NOTES_COPY.with_name("explorer-stuck.png"))

    # resume: the held message is delivered on chain and leaves the list; the dropped one stays undelivered
    click(driver, "#paused-routes button[data-action=resume][data-origin=l1][data-destination=rollup_a]")
    wait_status(driver, "ok", "resumed l1 → rollup_a", "the resume confirmed")
    until(driver, lambda: delivered_on(devnet, "rollup_a", held), RELAY_TIMEOUT_S, "the held message delivered",
          poll=1.0)
    until(driver, lambda: held_id not in stuck_rows(driver), PAGE_TIMEOUT_S, "the delivered message off the list")
    assert not delivered_on(devnet, "rollup_a", dropped)

    # retry: the dropped message goes back to delivery and is delivered on chain
    click(driver, f"#stuck-table button[data-action=retry][data-id='{dropped_id}']")
    wait_status(driver, "ok", f"retried {dropped_id[:8]}", "the retry confirmed")
    until(driver, lambda: delivered_on(devnet, "rollup_a", dropped), RELAY_TIMEOUT_S, "the retried message delivered",
          poll=1.0)
    until(driver, lambda: dropped_id not in stuck_rows(driver), PAGE_TIMEOUT_S, "the retried message off the list")
    for action in ("pause_route", "resume_route", "drop", "retry"):
        assert metric(daemon.api_url, "relayer_admin_actions_total", action=action) == 1, action
    assert severe(driver) == []


def test_a_message_over_the_gas_limit_is_executed_from_the_page(devnet, operated, driver) -> None:
    """A message whose recipient burns ~1.5M gas, over this daemon's 400,000: listed dropped for gas_limit_exceeded;
    "Execute…" refuses a gas limit under 21,000 in the page, then executes it with 3,000,000: delivered on chain."""
    import struct

    daemon = operated
    open_page(driver, daemon, "#stuck")
    type_into(driver, "#admin-key", ADMIN_KEY)
    click(driver, "#admin-key-form button[type=submit]")
    heavy = send(devnet, b"burn:" + struct.pack(">I", 20_000))
    heavy_id = "0x" + heavy.hex()
    until(driver, lambda: (stuck_rows(driver).get(heavy_id) or {}).get("status") == "dropped · gas_limit_exceeded",
          RELAY_TIMEOUT_S, "the costly message listed as dropped for its gas", poll=0.5)
    click(driver, f"#stuck-table button[data-action=execute][data-id='{heavy_id}']")
    type_into(driver, f"form.execute-form[data-id='{heavy_id}'] input", "20000")
    click(driver, f"form.execute-form[data-id='{heavy_id}'] button[type=submit]")
    wait_status(driver, "error", "from 21000 to 100000000", "a gas limit under 21,000 refused in the page")
    assert not [r for r in admin_requests(driver) if r.endswith("/execute")]
    type_into(driver, f"form.execute-form[data-id='{heavy_id}'] input", "3000000")
    click(driver, f"form.execute-form[data-id='{heavy_id}'] button[type=submit]")
    wait_status(driver, "ok", "with 3000000 gas", "the execution sent")
    until(driver, lambda: delivered_on(devnet, "rollup_a", heavy), RELAY_TIMEOUT_S, "the executed message delivered",
          poll=1.0)
    until(driver, lambda: heavy_id not in stuck_rows(driver), PAGE_TIMEOUT_S, "the delivered message off the list")
    assert metric(daemon.api_url, "relayer_admin_actions_total", action="execute") == 1
    assert severe(driver) == []


def test_endpoint_health_on_the_chain_cards(devnet, operated, rollup_b_proxy, driver) -> None:
    daemon = operated
    open_page(driver, daemon)

    def endpoints(chain: str) -> list[str]:
        return js(driver, "return [...document.querySelectorAll(`#chains article[data-chain=\"${arguments[0]}\"] "
                          "[data-field=endpoints] [data-endpoint]`)].map(b => b.dataset.up)", chain)

    until(driver, lambda: endpoints("rollup_b") == ["true", "true"], PAGE_TIMEOUT_S, "rollup_b's two endpoints up")
    assert endpoints("l1") == [] and endpoints("rollup_a") == []  # one endpoint each: no endpoint row
    rollup_b_proxy.down()
    try:
        until(driver, lambda: endpoints("rollup_b") == ["false", "true"], PAGE_TIMEOUT_S,
              "endpoint 0 of rollup_b shown down while its proxy is cut")
        healthy = js(driver, "return document.querySelector('#chains article[data-chain=\"rollup_b\"]')"
                             ".dataset.healthy")
        assert healthy == "true", "rollup_b should stay up on its fallback endpoint"
    finally:
        rollup_b_proxy.up()
    until(driver, lambda: endpoints("rollup_b") == ["true", "true"], 90, "endpoint 0 of rollup_b up again", poll=0.5)
    page = js(driver, "return document.getElementById('chains').innerHTML")
    anvil = devnet.manifest()["chains"]["rollup_b"]["rpc_url"]
    for url in (rollup_b_proxy.url, anvil, f":{rollup_b_proxy.port}", "http://"):
        assert url not in page, f"{url} shown on the chain cards"
    assert metric(daemon.api_url, "relayer_rpc_endpoint_up", chain="rollup_b", endpoint="0") == 1
    assert severe(driver) == []


def test_the_routes_profit_and_loss_matches_the_api(devnet, operated, driver) -> None:
    """The profit table lists each route this daemon delivered on (here l1 -> rollup_a, delivered above, nothing paid
    on it), with the figures of GET /v1/routes/profit: fees $0, gas spent above $0, a loss."""
    import httpx

    open_page(driver, operated)

    def row() -> dict[str, str] | None:
        return js(driver, """const tr = document.querySelector('#profit-table tr[data-route="l1->rollup_a"]');
            return tr && !document.getElementById('profit').hidden ? {fees: tr.querySelector('[data-field=fees]')
            .textContent, gas: tr.querySelector('[data-field=gas]').textContent, profit: tr.querySelector(
            '[data-field=profit]').className} : null""")

    until(driver, row, PAGE_TIMEOUT_S, "the l1 -> rollup_a row of the profit table")
    api = next(r for r in httpx.get(f"{operated.api_url}/v1/routes/profit").json()["routes"]
               if (r["origin"], r["destination"]) == ("l1", "rollup_a"))
    shown = row()
    assert shown and shown["fees"] == "$0.000000" and api["fees_collected_usd"] == 0
    assert api["gas_spent_usd"] > 0 and shown["gas"] != "$0.000000" and "loss" in shown["profit"]
    assert severe(driver) == []
