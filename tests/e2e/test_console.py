"""The live console in a real browser: a worker scores demo-like traffic while headless Chromium watches /console.

Driven with Selenium and Debian's chromium + chromium-driver (one source package, so driver and browser always
match; nothing is downloaded). The page must show the stream counters, the alerts the worker published (with
their evidence and reasons), a negative-share chart with points, and a user's recommendations from the index.
A screenshot goes to test-artifacts/console.png.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from sinks.search import Doc, connect
from streams.broker.topics import create_topics
from streams.core.events import RecommendationDoc, utc_now
from streams.core.settings import REPO_ROOT, Settings
from streams.generators.news import NewsGenerator
from streams.generators.transactions import TransactionGenerator
from streams.tools.deadletters import read_topic
from streams.tools.demo_feeds import Feed
from streams.tools.worker_process import WorkerProcess, free_port, isolated

NEWS, TRANSACTIONS, RATE = 800, 400, 150.0
ARTIFACT = REPO_ROOT / "test-artifacts" / "console.png"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("headless Chromium is needed: run infra/local/setup.sh "
                    "(or apt-get install chromium chromium-driver)", pytrace=False)
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1800"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()


SNAPSHOT = """
return [...document.querySelectorAll(arguments[0])].map((row) => ({
  key: row.dataset[arguments[1]], kind: row.dataset.kind || null,
  cells: [...row.children].map((cell) => cell.innerText), reasons: row.querySelectorAll("ul.reasons li").length}));
"""


def wait_for(browser: webdriver.Chrome, worker: WorkerProcess, what: str, check: Callable[[], Any],
             timeout_s: float = 300) -> Any:
    """Poll `check` until it returns something truthy; fail with the worker's log if it dies or it never does."""
    def probe(_: Any) -> Any:
        assert worker.running, worker.log_tail()
        return check()

    try:
        return WebDriverWait(browser, timeout_s, poll_frequency=1,
                             ignored_exceptions=[StaleElementReferenceException]).until(probe)
    except Exception as error:
        browser.save_screenshot(str(ARTIFACT))
        raise AssertionError(f"console never showed {what} (screenshot {ARTIFACT}):\n{worker.log_tail()}") from error


def test_console_shows_rates_alerts_chart_and_recommendations(settings: Settings, unique: str, tmp_path: Path,
                                                              browser: webdriver.Chrome) -> None:
    def snapshot(selector: str, key: str) -> list[dict[str, Any]]:
        """Rows matching `selector` as plain data, read in one go (the page re-renders every two seconds)."""
        return browser.execute_script(SNAPSHOT, selector, key)

    s, env = isolated(settings, unique, "sentiment,fraud")
    create_topics(s)
    ARTIFACT.parent.mkdir(exist_ok=True)
    port = free_port()
    worker = WorkerProcess(env, tmp_path / "worker.log", port)
    client = connect(s.search)
    try:
        worker.start()
        worker.wait_ready()
        browser.get(f"http://127.0.0.1:{port}/console")
        assert browser.title == "lepton console"

        transactions = TransactionGenerator(seed=5, start=utc_now() - timedelta(hours=1), rate_per_s=2.0,
                                            fraud_rate=0.2, n_cards=100)
        news = NewsGenerator(seed=7, start=utc_now() - timedelta(hours=1), rate_per_s=2.0, surge_ticker="QFL",
                             surge_at_s=150, surge_duration_s=60, surge_count=80)  # as in test_sentiment_pipeline
        feeds = [Feed(s, "news", (g.record for g in news), NEWS, RATE, malformed_every=100),
                 Feed(s, "transactions", (g.record for g in transactions), TRANSACTIONS, RATE, malformed_every=50)]
        for feed in feeds:
            feed.start()

        def rows() -> dict[str, list[str]]:
            return {row["key"]: row["cells"] for row in snapshot("#streams tbody tr", "stream")}

        streams = {s.topics.news, s.topics.news_by_ticker, s.topics.transactions}  # by ticker: the surge stage
        wait_for(browser, worker, "the streams", lambda: set(rows()) == streams)
        wait_for(browser, worker, "a sentiment alert", lambda: snapshot("#alerts-sentiment tr.alert", "alertId"))
        for feed in feeds:
            feed.join(120)

        def settled(stream: str, sent: int) -> bool:
            """Every message consumed, and each one scored or dead-lettered (so its alerts are out)."""
            consumed, scored, dead_letters = (float(cell.replace(",", "")) for cell in rows()[stream][3:6])
            return consumed >= sent and scored + dead_letters >= consumed

        wait_for(browser, worker, "every message processed", lambda: settled(s.topics.news, feeds[0].sent)
                 and settled(s.topics.transactions, feeds[1].sent))

        published = {json.loads(value)["alert_id"]: json.loads(value)
                     for topic in (s.topics.alerts_sentiment, s.topics.alerts_fraud) for value in read_topic(s, topic)}
        assert any(a["kind"] == "fraud" for a in published.values()), "the traffic raised no fraud alert"

        def shown() -> dict[str, dict[str, Any]]:
            return {row["key"]: row for row in snapshot("table.alerts tr.alert", "alertId")}

        newest = [alert_id for kind in ("sentiment", "fraud")  # the page shows the newest 25 of each kind
                  for alert_id in sorted((i for i in published if published[i]["kind"] == kind),
                                         key=lambda i: published[i]["created_at"])[-25:]]
        wait_for(browser, worker, "the published alerts", lambda: set(newest) <= set(shown()))
        sentiment = [row for row in shown().values() if row["kind"] == "sentiment"]
        assert [row["cells"][2] for row in sentiment] == ["QFL"]
        assert "negative" in sentiment[0]["cells"][3] and "share=" in sentiment[0]["cells"][3]  # summary, evidence
        fraud = next(row for row in shown().values() if row["kind"] == "fraud")
        assert fraud["reasons"] > 0 and "fraud_score=" in fraud["cells"][3], fraud

        def chart_points(ticker: str) -> int:
            return browser.execute_script(
                "const line = document.querySelector(`#chart polyline.series[data-ticker='${arguments[0]}']`);"
                "return line ? line.points.numberOfItems : 0;", ticker)

        wait_for(browser, worker, "QFL on the negative-share chart", lambda: chart_points("QFL") > 0)

        user = f"user-console-{unique}"
        doc = RecommendationDoc(
            event_id=f"clk-{unique}", event_time=utc_now(), processed_at=utc_now(), model_name="recs",
            model_version="test", topic=s.topics.clicks, partition=0, offset=0, user_id=user, session_id="s-1",
            trigger_item_id="sku-1", items=[{"item_id": "sku-42", "score": 0.9, "rank": 1},
                                            {"item_id": "sku-7", "score": 0.5, "rank": 2}],
            updated_at=utc_now())
        recs_index = f"{s.search.index_prefix}-recommendations"
        client.bulk_index([Doc.of(recs_index, user, doc)])
        client.refresh(recs_index)
        browser.find_element(By.ID, "user").send_keys(user)
        browser.find_element(By.CSS_SELECTOR, "#recs-form button").click()
        items = wait_for(browser, worker, "the recommendations", lambda: snapshot("#recs li.rec", "itemId"))
        assert [item["key"] for item in items] == ["sku-42", "sku-7"]
        browser.save_screenshot(str(ARTIFACT))
        assert ARTIFACT.stat().st_size > 10_000
    finally:
        assert worker.stop() == 0, worker.log_tail()
        client.delete_prefix(s.search.index_prefix)
        client.close()
