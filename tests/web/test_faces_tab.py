"""The Faces tab in a real browser: enroll from a file, identify (the name drawn, a stranger
"unknown"), verify, and the webcam (Chromium's fake camera showing a shipped face photo):
enroll from it, rename, remove, and live identification."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from cnnkit.io import sample_path

from .conftest import WebServer, open_tab, screenshots, wait_for


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("faces")
    grace = Image.open(sample_path("grace_hopper")).convert("RGB")
    stranger = Image.open(sample_path("astronaut")).convert("RGB")
    pair = Image.new("RGB", (grace.width + stranger.width, max(grace.height, stranger.height)))
    pair.paste(grace, (0, 0))
    pair.paste(stranger, (grace.width, 0))
    paths = {"grace": tmp / "grace.jpg", "stranger": tmp / "stranger.jpg", "pair": tmp / "pair.jpg"}
    grace.save(paths["grace"])
    stranger.save(paths["stranger"])
    pair.save(paths["pair"])
    return paths


def persons(server: WebServer) -> list[dict]:
    return server.api("GET", "/persons?limit=1000").json()["items"]


def person_names(server: WebServer) -> dict[str, int]:
    return {p["name"]: p["photos"] for p in persons(server)}


def enroll_from_file(page, name: str, photo: Path) -> None:
    field = page.find_element(By.ID, "enroll-name")
    field.clear()
    field.send_keys(name)
    page.find_element(By.ID, "enroll-file").send_keys(str(photo))
    page.find_element(By.ID, "enroll-run").click()
    wait_for(page, lambda d: f"{name} enrolled." in d.find_element(By.ID, "enroll-status").text, 60)


def test_enroll_identify_verify(page, server: WebServer, photos: dict[str, Path]) -> None:
    open_tab(page, "faces")
    enroll_from_file(page, "Grace Hopper", photos["grace"])
    assert person_names(server).get("Grace Hopper") == 1
    wait_for(page, lambda d: "Grace Hopper" in d.find_element(By.ID, "face-persons").text)

    page.find_element(By.ID, "identify-file").send_keys(str(photos["pair"]))
    page.find_element(By.ID, "identify-run").click()
    names = lambda d: [li.text for li in d.find_elements(By.CSS_SELECTOR, "#identify-names li")]  # noqa: E731
    wait_for(page, lambda d: len(names(d)) == 2, 60)
    assert sorted(names(page)) == ["Grace Hopper", "unknown"]
    label = page.find_element(By.ID, "identify-canvas").get_attribute("aria-label")
    assert "Grace Hopper" in label and "unknown" in label
    assert page.execute_script("return document.getElementById('identify-canvas').width") > 0

    Select(page.find_element(By.ID, "verify-person")).select_by_visible_text("Grace Hopper")
    page.find_element(By.ID, "verify-file").send_keys(str(photos["stranger"]))
    page.find_element(By.ID, "verify-run").click()
    verdict = page.find_element(By.ID, "verify-result")
    wait_for(page, lambda d: "tau" in verdict.text, 60)
    assert verdict.text.startswith("no match")
    screenshots(page, "faces")
    screenshots(page, "faces-identify", scroll_to="identify-card")


def test_no_face_error_is_shown_beside_enroll(page, server: WebServer) -> None:
    open_tab(page, "faces")
    field = page.find_element(By.ID, "enroll-name")
    field.clear()
    field.send_keys("Brick Wall")
    Select(page.find_element(By.ID, "enroll-sample")).select_by_value("brick")
    page.find_element(By.ID, "enroll-run").click()
    error = wait_for(page, lambda d: d.find_element(By.ID, "enroll-run-error"), 60)
    wait_for(page, lambda d: "face" in error.text.lower(), 60)
    assert "Brick Wall" not in person_names(server)  # the empty person was removed again


def test_webcam_enroll_rename_remove_and_live(page, server: WebServer, photos) -> None:
    open_tab(page, "faces")
    field = page.find_element(By.ID, "enroll-name")
    field.clear()
    field.send_keys("Camera Person")
    page.find_element(By.ID, "enroll-webcam").click()
    status = page.find_element(By.ID, "enroll-status")
    wait_for(page, lambda d: "Camera Person enrolled." in status.text, 60)
    people = person_names(server)
    assert people.get("Camera Person") == 1
    pid = next(p["id"] for p in persons(server) if p["name"] == "Camera Person")

    rename = page.find_element(By.ID, f"person-{pid}-name")
    rename.clear()
    rename.send_keys("Grace on camera")
    page.find_element(By.ID, f"person-{pid}-rename").click()
    wait_for(page, lambda d: "Grace on camera" in person_names(server))

    page.find_element(By.ID, "live-toggle").click()
    live = page.find_element(By.ID, "live-status")
    wait_for(page, lambda d: "frames/s" in live.text, 60)
    known = {"Grace Hopper", "Grace on camera"}
    wait_for(page, lambda d: set((live.get_attribute("data-names") or "").split(",")) & known, 60)
    screenshots(page, "faces-live")
    page.find_element(By.ID, "live-toggle").click()
    wait_for(page, lambda d: d.find_element(By.ID, "live-toggle").text.startswith("Start"))

    page.find_element(By.ID, f"person-{pid}-remove").click()
    wait_for(page, lambda d: "Grace on camera" not in person_names(server))
    wait_for(page, lambda d: "Grace on camera" not in d.find_element(By.ID, "face-persons").text)
