"""The page in a real headless browser (Debian's chromium, driven through its chromedriver):
it loads, shows the seeded profiles, the usage recorded before the start and a request made
during the test, a cooldown the upstream caused, and clears it with its button; the DOM holds
no canary secret. ``OPENCLAW_UI_SCREENSHOT=docs/ui.png`` also saves the README's screenshot."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from sidecar.sources.openclaw.clock import now_ms
from sidecar.usage import db
from sidecar.usage.db import EventRow, RequestRow, WindowRow
from sidecar.usage.tokens import Tokens
from sidecar.usage.windows import Window
from tests.e2e.conftest import Running, SidecarFactory, provider_tables
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (scripts/test installs them: "
        "apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

T = TypeVar("T")
WAIT_S = 20.0  # the page polls every 2 s; a safety net
HOUR = 3_600_000
SCREENSHOT_ENV = "OPENCLAW_UI_SCREENSHOT"


def history(now_ms: int) -> tuple[list[RequestRow], list[WindowRow], list[EventRow]]:
    """A day of usage recorded before the sidecar starts: what the page must show too."""
    rows = []
    for hour in range(1, 24):
        at = now_ms - hour * HOUR
        for agent, profile, provider, model, base in (
            ("personal", "anthropic:personal", "anthropic", "claude-sonnet", 4000),
            ("work", "openai:work", "openai", "gpt-5", 2500),
        ):
            for n in range(1 + (hour * 7 + len(agent)) % 4):
                tokens = Tokens(input=base + 300 * n, output=400 + 50 * hour % 300)
                rows.append(
                    RequestRow(
                        at + n, agent, agent, profile, provider, model, 200, None, 900, tokens
                    )
                )
    rows.append(
        RequestRow(
            now_ms - 2 * HOUR, "work", "work", "openai:work", "openai", "gpt-5", 429, None, 40, None
        )
    )
    five = Window("5h", "anthropic-unified", 0.62, now_ms + 2 * HOUR, status="allowed")
    week = Window("7d", "anthropic-unified", 0.31, now_ms + 80 * HOUR, status="allowed")
    limits = Window("requests", "openai", 0.12, now_ms + 40_000, limit=500, remaining=440)
    windows = [
        WindowRow("personal", "anthropic:personal", "anthropic", five, now_ms - HOUR),
        WindowRow("personal", "anthropic:personal", "anthropic", week, now_ms - HOUR),
        WindowRow("work", "openai:work", "openai", limits, now_ms - HOUR),
    ]
    events = [
        EventRow(now_ms - 3 * HOUR, "refresh", "anthropic", "anthropic:personal", "refreshed")
    ]
    return rows, windows, events


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A usage database with a day of history, made before the sidecar starts."""
    path = tmp_path_factory.mktemp("ui-usage")
    conn = db.open_for_writing(path / db.FILE_NAME)
    db.write(conn, *history(now_ms()))
    conn.close()
    return path


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream, data_dir: Path) -> Running:
    return sidecar_factory.start(
        [{"host": "127.0.0.1"}], provider_tables(fake.url), extra={"usage": {"dir": str(data_dir)}}
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless chromium with a fresh profile and nothing that reaches out of the machine."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def until(driver: Any, check: Callable[[Any], T]) -> T:
    """``check`` until it returns something true; the page redraws every poll, so an element
    found a moment ago may be gone (stale): that is looked at again too."""

    def attempt(d: Any) -> T | bool:
        try:
            return check(d)
        except StaleElementReferenceException:
            return False

    result: T = WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(attempt)
    return result


def row(driver: Any, agent: str, profile: str) -> Any:
    found = driver.find_elements(By.CSS_SELECTOR, f'tr[data-profile="{agent}/{profile}"]')
    return found[0] if found else None


def rests(driver: Any, agent: str, profile: str) -> bool:
    tr = row(driver, agent, profile)
    return tr is not None and bool(tr.find_elements(By.CSS_SELECTOR, "td[data-cooldown]"))


def requests_of(driver: Any, agent: str) -> int:
    cell = driver.find_elements(By.CSS_SELECTOR, f'tr[data-totals="{agent}"] td[data-requests]')
    return int(cell[0].get_attribute("data-requests")) if cell else -1


def test_the_page_in_a_browser(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client, browser: Any, data_dir: Path
) -> None:
    """Profiles, windows, the day's chart and totals, a request made now, a cooldown the
    upstream caused and its Clear button; no canary anywhere in the DOM or the state."""
    conn = db.open_for_reading(data_dir / db.FILE_NAME)
    assert conn is not None
    before = dict(conn.execute("SELECT agent, COUNT(*) FROM requests GROUP BY agent").fetchall())
    conn.close()
    chat = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
    done = http.post(sidecar.url() + "/agents/work/openai/v1/chat/completions", json=chat)
    assert done.status_code == 200
    # A provider reset time is the cooldown's end (#19): long enough to still be shown.
    fake.set_mode("rate_limit", times=1, retry_after="600")
    message = {
        "model": "claude-sonnet",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
    }
    # Pinned: an unpinned request would fail over to main's Anthropic key and succeed.
    limited = http.post(
        sidecar.url() + "/agents/personal/anthropic@anthropic:personal/v1/messages", json=message
    )
    assert limited.status_code == 429

    browser.get(sidecar.url() + "/ui")
    until(browser, lambda d: rests(d, "personal", "anthropic:personal"))
    until(browser, lambda d: requests_of(d, "work") == before["work"] + 1)
    shown = {
        tr.get_attribute("data-profile")
        for tr in browser.find_elements(By.CSS_SELECTOR, "tr[data-profile]")
    }
    assert shown == {
        "main/anthropic:main",
        "main/my-llm:main",
        "main/openai:main",
        "personal/anthropic:personal",
        "personal/openai:personal",
        "work/anthropic:work",
        "work/openai:work",
    }
    inherited = browser.find_element(By.CSS_SELECTOR, '[data-agent="work"] [data-inherited]')
    assert inherited.get_attribute("data-inherited") == "anthropic:main my-llm:main openai:main"
    windows = browser.find_elements(
        By.CSS_SELECTOR, 'tr[data-profile="personal/anthropic:personal"] [data-window]'
    )
    assert [w.get_attribute("data-window") for w in windows] == ["5h", "7d"]
    assert requests_of(browser, "personal") == before["personal"] + 1
    cell = row(browser, "personal", "anthropic:personal").find_element(
        By.CSS_SELECTOR, "td[data-cooldown]"
    )
    assert cell.text.startswith("cooldown: rate_limit")
    assert browser.find_elements(By.CSS_SELECTOR, '#recent li[data-kind="request"]')

    page = browser.execute_script("return document.documentElement.outerHTML")
    state = browser.execute_script("return fetch('/ui/api/state').then(r => r.text())")
    assert sidecar.canaries.found_in(page + browser.page_source + state) == []
    shot = os.environ.get(SCREENSHOT_ENV)
    if shot:  # the whole page, as tall as it is
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, height + 140)  # the window's frame around the page
        browser.save_screenshot(shot)

    row(browser, "personal", "anthropic:personal").find_element(
        By.CSS_SELECTOR, 'button[data-action="clear-cooldown"]'
    ).click()
    until(browser, lambda d: not rests(d, "personal", "anthropic:personal"))
    stored = json.loads(
        (sidecar.state_dir / "agents" / "personal" / "agent" / "auth-state.json").read_text()
    )
    stats = stored["usageStats"]["anthropic:personal"]
    assert (stats["errorCount"], "cooldownUntil" in stats) == (0, False)
    assert sidecar.canaries.found_in(browser.page_source) == []
