"""The Style tab in a real browser: a small job runs to the end with progress and a result to
download; the fast result is shown before a long job ends, which is then cancelled; "Fast only"
with a built-in style ends with an image to download; a method the style cannot use is named
beside the method."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from .conftest import open_tab, screenshots, wait_for


def set_number(page, element_id: str, value: int) -> None:
    field = page.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(str(value))


def test_style_job_runs_to_the_end(page) -> None:
    open_tab(page, "style")
    set_number(page, "style-size", 128)  # the tab's default
    set_number(page, "style-iterations", 12)
    page.find_element(By.ID, "style-start").click()
    status = page.find_element(By.ID, "style-status")
    wait_for(page, lambda d: status.get_attribute("data-state") == "done", 180)
    assert "iteration 12 of 12" in status.text and "fast result in" in status.text
    assert page.find_element(By.ID, "style-progress").get_attribute("value") == "12"
    link = page.find_element(By.ID, "style-download")
    assert link.is_displayed() and link.get_attribute("href").startswith("blob:")
    size = page.execute_script(
        "const i = document.getElementById('style-image'); return [i.naturalWidth, i.naturalHeight]"
    )
    assert max(size) == 128
    screenshots(page, "style")


def image_shown(page) -> tuple[str | None, list[int]]:
    return page.execute_script(
        "const i = document.getElementById('style-image');"
        "return [i.dataset.stage || null, i.complete ? [i.naturalWidth, i.naturalHeight] : []]"
    )


def test_the_fast_image_comes_first_and_the_job_can_be_cancelled(page) -> None:
    open_tab(page, "style")
    set_number(page, "style-size", 64)
    set_number(page, "style-iterations", 2000)
    page.find_element(By.ID, "style-start").click()
    status = page.find_element(By.ID, "style-status")
    wait_for(page, lambda d: image_shown(d)[0] == "fast" and image_shown(d)[1], 60)
    assert max(image_shown(page)[1]) == 64
    assert status.get_attribute("data-state") == "running"  # long before the end
    assert "fast result" in page.find_element(By.ID, "style-caption").text
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


def choose(page, element_id: str, value: str) -> None:
    Select(page.find_element(By.ID, element_id)).select_by_value(value)


def test_fast_only_with_a_built_in_style_ends_with_an_image(page) -> None:
    open_tab(page, "style")
    set_number(page, "style-size", 128)
    choose(page, "style-builtin", "7")  # switches the method to fast
    assert (
        Select(page.find_element(By.ID, "style-method")).first_selected_option.get_attribute(
            "value"
        )
        == "fast"
    )
    try:
        page.find_element(By.ID, "style-start").click()
        status = page.find_element(By.ID, "style-status")
        wait_for(page, lambda d: status.get_attribute("data-state") == "done", 60)
        assert "fast result in" in status.text
        link = page.find_element(By.ID, "style-download")
        assert link.is_displayed() and link.get_attribute("href").startswith("blob:")
        wait_for(page, lambda d: image_shown(d)[0] == "result" and image_shown(d)[1], 10)
        assert max(image_shown(page)[1]) == 128
        png = page.execute_async_script(
            "const done = arguments[0];"
            "fetch(document.getElementById('style-download').href).then((r) => r.arrayBuffer())"
            ".then((b) => done(Array.from(new Uint8Array(b.slice(0, 8)))))"
        )
        assert bytes(png) == b"\x89PNG\r\n\x1a\n"  # the download is a PNG
        screenshots(page, "style-fast")

        choose(page, "style-method", "refine")  # a built-in style has no image for Gatys
        page.find_element(By.ID, "style-start").click()
        error = wait_for(page, lambda d: d.find_element(By.ID, "style-method-error"), 30)
        wait_for(page, lambda d: "method refine needs a style image" in error.text, 30)
        assert page.find_element(By.ID, "style-method").get_attribute("aria-invalid") == "true"
    finally:
        choose(page, "style-builtin", "")
        choose(page, "style-method", "refine")
