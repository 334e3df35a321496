"""The browser page in Debian's Chromium, served by cgan-serve and by plain static hosts: what a user
clicks and types, checked pixel by pixel against the Python runtime, and what a broken model, a
missing onnxruntime-web or file:// shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.page_driver import build_site, chromium, open_page, static_site
from cgan_runtime import DigitGenerator
from cgan_runtime.images import digits_picture, inverted, to_uint8
from tests.conftest import BUNDLED_MODEL
from tests.helpers import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]
GREY_LEVELS = 1  # the page's int8 kernels (wasm) against the Python runtime's (this CPU's)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("web") / "dist")


@pytest.fixture(scope="module")
def server(site):
    running = RunningServer("--port", "0", "--web", str(site))
    yield running
    code, stderr = running.stop()
    assert code == 0 and "Traceback" not in stderr, stderr


@pytest.fixture(scope="module")
def browser():
    with chromium() as context:
        yield context


@pytest.fixture(scope="module")
def page(browser, server):
    opened = open_page(browser, f"http://{server.url}/")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def generator() -> DigitGenerator:
    return DigitGenerator(BUNDLED_MODEL, device="cpu")


def canvas(page) -> np.ndarray:
    picture = page.evaluate("cganPage.picture()")
    return np.array(picture["pixels"], dtype=np.int16).reshape(picture["height"], picture["width"])


def settle(page) -> None:
    """Wait for every drawing the clicks and keys so far have asked for."""
    page.evaluate("cganPage.idle()")


def assert_same_picture(shown: np.ndarray, expected: np.ndarray) -> None:
    assert shown.shape == expected.shape
    assert np.abs(shown - expected.astype(np.int16)).max() <= GREY_LEVELS


def test_the_page_says_which_backend_and_how_many_threads_ran(page):
    ready = page.evaluate("cganPage.ready")
    assert ready["backend"] == "wasm" and ready["crossOriginIsolated"] is True
    assert ready["threads"] == min(4, page.evaluate("navigator.hardwareConcurrency"))
    assert ready["info"] == {
        "latentDim": 100,
        "numClasses": 10,
        "imageSize": 28,
        "outputRange": [-1, 1],
        "modelVersion": DigitGenerator(BUNDLED_MODEL).info.model_version,
    }
    line = page.inner_text("#backend")
    threads = f"{ready['threads']} threads" if ready["threads"] > 1 else "1 thread"
    assert "wasm backend" in line and threads in line
    assert page.is_hidden("#error") and page.is_hidden("#loading")


def test_the_first_picture_is_2026_in_style_1(page, generator):
    assert_same_picture(canvas(page), generator.text("2026", style=1))


def test_clicking_a_digit_draws_what_the_runtime_draws(page, generator):
    page.fill("#count", "25")
    page.fill("#style", "42")
    page.click("#digit-buttons button[data-digit='7']")
    settle(page)
    assert_same_picture(canvas(page), digits_picture(generator.sample(7, 25, seed=42), 5, False))
    assert page.get_attribute("#digit-buttons button[data-digit='7']", "aria-pressed") == "true"


def test_typing_a_number_writes_it_in_the_styles_hand(page, generator):
    page.fill("#style", "9")
    page.fill("#text", "2026")
    page.press("#text", "Enter")
    settle(page)
    shown = canvas(page)
    assert_same_picture(shown, generator.text("2026", style=9))
    page.fill("#text", "19 70")
    page.click("#write")
    settle(page)
    assert_same_picture(canvas(page), generator.text("19 70", style=9))


def test_a_new_hand_redraws_the_number_in_another_style(page, generator):
    page.fill("#text", "2026")
    page.click("#write")
    old_style = page.input_value("#style")
    page.click("#new-hand")
    settle(page)
    new_style = int(page.input_value("#style"))
    assert str(new_style) != old_style
    assert_same_picture(canvas(page), generator.text("2026", style=new_style))


def test_fixed_noise_through_the_test_hook_gives_the_runtimes_images(page, generator):
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((40, 100), dtype=np.float32)
    labels = rng.integers(0, 10, 40)
    result = page.evaluate(
        "([noise, labels]) => cganPage.generate(noise, labels).then(r => "
        "({output: Array.from(r.output), images: Array.from(r.images)}))",
        [noise.ravel().tolist(), labels.tolist()],
    )
    expected = generator.generate(noise, labels)
    output = np.array(result["output"], dtype=np.float32).reshape(expected.shape)
    assert np.abs(output - expected).max() < 2 / 255
    images = np.array(result["images"], dtype=np.int16).reshape(40, 28, 28)
    assert np.abs(images - to_uint8(expected, generator.info.output_range)).max() <= GREY_LEVELS


def test_invert_shows_the_negative(page):
    before = canvas(page)
    page.check("#invert")
    try:
        assert np.array_equal(canvas(page), inverted(before.astype(np.uint8)))
    finally:
        page.uncheck("#invert")
    assert np.array_equal(canvas(page), before)


def test_download_gives_the_picture_as_png(page, tmp_path):
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith(".png")
    grey = np.asarray(Image.open(saved).convert("L"), dtype=np.int16)
    assert np.array_equal(grey, canvas(page))


def test_a_character_that_is_not_a_digit_is_named(page):
    page.fill("#text", "20a6")
    page.click("#write")
    page.wait_for_selector("#error:not([hidden])")
    assert "character 'a' (position 3)" in page.inner_text("#error")
    page.fill("#text", "2026")
    page.click("#write")
    settle(page)
    assert page.is_hidden("#error")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("#count", "0", "how many: a whole number from 1 to 256"),
        ("#count", "257", "how many: a whole number from 1 to 256"),
        ("#style", "-3", "a style is a whole number"),
        ("#style", "1e300", "a style is a whole number"),
    ],
)
def test_a_value_out_of_range_is_named_and_the_picture_kept(page, field, value, message):
    before = canvas(page)
    old_value = page.input_value(field)
    page.fill(field, value)
    page.click("#digit-buttons button[data-digit='3']")
    settle(page)
    try:
        assert page.is_visible("#error") and message in page.inner_text("#error")
        assert np.array_equal(canvas(page), before)
    finally:
        page.fill(field, old_value)


@pytest.mark.parametrize(
    "model_bytes, message",
    [
        (b"not an onnx file at all" * 10, "not a cgan generator"),
        (None, "answered HTTP 404"),
    ],
    ids=["corrupt", "missing"],
)
def test_a_broken_model_shows_the_error_in_the_page(browser, site, tmp_path, model_bytes, message):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    (broken / "model" / "cgan_generator.onnx.gz").unlink()
    if model_bytes is None:
        (broken / "model" / "cgan_generator.onnx").unlink()
    else:
        (broken / "model" / "cgan_generator.onnx").write_bytes(model_bytes)
    with static_site(broken) as url:
        page = open_page(browser, url)
        try:
            assert page.is_visible("#error") and message in page.inner_text("#error")
            assert page.evaluate("document.body.dataset.drawn") is None
        finally:
            page.close()


def test_a_truncated_model_shows_the_error_in_the_page(browser, site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    model = broken / "model" / "cgan_generator.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with static_site(broken) as url:
        page = open_page(browser, url)
        try:
            assert page.is_visible("#error")
            assert "model" in page.inner_text("#error")
        finally:
            page.close()


def test_missing_onnxruntime_web_shows_the_error_in_the_page(browser, site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    shutil.rmtree(broken / "ort")
    with static_site(broken) as url:
        page = open_page(browser, url)
        try:
            assert page.is_visible("#error") and "onnxruntime-web" in page.inner_text("#error")
        finally:
            page.close()


def test_a_host_without_isolation_headers_runs_one_thread_and_says_why(browser, site, generator):
    with static_site(site, isolate=False) as url:
        page = open_page(browser, url + "index.html")
        try:
            ready = page.evaluate("cganPage.ready")
            assert ready["crossOriginIsolated"] is False and ready["threads"] == 1
            assert "1 thread (this page is not cross-origin isolated" in page.inner_text("#backend")
            assert_same_picture(canvas(page), generator.text("2026", style=1))
        finally:
            page.close()


def test_file_urls_are_refused_with_a_line_that_says_so(browser, site):
    page = browser.new_page()
    try:
        page.goto((site / "index.html").as_uri())
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert "This page needs http(s)" in page.inner_text("#error")
    finally:
        page.close()
