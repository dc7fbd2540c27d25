"""The Edges and Networks tabs in a real browser: an edge map, VGG-16's layer table, and a digit
drawn on the canvas classified by LeNet-5 (trained on first use)."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from .conftest import open_tab, screenshots, wait_for


def image_loaded(driver, element_id: str) -> bool:
    return bool(
        driver.execute_script(
            "const i = document.getElementById(arguments[0]);"
            "return i && i.complete && i.naturalWidth > 0;",
            element_id,
        )
    )


def test_edges_show_both_maps(page) -> None:
    open_tab(page, "edges")
    for pic in ("edges-original", "edges-signed", "edges-magnitude"):
        wait_for(page, lambda d, pic=pic: image_loaded(d, pic), 60, what=pic)
    first = page.find_element(By.ID, "edges-signed").get_attribute("src")
    Select(page.find_element(By.ID, "edges-kernel")).select_by_value("vertical")
    wait_for(page, lambda d: d.find_element(By.ID, "edges-signed").get_attribute("src") != first)
    assert "vertical" in page.find_element(By.ID, "edges-status").text
    screenshots(page, "edges")

    # a photo dropped on the picker (a real drop event carrying a file)
    before = page.find_element(By.ID, "edges-original").get_attribute("src")
    page.execute_script(
        """const [done] = [arguments[arguments.length - 1]];
        fetch("/api/v1/samples/coffee").then((r) => r.blob()).then((blob) => {
          const data = new DataTransfer();
          data.items.add(new File([blob], "coffee.jpg", {type: blob.type}));
          const target = document.getElementById("edges-picker");
          target.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        });"""
    )
    wait_for(page, lambda d: "coffee.jpg" in d.find_element(By.ID, "edges-dropped").text)
    wait_for(page, lambda d: d.find_element(By.ID, "edges-original").get_attribute("src") != before)
    wait_for(page, lambda d: image_loaded(d, "edges-original"))
    size = page.execute_script(
        "const i = document.getElementById('edges-original');"
        "return [i.naturalWidth, i.naturalHeight]"
    )
    assert size == [512, 341]  # coffee (600x400) as samples are sent; camera is 512x512


def test_vgg16_layer_table(page) -> None:
    open_tab(page, "networks")
    Select(page.find_element(By.ID, "net-model")).select_by_value("vgg16")
    wait_for(page, lambda d: d.find_element(By.ID, "net-total-params").text == "138,357,544", 60)
    rows = page.find_elements(By.CSS_SELECTOR, "#net-table tbody tr")
    assert rows[0].text.split()[:2] == ["features.0", "Conv2d"]
    Select(page.find_element(By.ID, "net-model")).select_by_value("lenet5")
    wait_for(page, lambda d: d.find_element(By.ID, "net-total-params").text != "138,357,544")
    wait_for(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#net-chart circle")) >= 9, 120)
    screenshots(page, "networks")


def draw_seven(driver) -> None:
    """A 7 drawn with the mouse: a bar across the top, a stroke down to the bottom left."""
    canvas = driver.find_element(By.ID, "digit-canvas")
    w, h = canvas.size["width"], canvas.size["height"]
    to = lambda fx, fy: (int((fx - 0.5) * w), int((fy - 0.5) * h))  # noqa: E731 (from centre)
    chain = ActionChains(driver)
    chain.move_to_element_with_offset(canvas, *to(0.25, 0.15)).click_and_hold()
    for fx in (0.4, 0.55, 0.72):
        chain.move_to_element_with_offset(canvas, *to(fx, 0.15))
    for i in range(1, 9):
        chain.move_to_element_with_offset(canvas, *to(0.72 - 0.3 * i / 8, 0.15 + 0.7 * i / 8))
    chain.release().perform()


def test_drawn_digit_is_classified(page) -> None:
    open_tab(page, "networks")
    page.find_element(By.ID, "digit-clear").click()
    draw_seven(page)
    prediction = page.find_element(By.ID, "digit-prediction")
    wait_for(page, lambda d: prediction.text.startswith("LeNet-5 says:"), 120)  # trains first
    assert prediction.text == "LeNet-5 says: 7"
    bars = page.find_elements(By.CSS_SELECTOR, "#digit-probs .bar")
    assert len(bars) == 10
    maps = page.find_elements(By.CSS_SELECTOR, "#digit-maps canvas")
    assert len(maps) == 1 + 6 + 16 + 1  # the 8x8 input, c1's 6 maps, c3's 16, c5's 120 as a strip

    # keyboard path: an example digit from the data set, no drawing needed
    Select(page.find_element(By.ID, "digit-example")).select_by_value("4")
    page.find_element(By.ID, "digit-example-draw").click()
    wait_for(page, lambda d: prediction.text == "LeNet-5 says: 4", 30)
    screenshots(page, "digits", scroll_to="digits")
