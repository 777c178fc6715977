"""The web app in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by selenium against ``tools/app.py`` serving the tiny MEMatte on a free loopback port.

It uploads a file that is not an image (the page says so), then a photograph, paints a trimap
with the mouse (grey unknown band, white foreground), runs with a keep ratio, downloads the
alpha PNG and checks it equals MattingPredictor on the same image, trimap and budget. Every
request the browser made must have gone to 127.0.0.1. The page with the result is saved as a
screenshot in the test's folder, and as docs/images/app.png with MEMATTE_UPDATE_SCREENSHOT=1.
Under CI=true a missing browser fails the test instead of skipping it.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mematte_d2.config import load_config
from mematte_d2.inference.predictor import MattingPredictor
from mematte_d2.utils.image_io import alpha_to_png_array, read_image, read_plane, write_png

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
KEEP_RATIO = 0.5
WAIT = float(os.environ.get("MEMATTE_BROWSER_WAIT", 180))  # seconds to start, and per run


def _require_browser():
    """selenium's webdriver module, or skip (fail under CI=true) when anything is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if importlib.util.find_spec("gradio") is None:
        missing.append("gradio (pip install .[app])")
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium (pip install .[app])")
        webdriver = None
    if missing:
        message = f"browser test needs {', '.join(missing)} (apt-get install chromium " \
                  "chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return webdriver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_model_args, tmp_path):
    """The app's URL, serving the tiny model from a subprocess."""
    config, weights, opts = tiny_model_args
    port = _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")]), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools/app.py"), "--config-file", config, "--weights",
         weights, "--port", str(port), "--device", "cpu", *opts],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}/"
    os.environ["MEMATTE_TEST_SERVER_LOG"] = str(tmp_path / "server.log")
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"app did not start:\n{(tmp_path / 'server.log').read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser(tmp_path):
    webdriver = _require_browser()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1250",
                 f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what: str, timeout: float = WAIT):
    """``condition(driver)`` once truthy; on a timeout a screenshot beside the server's log
    and the log's end in the failure."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(condition)
    except TimeoutException:
        log = Path(os.environ["MEMATTE_TEST_SERVER_LOG"])
        driver.save_screenshot(str(log.with_name("timeout.png")))
        pytest.fail(f"waited {timeout} s for {what}; server log:\n{log.read_text()[-3000:]}")


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _upload(driver, elem_id: str, path: Path) -> None:
    _css(driver, f"#{elem_id} input[type=file]").send_keys(str(path))


def _paint(driver, colour: str, size: int, points: list[tuple[int, int]]) -> None:
    """One mouse stroke through ``points`` (offsets from the canvas centre) with the brush of
    ``colour`` ("rgb(r, g, b)") at ``size``."""
    from selenium.webdriver.common.action_chains import ActionChains

    _css(driver, "#editor button[aria-label='Color']").click()
    _css(driver, f"#editor button.color[style*='{colour}']").click()
    _css(driver, "#editor button[aria-label='Brush Size']").click()
    driver.execute_script(
        "const s = arguments[0]; s.value = arguments[1];"
        "s.dispatchEvent(new Event('input', {bubbles: true}));",
        _css(driver, "#editor input[type=range]"), size,
    )
    canvas = [c for c in driver.find_elements("css selector", "#editor canvas")
              if c.is_displayed()][-1]
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *points[0]).click_and_hold()
    for x, y in points[1:]:
        chain = chain.move_to_element_with_offset(canvas, x, y)
    chain.release().perform()


def _download(driver, elem_id: str, path: Path) -> Path:
    """Fetch the file a gr.File output links to, from the app's own server."""
    link = _wait(driver, lambda d: next(
        (a for a in d.find_elements("css selector", f"#{elem_id} a[href]")
         if "/file=" in a.get_attribute("href") or "gradio_api" in a.get_attribute("href")),
        None), f"the {elem_id} download link")
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as response:
        path.write_bytes(response.read())
    return path


def _hosts_requested(driver) -> set[str]:
    """Scheme://host of every network request in Chromium's performance log."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            params = message["params"]
            url = params["request"]["url"] if "request" in params else params["url"]
            parts = urllib.parse.urlsplit(url)
            if parts.scheme in ("http", "https", "ws", "wss"):
                hosts.add(f"{parts.scheme}://{parts.hostname}")
    return hosts


def test_paint_run_and_download_in_a_browser(server, browser, tiny_model_args, photo_rgb,
                                             tmp_path):
    photo = tmp_path / "chelsea.png"
    write_png(photo, photo_rgb)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("shopping list, not a picture")

    browser.get(server)
    _wait(browser, lambda d: d.find_elements("css selector", "#image-file input[type=file]"),
          "the page")
    _upload(browser, "image-file", not_an_image)
    _wait(browser, lambda d: "notes.png: not a readable image" in d.page_source,
          "the message about the non-image")
    assert "Traceback" not in browser.page_source

    browser.refresh()  # a fresh session, as a user would start again
    _wait(browser, lambda d: d.find_elements("css selector", "#image-file input[type=file]"),
          "the page")
    _upload(browser, "image-file", photo)
    _wait(browser, lambda d: "451 x 300 pixels" in _css(d, "#image-info").text, "the upload")
    _wait(browser, lambda d: any(c.is_displayed() for c in d.find_elements(
        "css selector", "#editor canvas")), "the editor")
    time.sleep(1)  # the editor draws the photo after its canvas appears
    # A grey loop around the cat's face, then white over its middle.
    loop = [(-150, -90), (150, -90), (150, 90), (-150, 90), (-150, -90)]
    _paint(browser, "rgb(128, 128, 128)", 45, loop)
    _paint(browser, "rgb(255, 255, 255)", 50, [(-90, -35), (90, -35), (90, 40), (-90, 40)])

    _css(browser, "#budget label:nth-of-type(2) input").click()  # keep ratio
    ratio = _css(browser, "#keep-ratio input[type=number]")
    ratio.clear()
    ratio.send_keys(str(KEEP_RATIO), "\t")
    _css(browser, "#run").click()
    _wait(browser, lambda d: "tokens routed" in _css(d, "#summary").text, "the result")
    alpha = read_plane(_download(browser, "alpha-file", tmp_path / "alpha.png"))
    trimap = read_plane(_download(browser, "trimap-out", tmp_path / "trimap.png"))

    assert np.count_nonzero(trimap == 128) > 1000 and np.count_nonzero(trimap == 255) > 1000
    assert set(np.unique(trimap)) <= {0, 128, 255}
    config, weights, opts = tiny_model_args
    predictor = MattingPredictor(load_config(config, opts), weights, device="cpu")
    expected = predictor.predict(read_image(photo), trimap, keep_ratio=KEEP_RATIO).alpha
    assert alpha.dtype == np.uint8
    assert np.array_equal(alpha, alpha_to_png_array(expected, 8))

    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "app.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("MEMATTE_UPDATE_SCREENSHOT") == "1":  # 256 colours keep it small
        Image.open(shot).convert("RGB").quantize(256).save(REPO / "docs/images/app.png",
                                                            optimize=True)

    hosts = _hosts_requested(browser)
    assert hosts and hosts <= {"http://127.0.0.1", "ws://127.0.0.1"}, hosts
