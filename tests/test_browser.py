"""A real headless Chromium draws digits on the page served by a real `mnistlab serve` and sees the answers."""

from __future__ import annotations

import os
import shutil

import pytest

import mnistlab
from helpers import on_paper

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWERED = "document.querySelector('#digit').textContent !== '?'"


def shows(page, digit: str, timeout: float = 15000) -> str:
    """Wait until the page shows `digit` (an answer for part of a stroke may come first); what it shows."""
    try:
        page.wait_for_function(f"document.querySelector('#digit').textContent === '{digit}'", timeout=timeout)
    except Exception:  # Playwright's TimeoutError: the assertion below says what was shown instead
        pass
    return page.locator("#digit").inner_text()




@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as p:
        # Each launch gets a fresh, empty profile of its own (a temporary user-data-dir).
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 900, "height": 660})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # A 4xx answer is logged by Chromium itself ("Failed to load resource"); anything else is the page's fault.
    page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource: the server "
                                                                           "responded with a status of 4")
            and problems.append(f"console: {m.text}"))
    page.goto(server.url)
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('cnn')")
    yield page
    page.close()
    assert problems == []


def draw(page, points, release=True):
    """One stroke through `points` (pad coordinates) with real mouse events: down, moves, up."""
    box = page.locator("#pad").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x0 + x, y0 + y, steps=8)
    if release:
        page.mouse.up()


def bars(page) -> list[float]:
    return [float(t.rstrip("%")) / 100 for t in page.locator("#bars .bar .p").all_inner_texts()]


def test_drawing_a_one_shows_the_prediction_and_bars(page, artifacts):
    assert page.locator("#digit").inner_text() == "?"
    assert page.locator("#bars .bar").count() == 10
    draw(page, [(140, 40), (142, 140), (144, 240)])
    assert shows(page, "1") == "1"
    assert page.locator("#bars .bar").count() == 10
    assert page.locator("#bars .bar.top").get_attribute("data-digit") == "1"
    shown = bars(page)
    assert len(shown) == 10 and abs(sum(shown) - 1) < 0.02 and max(shown) == shown[1]
    assert "% sure" in page.locator("#confidence").inner_text()
    page.wait_for_function("document.querySelector('#seen').naturalWidth === 28")
    assert page.locator("#seen").is_visible()
    page.screenshot(path=str(artifacts / "browser.png"))


def test_a_wrong_answer_is_corrected_and_saved_for_finetune(page, corrections_dir, artifacts):
    from mnistlab.labelled import PREPROCESSED_DIR

    assert not page.locator("#correct").is_visible(), "nothing to correct before an answer"
    draw(page, [(140, 40), (142, 140), (144, 240)])
    assert shows(page, "1") == "1"
    assert page.locator("#correct").is_visible() and page.locator("#correct-digits button").count() == 10
    page.click("#correct-digits button[data-digit='7']")  # say it was a 7
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('saved as a 7')",
                           timeout=15000)
    page.screenshot(path=str(artifacts / "browser-correction.png"))
    saved = list((corrections_dir / "7").glob("*.png"))
    assert len(saved) == 1 and saved[0].read_bytes().startswith(b"\x89PNG"), "the pad's picture, as a PNG"
    assert (corrections_dir / PREPROCESSED_DIR / "7" / saved[0].name).is_file()
    page.click("#clear")
    assert not page.locator("#correct").is_visible()


def test_the_answer_updates_while_drawing_and_clear_resets(page, artifacts):
    # The pen is still down: the debounced request goes out when the pointer rests, before pointerup.
    draw(page, [(60, 50), (220, 50), (150, 160), (110, 250)], release=False)
    page.wait_for_function(ANSWERED, timeout=15000)
    page.mouse.up()
    assert shows(page, "7") == "7"
    page.screenshot(path=str(artifacts / "browser-seven.png"))
    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"
    assert page.locator("#bars .bar").count() == 10
    assert page.eval_on_selector_all("#bars .fill", "els => els.map(e => parseFloat(e.style.width))") == [0] * 10
    assert not page.locator("#seen").is_visible()
    # Light ink on a dark pad is read the same way.
    page.check("#invert")
    draw(page, [(140, 40), (142, 140), (144, 240)])
    assert shows(page, "1") == "1"


def test_uploading_a_picture_shows_its_prediction(page, trained_run, data_dir, tmp_path, artifacts):
    (_, _), (x, _) = mnistlab.load_data(data_dir=data_dir)
    picture = tmp_path / "four.png"
    on_paper(x[4], 200).save(picture)
    expected = mnistlab.predict(trained_run, [picture])[0]
    page.set_input_files("#upload", str(picture))
    page.wait_for_function(ANSWERED, timeout=15000)
    assert page.locator("#digit").inner_text() == str(expected["digit"])
    assert page.locator("#bars .bar.top").get_attribute("data-digit") == str(expected["digit"])
    # The page shows the picture on the pad.
    pixels = page.evaluate("Array.from(document.querySelector('#pad').getContext('2d')"
                           ".getImageData(0, 0, 280, 280).data.filter((_, i) => i % 4 === 0))")
    assert min(pixels) < 64 < 192 < max(pixels)
    # An upload that is not an image gets its message, not a stale answer.
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("document.querySelector('#message').textContent.includes('not an image')", timeout=15000)
    assert page.locator("#digit").inner_text() == "?"
    page.screenshot(path=str(artifacts / "browser-upload-error.png"))


def write(page, strokes):
    """Strokes on the wide number pad with real pointer events; points in the pad's 840x240 pixels."""
    box = page.locator("#number-pad").bounding_box()
    sx, sy = box["width"] / 840, box["height"] / 240
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0] * sx, box["y"] + points[0][1] * sy)
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=8)
        page.mouse.up()


def test_writing_a_two_digit_number_shows_both_digits_and_their_boxes(page, artifacts):
    page.locator("#number-pad").scroll_into_view_if_needed()
    assert page.locator("#number").inner_text() == "?"
    write(page, [[(250, 40), (252, 120), (254, 200)],                            # a 1
                 [(400, 50), (540, 50), (480, 125), (440, 205)]])                # a 7
    try:
        page.wait_for_function("document.querySelector('#number').textContent === '17'", timeout=15000)
    except Exception:
        pass
    assert page.locator("#number").inner_text() == "17"
    assert page.locator("#number").get_attribute("data-boxes") == "2"
    # The boxes are drawn over the writing: their canvas is no longer empty.
    drawn = page.evaluate("Array.from(document.querySelector('#number-boxes').getContext('2d')"
                          ".getImageData(0, 0, 840, 240).data.filter((_, i) => i % 4 === 3)).some(a => a > 0)")
    assert drawn
    assert "% sure" in page.locator("#number-confidence").inner_text()
    page.screenshot(path=str(artifacts / "browser-number.png"))
    # The single-digit pad still works beside it, and Clear resets the number.
    page.click("#number-clear")
    assert page.locator("#number").inner_text() == "?"
