"""Netron draws cnndsl's models: a one-off check in a real headless browser (not run in CI).

Compiles a spec (or takes a compiled .onnx), serves it with Netron's own Python server on a free
localhost port, opens the page in headless Chromium driven by Playwright, waits until Netron has
drawn the graph, and checks that the drawing holds a node for every node of the ONNX graph (Netron
gives each node's SVG group the id `node-name-NAME`, so cnndsl's layer names, like `features.0` or
`layer1.0.conv1`, must all be there). Then it saves a screenshot, optionally with the nodes
labelled by name instead of by operator (`--names`, Netron's Ctrl+U).

    PYTHONPATH=/tmp/pwlib python tools/netron_browser.py specs/resnet18.cnn /tmp/resnet18.png [--names]

Needs netron and playwright (`pip install --target /tmp/pwlib playwright` keeps it out of the venv,
hence the PYTHONPATH above). Never `playwright install`: this drives the machine's own Chromium
(Debian's `apt-get install chromium`), named by --chromium. Nothing is downloaded; Netron's calls to
the internet (a consent lookup, telemetry) fail quietly offline, and its cookie banner is
pre-accepted. The screenshot is refused inside the repository.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DRAWN = "svg#canvas g[id^='node-name-']"


def compile_spec(spec: Path, workdir: Path) -> Path:
    """A spec is compiled (seed 0) into ``workdir``; an .onnx file is used as it is."""
    if spec.suffix == ".onnx":
        return spec
    import cnndsl
    from cnndsl.api import CompileOptions

    net = cnndsl.load(spec)
    out = workdir / f"{net.name}.onnx"
    net.compile(CompileOptions(seed=0, output=out))
    return out


def onnx_node_names(model: Path) -> list[str]:
    import onnx

    return [node.name for node in onnx.load(str(model), load_external_data=False).graph.node]


# Netron disables window.eval, which Playwright's evaluate needs: read the drawn DOM as HTML instead.
def drawn_nodes(page_html: str) -> list[str]:
    """The names of the nodes Netron drew, in drawing order."""
    return [html.unescape(name) for name in re.findall(r'<g id="node-name-([^"]*)"', page_html)]


def drawn_labels(page_html: str) -> list[str]:
    """The text drawn in the graph: operator types (or names, with --names) and weight shapes."""
    graph = page_html[page_html.find('<svg id="canvas"'):]
    return [html.unescape(text) for text in re.findall(r"<text[^>]*>([^<]*)</text>", graph)]


def render(model: Path, screenshot: Path, chromium: str, names: bool, timeout_s: float,
           size: tuple[int, int]) -> dict:
    """Serve ``model`` with Netron, draw it in headless Chromium, save ``screenshot``; returns what was seen."""
    import netron
    from playwright.sync_api import sync_playwright

    address = netron.serve(str(model), address=("127.0.0.1", 0), browse=False)
    url = f"http://{address[0]}:{address[1]}/"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            try:
                context = browser.new_context(viewport={"width": size[0], "height": size[1]})
                context.add_cookies([{"name": "consent", "value": "1", "url": url}])
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(url, timeout=timeout_s * 1000)
                page.wait_for_selector(DRAWN, timeout=timeout_s * 1000)
                drawn = drawn_nodes(page.content())
                if names:
                    page.locator("body").press("Control+u")
                    page.wait_for_timeout(1000)
                labels = drawn_labels(page.content())
                title = page.title()
                page.screenshot(path=str(screenshot))
            finally:
                browser.close()
    finally:
        netron.stop(address)
    return {"url": url, "title": title, "drawn": drawn, "labels": labels, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a .cnn spec (compiled with seed 0) or a compiled .onnx")
    parser.add_argument("screenshot", type=Path, help="where to save the PNG (outside the repository)")
    parser.add_argument("--names", action="store_true", help="label nodes by name (Netron's Show Names)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable to drive")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for Netron to draw")
    parser.add_argument("--size", default="1600x1000", help="viewport WIDTHxHEIGHT in pixels")
    args = parser.parse_args(argv)

    screenshot = args.screenshot.resolve()
    if screenshot.is_relative_to(ROOT):
        parser.error(f"{args.screenshot} is inside the repository; save the screenshot elsewhere (e.g. /tmp)")
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="netron_browser_") as workdir:
        model = compile_spec(args.model, Path(workdir))
        expected = onnx_node_names(model)
        seen = render(model, screenshot, args.chromium, args.names, args.timeout, (width, height))

    missing = [name for name in expected if name not in set(seen["drawn"])]
    print(f"{seen['url']} ({seen['title']}): Netron drew {len(seen['drawn'])} nodes for "
          f"{len(expected)} ONNX nodes of {model.name}")
    print(f"first nodes drawn: {', '.join(seen['drawn'][:8])}")
    print(f"first labels: {', '.join(seen['labels'][:12])}")
    print(f"screenshot: {screenshot}")
    for error in seen["errors"]:
        print(f"page error: {error}")
    if missing or seen["errors"]:
        print(f"FAIL: {len(missing)} ONNX nodes not drawn: {', '.join(missing[:10])}")
        return 1
    print("OK: every ONNX node is drawn under its cnndsl name")
    return 0


if __name__ == "__main__":
    sys.exit(main())
