"""The Convolution tab in a real browser: the notes' example, the size formula, the
step-through, an error shown beside its control, convolution over volume, the learned filter."""

from __future__ import annotations

import numpy as np
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from cnnkit.edges import sobel

from .conftest import open_tab, screenshots, wait_for


def grid_rows(driver, grid_id: str) -> list[list[float]] | None:
    """The numbers of a read-only grid, read in one script (the page may redraw it any time)."""
    return driver.execute_script(
        """const g = document.getElementById(arguments[0]);
        if (!g) return null;
        const cols = getComputedStyle(g).gridTemplateColumns.split(" ").length;
        const v = [...g.querySelectorAll("span")].map((s) => Number(s.textContent));
        const rows = [];
        for (let i = 0; i < v.length; i += cols) rows.push(v.slice(i, i + cols));
        return rows;""",
        grid_id,
    )


def formula(driver) -> str:
    return driver.find_element(By.ID, "conv-formula").text


def test_notes_example_and_size_formula(page) -> None:
    open_tab(page, "conv")
    wait_for(page, lambda d: "= 4" in formula(d), what="the size formula")
    assert grid_rows(page, "conv-output") == [[0, 30, 30, 0]] * 4
    assert "floor((6 + 2*0 - 3) / 1) + 1 = 4" in formula(page)

    Select(page.find_element(By.ID, "conv-p")).select_by_value("same")
    wait_for(page, lambda d: "floor((6 + 2*1 - 3) / 1) + 1 = 6" in formula(d))
    wait_for(page, lambda d: len(grid_rows(d, "conv-output") or []) == 6)

    stride = page.find_element(By.ID, "conv-s")
    stride.clear()
    stride.send_keys("2")
    wait_for(page, lambda d: "floor((6 + 2*1 - 3) / 2) + 1 = 3" in formula(d))
    wait_for(page, lambda d: len(grid_rows(d, "conv-output") or []) == 3)
    screenshots(page, "conv")


def test_step_through_and_an_edited_cell(page) -> None:
    open_tab(page, "conv")
    page.find_element(By.ID, "conv-reset").click()
    Select(page.find_element(By.ID, "conv-p")).select_by_value("valid")
    stride = page.find_element(By.ID, "conv-s")
    stride.clear()
    stride.send_keys("1")
    wait_for(page, lambda d: "floor((6 + 2*0 - 3) / 1) + 1 = 4" in formula(d))
    page.find_element(By.ID, "conv-next").click()  # the window at (1, 2): 10 10 0 in each row
    products = page.find_element(By.ID, "conv-products").text
    assert products.startswith("Z[1,2] = 10×1 + 10×0 + 0×-1") and "= 30" in products
    screenshots(page, "conv-step")
    cell = page.find_element(By.ID, "conv-input-0-0")
    cell.send_keys(Keys.CONTROL, "a")
    cell.send_keys("13")  # Z[1,1] = (13 - 10) + (10 - 10) + (10 - 10) = 3
    wait_for(page, lambda d: (grid_rows(d, "conv-output") or [[None]])[0][0] == 3)


def test_problem_detail_is_shown_beside_the_control(page) -> None:
    open_tab(page, "conv")
    Select(page.find_element(By.ID, "conv-f")).select_by_value("5")
    Select(page.find_element(By.ID, "conv-n")).select_by_value("4")
    error = wait_for(page, lambda d: d.find_element(By.ID, "conv-n-error"))  # beside n
    wait_for(page, lambda d: "does not fit" in error.text)
    Select(page.find_element(By.ID, "conv-n")).select_by_value("6")
    wait_for(page, lambda d: not error.is_displayed())
    Select(page.find_element(By.ID, "conv-f")).select_by_value("3")
    assert page.find_element(By.ID, "conv-f").get_attribute("aria-invalid") is None


def test_volume_and_learned_filter(page) -> None:
    open_tab(page, "conv")
    page.find_element(By.ID, "conv-view-volume").click()
    wait_for(page, lambda d: "-> (4, 4, 2)" in d.find_element(By.ID, "vol-shape").text)
    Select(page.find_element(By.ID, "vol-filters")).select_by_value("3")
    wait_for(page, lambda d: "-> (4, 4, 3)" in d.find_element(By.ID, "vol-shape").text)
    screenshots(page, "conv-volume")

    page.find_element(By.ID, "conv-view-learn").click()
    steps = page.find_element(By.ID, "learn-steps")
    steps.clear()
    steps.send_keys("300")
    page.find_element(By.ID, "learn-go").click()
    wait_for(page, lambda d: "(done)" in d.find_element(By.ID, "learn-status").text, 60)
    learned = np.array(grid_rows(page, "conv-learn-kernel"), dtype=float)
    assert np.abs(learned - sobel()[0]).max() < 0.02  # shown to 2 decimals
    screenshots(page, "conv-learn")


def test_tabs_are_keyboard_operable(page) -> None:
    open_tab(page, "conv")
    tab = page.find_element(By.ID, "tab-conv")
    tab.send_keys(Keys.ARROW_RIGHT)
    wait_for(page, lambda d: d.find_element(By.ID, "panel-edges").is_displayed())
    assert page.switch_to.active_element.get_attribute("id") == "tab-edges"
    page.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    wait_for(page, lambda d: d.find_element(By.ID, "panel-conv").is_displayed())


def test_printed_url_signs_in_and_sign_out(server, fake_camera) -> None:
    """The one-time URL that cnnkit serve prints opens the app signed in (no sign-in box)."""
    import re

    from .conftest import new_driver, quit_driver, severe_entries

    log = server.log.read_text()
    url = re.search(r"open (http://\S+/\?token=\S+)", log)
    assert url, f"no sign-in URL in the server's output: {log[-500:]}"
    driver = new_driver()
    try:
        driver.get(url.group(1))
        wait_for(driver, lambda d: "admin" in d.find_element(By.ID, "whoami").text)
        assert not driver.find_element(By.ID, "signin").is_displayed()
        assert "token" not in driver.current_url  # redirected to a clean /
        open_tab(driver, "conv")
        wait_for(driver, lambda d: "= 4" in formula(d))
        driver.find_element(By.ID, "signout").click()
        wait_for(driver, lambda d: d.find_element(By.ID, "signin").is_displayed())
        assert not severe_entries(driver)
    finally:
        quit_driver(driver)
