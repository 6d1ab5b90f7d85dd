"""The playground in a real browser: headless Chromium (Debian's package, never a browser download) driven
by Playwright, against `cnndsl serve`'s application served by uvicorn on a free loopback port.

Skipped, with the reason, where no Chromium is installed (.ci/run installs it). CNNDSL_CHROMIUM names
another executable. CNNDSL_SCREENSHOTS=DIR saves a screenshot of every state the tests reach.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest
from helpers import ROOT

import cnndsl

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install .[test])")
CHROMIUM = os.environ.get("CNNDSL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium to drive: apt install chromium "
                                                          "(or set CNNDSL_CHROMIUM to its executable)")
SHOTS = os.environ.get("CNNDSL_SCREENSHOTS")
WAIT = 20_000  # ms: generous, for a busy 2-core machine; nothing here measures speed
TOKEN = "playground-test-token"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("specs")
    (path / "mine.cnn").write_text("network mine\ninput 3x32x32\nconv 8 3x3 relu\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(folder):
    """The playground on 127.0.0.1:PORT in a thread, as `cnndsl serve FOLDER --port 0` runs it."""
    import uvicorn

    from cnndsl.serve.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(create_app(folder, token=TOKEN), log_level="warning", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/?token={TOKEN}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    page.wait_for_selector("body.ready", state="attached", timeout=WAIT)
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def shot(page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


def replace_text(page, text: str) -> None:
    """Select everything in the editor and type ``text`` key by key, as a person would."""
    page.click(".cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


def expect_text(page, selector: str, text: str) -> None:
    playwright_api.expect(page.locator(selector)).to_have_text(text, timeout=WAIT)


SPEC = "network typed\ninput 3x32x32\nconv 16 3x3 pad=1 relu\nmaxpool 2x2\nflatten\ndense 10\n"


def test_type_a_spec_and_see_the_totals(page):
    replace_text(page, SPEC)
    params = cnndsl.parse(SPEC).totals.params
    expect_text(page, "#total-params", f"{params:,}")
    expect_text(page, "#title", "typed")
    assert page.locator("#layers tbody tr").count() == len(cnndsl.parse(SPEC).layers)
    shot(page, "1-typed")


def test_a_mistake_is_underlined_with_its_hint_and_clears_when_fixed(page):
    replace_text(page, SPEC.replace("dense 10", "dens 10"))
    squiggle = page.locator(".cm-lintRange-error")
    # while keys are typed, the squiggle of a half-typed word ('flatte') may show: wait for the last text's
    playwright_api.expect(squiggle).to_have_text("dens", timeout=WAIT)
    line = page.locator(".cm-line", has=squiggle)
    assert line.inner_text() == "dens 10"
    lines = [t for t in page.locator(".cm-line").all_inner_texts()]
    assert lines.index("dens 10") + 1 == 6  # the sixth line, where the mistake is
    playwright_api.expect(page.locator("#diagnostics")).to_contain_text(":6:1: error: unknown layer 'dens'")
    squiggle.hover()
    tooltip = page.locator(".cm-tooltip-lint")
    playwright_api.expect(tooltip).to_contain_text("unknown layer 'dens'", timeout=WAIT)
    playwright_api.expect(tooltip).to_contain_text("hint: did you mean 'dense'?")
    shot(page, "2-mistake")
    # fix it: the squiggle and the message go, the totals come back
    page.locator(".cm-line", has_text="dens 10").click()
    page.keyboard.press("End")
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.keyboard.type("e")
    playwright_api.expect(squiggle).to_have_count(0, timeout=WAIT)
    playwright_api.expect(page.locator("#diagnostics")).to_be_hidden()
    expect_text(page, "#total-params", f"{cnndsl.parse(SPEC).totals.params:,}")
    shot(page, "3-fixed")


def test_switch_to_resnet152_and_see_the_diagram(page):
    page.select_option("#spec", "shipped/resnet152.cnn")
    expect_text(page, "#total-params", "60,192,808")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed: no diagram to see")
    page.click(".tab[data-tab=diagram]")
    svg = page.locator("#diagram svg")
    playwright_api.expect(svg).to_have_count(1, timeout=WAIT)
    playwright_api.expect(page.locator("#depths button.on")).to_have_text("2")
    tall = svg.bounding_box()
    assert tall["height"] > 1000  # drawn, not an empty picture: ResNet-152 at depth 2 is a tall column
    shot(page, "4-resnet152-diagram")
    page.click("#depths button:text-is('1')")
    playwright_api.expect(page.locator("#depths button.on")).to_have_text("1", timeout=WAIT)
    for _ in range(100):  # the page's policy forbids the eval behind wait_for_function: poll instead
        if svg.bounding_box()["height"] < tall["height"] * 0.9:
            break
        page.wait_for_timeout(200)
    assert svg.bounding_box()["height"] < tall["height"] * 0.9  # depth 1: the stages folded, a shorter column
    shot(page, "5-resnet152-depth1")


def test_compile_and_download(page, tmp_path):
    import onnxruntime as ort

    page.select_option("#spec", "shipped/lenet5.cnn")
    expect_text(page, "#total-params", "61,706")
    with page.expect_download(timeout=WAIT) as download:
        page.click("#compile")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "lenet5.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape == ["N", 10]
    playwright_api.expect(page.locator("#status")).to_contain_text("compiled lenet5.onnx", timeout=WAIT)
    shot(page, "6-compiled")


def test_upload_an_image_and_see_the_maps(page, tmp_path):
    from PIL import Image

    picture = Image.new("RGB", (96, 64), (240, 240, 240))
    for x in range(30, 66):
        for y in range(16, 48):
            picture.putpixel((x, y), (200, 40, 40))
    path = tmp_path / "square.png"
    picture.save(path)
    page.select_option("#spec", "shipped/alexnet.cnn")
    playwright_api.expect(page.locator("#title")).to_contain_text("alexnet", timeout=WAIT)
    page.click(".tab[data-tab=maps]")
    page.set_input_files("#map-image", str(path))
    page.select_option("#map-layer", "features.1")
    page.click("#map-run")
    playwright_api.expect(page.locator("#map-grid")).to_have_attribute("src", _png_data(), timeout=60_000)
    playwright_api.expect(page.locator("#map-status")).to_contain_text("96 channels of 55x55")
    playwright_api.expect(page.locator("#map-status")).to_contain_text("square.png")
    playwright_api.expect(page.locator("#map-status")).not_to_contain_text("cnndsl-serve-")
    natural = page.eval_on_selector("#map-grid", "img => img.naturalWidth")
    assert natural > 200
    shot(page, "7-maps")


def _png_data():
    import re

    return re.compile(r"^data:image/png;base64,iVBORw0KGgo")


def test_open_edit_and_save_a_spec_of_the_folder(page, folder):
    page.select_option("#spec", "folder/mine.cnn")
    expect_text(page, "#title", "mine")
    page.locator(".cm-line", has_text="conv 8 3x3 relu").click()
    page.keyboard.press("End")
    page.keyboard.type("\nmaxpool 2x2")
    playwright_api.expect(page.locator("#layers tbody tr")).to_have_count(3, timeout=WAIT)
    page.click("#save")
    playwright_api.expect(page.locator("#status")).to_have_text("saved mine.cnn", timeout=WAIT)
    assert (folder / "mine.cnn").read_text(encoding="utf-8").rstrip().endswith("maxpool 2x2")
    shot(page, "8-saved")


def test_the_lineage_and_gap_tabs(page):
    page.click(".tab[data-tab=gap]")
    playwright_api.expect(page.locator("#gap-table")).to_contain_text("mlp_12mp", timeout=60_000)
    shot(page, "9-gap")
    page.click(".tab[data-tab=lineage]")
    playwright_api.expect(page.locator("#lineage-chart svg")).to_have_count(1, timeout=WAIT)
    shot(page, "10-lineage")




def test_the_layer_table_folds_blocks_and_the_totals_size_training(page):
    page.select_option("#spec", "shipped/resnet50.cnn")
    expect_text(page, "#total-params", "25,557,032")
    from cnndsl.views.report import human_bytes, training_memory

    adam = human_bytes(training_memory(cnndsl.load(ROOT / "specs" / "resnet50.cnn").totals, 32)["total_adam"])
    expect_text(page, "#total-training", adam)
    playwright_api.expect(page.locator("#layers tbody tr")).to_have_count(175, timeout=WAIT)
    page.select_option("#layer-depth", "1")
    playwright_api.expect(page.locator("#layers tbody tr")).to_have_count(11, timeout=WAIT)
    row = page.locator("#layers tbody tr", has_text="layer2")
    playwright_api.expect(row).to_contain_text("stage(128, 4), 42 layers")
    playwright_api.expect(row).to_contain_text("1,219,584")
    shot(page, "11-resnet50-folded")
