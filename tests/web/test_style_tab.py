"""The Style tab in a real browser: a small job runs to the end with progress and a result to
download; a second one is cancelled."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from .conftest import open_tab, screenshots, wait_for


def set_number(page, element_id: str, value: int) -> None:
    field = page.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(str(value))


def test_style_job_runs_to_the_end(page) -> None:
    open_tab(page, "style")
    set_number(page, "style-size", 64)
    set_number(page, "style-iterations", 12)
    page.find_element(By.ID, "style-start").click()
    status = page.find_element(By.ID, "style-status")
    wait_for(page, lambda d: status.get_attribute("data-state") == "done", 180)
    assert "iteration 12 of 12" in status.text
    assert page.find_element(By.ID, "style-progress").get_attribute("value") == "12"
    link = page.find_element(By.ID, "style-download")
    assert link.is_displayed() and link.get_attribute("href").startswith("blob:")
    size = page.execute_script(
        "const i = document.getElementById('style-image'); return [i.naturalWidth, i.naturalHeight]"
    )
    assert max(size) == 64
    screenshots(page, "style")


def test_style_job_can_be_cancelled(page) -> None:
    open_tab(page, "style")
    set_number(page, "style-size", 64)
    set_number(page, "style-iterations", 2000)
    page.find_element(By.ID, "style-start").click()
    status = page.find_element(By.ID, "style-status")
    wait_for(page, lambda d: status.get_attribute("data-state") == "running", 60)
    wait_for(page, lambda d: d.find_element(By.ID, "style-cancel").is_enabled())
    page.find_element(By.ID, "style-cancel").click()
    wait_for(page, lambda d: status.get_attribute("data-state") == "cancelled", 60)
    assert "of 2000" in status.text
    assert page.find_element(By.ID, "style-start").is_enabled()


def test_an_option_out_of_range_is_named_beside_it(page) -> None:
    open_tab(page, "style")
    set_number(page, "style-size", 4000)
    page.find_element(By.ID, "style-start").click()
    error = wait_for(page, lambda d: d.find_element(By.ID, "style-size-error"), 60)
    wait_for(page, lambda d: "size must be between 16 and 512 px" in error.text, 60)
    assert page.find_element(By.ID, "style-size").get_attribute("aria-invalid") == "true"
    set_number(page, "style-size", 64)
