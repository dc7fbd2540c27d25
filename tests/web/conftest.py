"""The browser tests' set-up: a real ``cnnkit serve`` on a loopback port, Debian's chromium driven
headless by Selenium (with a fake webcam showing a shipped face photo), console checks and
screenshots.

Chromium missing is a failure that says what to install, never a skip. Screenshots go to
``$CNNKIT_WEB_SCREENSHOTS`` (default: ``<tmp>/cnnkit-web-screenshots``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

CHROMIUM = os.environ.get("CNNKIT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CNNKIT_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = (
    "the browser tests need Debian's chromium and chromium-driver: "
    "apt-get install -y chromium chromium-driver (or set CNNKIT_CHROMIUM / CNNKIT_CHROMEDRIVER)"
)
SIZES = {"desktop": (1280, 800), "phone": (375, 812)}


@dataclass
class WebServer:
    """A real ``cnnkit serve`` (tests/serve/server.py starts it) and an admin key for it."""

    url: str
    key: str
    log: Path
    running: Any

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.key, **kwargs.pop("headers", {})}
        r = httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kwargs)
        r.raise_for_status()
        return r


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    from tests.serve.server import make_key, start_server

    folder = tmp_path_factory.mktemp("web-serve")
    db = str(folder / "serve.sqlite3")
    key = make_key(db, "admin")
    # the digits model is trained into a fresh cache folder: the first drawing trains it
    before = os.environ.get("CNNKIT_CACHE_DIR")
    os.environ["CNNKIT_CACHE_DIR"] = str(folder / "cache")
    try:
        running = start_server(db, folder)
    finally:
        if before is None:
            del os.environ["CNNKIT_CACHE_DIR"]
        else:
            os.environ["CNNKIT_CACHE_DIR"] = before
    yield WebServer(running.url, key, running.log, running)
    running.stop()


def write_y4m(image: Image.Image, path: Path, size: tuple[int, int] = (640, 480), frames: int = 5):
    """A YUV4MPEG2 (4:2:0) clip of ``image`` letterboxed to ``size``, for Chromium's fake camera."""
    w, h = size
    canvas = Image.new("RGB", size, (40, 40, 40))
    img = image.convert("RGB")
    img.thumbnail(size)
    canvas.paste(img, ((w - img.width) // 2, (h - img.height) // 2))
    ycc = np.asarray(canvas.convert("YCbCr"), dtype=np.float32)
    y = ycc[..., 0].astype(np.uint8)
    u = ycc[..., 1].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
    v = ycc[..., 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
    frame = b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes()
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnkit.io import sample_path

    tmp = tmp_path_factory.mktemp("camera")
    return write_y4m(Image.open(sample_path("grace_hopper")), tmp / "grace.y4m")


def new_driver(camera: Path | None = None, size: tuple[int, int] = SIZES["desktop"]):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing: {INSTALL_HINT}", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="cnnkit-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ):
        opts.add_argument(flag)
    if camera is not None:
        opts.add_argument(f"--use-file-for-fake-video-capture={camera}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.profile_dir = profile  # type: ignore[attr-defined]
    return driver


def quit_driver(driver) -> None:
    profile = getattr(driver, "profile_dir", None)
    driver.quit()
    if profile:
        shutil.rmtree(profile, ignore_errors=True)


def severe_entries(driver) -> list[dict]:
    """SEVERE browser-log entries: JavaScript errors, and server errors (5xx). A 4xx answer the
    page shows as a message (a 401 before signing in, a 422 the test provoked) is logged by
    Chromium as a SEVERE network entry too; those are the API's documented answers, not errors
    of the page, and are left out."""
    bad = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        message = entry.get("message", "")
        if entry.get("source") == "network" and " status of 4" in message:
            continue
        bad.append(entry)
    return bad


@pytest.fixture(scope="session")
def browser(server: WebServer, fake_camera: Path) -> Iterator:
    """One signed-in browser for the session (1280x800)."""
    from selenium.webdriver.common.by import By

    driver = new_driver(fake_camera)
    try:
        driver.get(server.url + "/")
        wait_for(driver, lambda d: d.find_element(By.ID, "signin-key").is_displayed())
        driver.find_element(By.ID, "signin-key").send_keys(server.key)
        driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
        wait_for(driver, lambda d: not d.find_element(By.ID, "signin").is_displayed())
        yield driver
    finally:
        quit_driver(driver)


@pytest.fixture
def page(browser):
    """The session's browser; fails the test on a SEVERE console entry during it."""
    browser.get_log("browser")  # drop what earlier tests left
    yield browser
    bad = severe_entries(browser)
    assert not bad, f"browser console errors: {bad}"


def wait_for(driver, condition, timeout: float = 30.0, what: str = ""):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page redraws or reloads (sign-out reloads it) while a condition reads an element:
    # besides NoSuchElement and StaleElementReference (both WebDriverExceptions), Chromium then
    # answers "Node with given id does not belong to the document". Keep polling; a condition
    # that never holds still fails at the timeout.
    ignored = (WebDriverException,)
    wait = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored)
    return wait.until(condition, what)


def open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, f"tab-{name}").click()
    wait_for(driver, lambda d: d.find_element(By.ID, f"panel-{name}").is_displayed())


def screenshot_dir() -> Path:
    root = os.environ.get("CNNKIT_WEB_SCREENSHOTS")
    path = Path(root) if root else Path(tempfile.gettempdir()) / "cnnkit-web-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshots(driver, name: str, scroll_to: str | None = None) -> list[Path]:
    """Save the page at 1280x800 and at 375x812 (phone), then restore the desktop size; fail if
    the page scrolls sideways at either. ``scroll_to``: an element id to show at the top."""
    saved = []
    for label, (w, h) in SIZES.items():
        driver.set_window_rect(width=w, height=h)
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        driver.set_window_rect(width=2 * w - inner[0], height=2 * h - inner[1])
        if scroll_to:
            driver.execute_script(
                "document.getElementById(arguments[0]).scrollIntoView({block: 'start'})", scroll_to
            )
        time.sleep(0.3)
        path = screenshot_dir() / f"{name}-{label}.png"
        assert driver.save_screenshot(str(path)), f"no screenshot at {path}"
        saved.append(path)
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= w + 1, f"{name}: the page is {width} px wide at {w} px (scrolls sideways)"
    driver.set_window_rect(width=SIZES["desktop"][0], height=SIZES["desktop"][1])
    return saved
