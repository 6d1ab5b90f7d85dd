"""examples/tour.ipynb runs from top to bottom in a real kernel (nbclient, ipykernel), and shows what it says:
the network as HTML with its totals, the diagram as SVG, the chart, the run, the feature maps."""

from __future__ import annotations

import shutil

import pytest
from helpers import ROOT

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install .[test])")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install .[test])")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install .[test])")

TOUR = ROOT / "examples" / "tour.ipynb"


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(TOUR, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(TOUR.parent)}})
    client.execute()
    return nb


def _outputs(nb, needle: str) -> list[dict]:
    cell = next(c for c in nb.cells if c.cell_type == "code" and needle in c.source)
    return cell.outputs


def test_the_tour_runs_without_an_error(executed):
    for cell in executed.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source


def test_the_network_shows_its_totals_and_layers_as_html(executed):
    (shown,) = [o for o in _outputs(executed, 'net = cnndsl.load("../specs/lenet5.cnn")')
                if o.output_type == "execute_result"]
    page = shown["data"]["text/html"]
    assert "61,706 trainable" in page and "features.0" in page and "<table" in page
    assert shown["data"]["text/plain"] == "<Network lenet5: 61,706 params, 416,520 MACs>"
    if shutil.which("dot"):
        assert "<svg" in page


def test_the_counts_the_mistake_and_the_run(executed):
    text = "".join(o.get("text", "") for o in _outputs(executed, "mlp = cnndsl.load"))
    assert "125,839,131,000 parameters" in text and "ratio: 2,039,334x" in text
    text = "".join(o.get("text", "") for o in _outputs(executed, "except cnndsl.errors.CnnDslError"))
    assert "tiny.cnn:7:9: error: maxpool 64x64 on a 16x16 input gives no output" in text and "hint:" in text
    text = "".join(o.get("text", "") for o in _outputs(executed, "first = time.perf_counter() - start"))
    assert "output (4, 10) on " in text


def test_the_pictures_are_pictures(executed):
    if shutil.which("dot"):
        (diagram,) = [o for o in _outputs(executed, "resnet.graph(depth=1)") if o.output_type == "execute_result"]
        assert "<svg" in diagram["data"]["image/svg+xml"] and len(diagram["data"]["image/svg+xml"]) > 10_000
    (chart,) = [o for o in _outputs(executed, "resnet.plot(") if o.output_type == "execute_result"]
    assert chart["data"]["image/svg+xml"].lstrip().startswith("<?xml")
    maps = [o for o in _outputs(executed, "filters.run(") if o.output_type == "display_data"]
    assert maps and "image/png" in maps[0]["data"]
