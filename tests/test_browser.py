"""A real headless Chromium draws a digit on the served page and sees the prediction and the bars."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_run):
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "serve", str(trained_run.path), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as p:
        # Playwright gives every launch a fresh, empty profile of its own.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 900, "height": 640})
        page.goto(server)
        yield page
        browser.close()


def draw(page, points):
    box = page.locator("#pad").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x0 + x, y0 + y, steps=8)
    page.mouse.up()


def test_drawing_a_one_shows_the_prediction_and_bars(page, artifacts):
    assert page.locator("#digit").inner_text() == "?"
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('cnn')")
    draw(page, [(140, 40), (142, 140), (144, 240)])
    page.wait_for_function("document.querySelector('#digit').textContent !== '?'", timeout=15000)
    assert page.locator("#digit").inner_text() == "1"
    assert page.locator("#bars .bar").count() == 10
    assert page.locator("#bars .bar.top").get_attribute("data-digit") == "1"
    assert "% sure" in page.locator("#confidence").inner_text()
    page.wait_for_function("document.querySelector('#seen').naturalWidth === 28")
    page.screenshot(path=str(artifacts / "browser.png"))


def test_clear_resets_and_a_seven_is_read(page, artifacts):
    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"
    draw(page, [(60, 50), (220, 50), (150, 160), (110, 250)])
    page.wait_for_function("document.querySelector('#digit').textContent !== '?'", timeout=15000)
    assert page.locator("#digit").inner_text() == "7"
    page.screenshot(path=str(artifacts / "browser-seven.png"))
