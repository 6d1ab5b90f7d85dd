"""`cnndsl run --image ... --save-maps DIR`: images in, output maps out, exactly; errors; no half-written folders."""

from __future__ import annotations

import runpy

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT, SPECS
from PIL import Image

import cnndsl
from cnndsl import maps
from cnndsl.cli import main
from cnndsl.errors import RunError

SHAPES = ROOT / "tests" / "fixtures" / "shapes.png"
FILTERS = SPECS / "filters.cnn"
BANK = ["identity", "outline", "sobel_left", "sobel_bottom", "darken", "lighten"]
NAMES = [f"{i}_{label}.png" for i, label in enumerate(BANK)] + ["grid.png"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def grey() -> np.ndarray:
    with Image.open(SHAPES) as image:
        return np.asarray(image.convert("L"))


def test_fixture_is_small_colour_64x64_and_matches_its_script():
    assert SHAPES.stat().st_size < 20_000
    with Image.open(SHAPES) as image:
        assert (image.mode, image.size) == ("RGB", (64, 64))
        pixels = np.asarray(image)
    drawn = np.asarray(runpy.run_path(str(ROOT / "tools" / "make_test_image.py"))["draw"]())
    assert np.array_equal(pixels, drawn)
    assert (grey().min(), grey().max()) == (0, 255)  # so min-max normalisation maps the identity to itself
    assert (pixels[..., 0] != pixels[..., 2]).any()  # colour, so --image's grey conversion is exercised
    assert sorted(np.unique(grey())) == [0, 67, 87, 119, 194, 255]  # ITU-R 601 luma: blue 67, red 87, ...


def test_load_image_grey_and_rgb_scaled_to_0_1():
    x, notes = maps.load_image(str(SHAPES), ("N", 1, 64, 64), resize=False)
    assert x.shape == (1, 1, 64, 64) and x.dtype == np.float32 and notes == []
    assert np.array_equal(x[0, 0], grey().astype(np.float32) / 255)
    x, _ = maps.load_image(str(SHAPES), ("N", 3, 64, 64), resize=False)
    with Image.open(SHAPES) as image:
        rgb = np.asarray(image).astype(np.float32) / 255
    assert x.shape == (1, 3, 64, 64) and np.array_equal(x[0], rgb.transpose(2, 0, 1))


def test_a_size_that_differs_is_refused_or_resized():
    with pytest.raises(RunError, match="the image is 64x64 pixels .width x height.; the model's input is 40x32") as err:
        maps.load_image(str(SHAPES), (1, 1, 32, 40), resize=False)
    assert "--resize" in err.value.hint and err.value.path == str(SHAPES)
    x, notes = maps.load_image(str(SHAPES), (1, 1, 32, 40), resize=True)
    assert x.shape == (1, 1, 32, 40)
    assert notes == [f"resized {SHAPES} from 64x64 to 40x32 pixels, not keeping its aspect ratio"]


@pytest.mark.parametrize(("shape", "message"), [
    ((1, 2, 64, 64), "grey .1 channel. or RGB .3 channel. images; the model's input has 2 channels"),
    ((1, 4096), "input is an image CxHxW; this one's input is 4096"),
])
def test_inputs_an_image_cannot_feed(shape, message):
    with pytest.raises(RunError, match=message):
        maps.load_image(str(SHAPES), shape, resize=False)


def test_unreadable_images(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(RunError, match="cannot read the image"):
        maps.load_image(str(bad), (1, 1, 64, 64), resize=False)
    with pytest.raises(RunError, match="no such image file"):
        maps.load_image(str(tmp_path / "missing.png"), (1, 1, 64, 64), resize=False)


def test_channel_labels_come_from_branch_names():
    assert maps.channel_labels(cnndsl.load(FILTERS).graph) == BANK
    bank = cnndsl.parse("input 1x8x8\nbank: concat {\n a: conv 2 3x3 pad=1\n { conv 1 1x1; relu }\n"
                        " sob: { conv 3 1x1; relu }\n maxpool 1\n}\nrelu\n").graph
    assert maps.channel_labels(bank) == ["a", "a", None, "sob", "sob", "sob", None]
    mixed = cnndsl.parse("input 1x8x8\nconcat { a: conv 2 1x1; b: conv 2 1x1 }\nconv 4 1x1\n").graph
    assert maps.channel_labels(mixed) == [None] * 4  # a conv after the concat mixes the branches
    assert maps.map_names(["a", None, "sob"]) == ["0_a.png", "1.png", "2_sob.png"]


def test_normalise_and_grid_layout():
    assert np.array_equal(maps.normalise(np.array([[-2.0, 0.0], [1.0, 2.0]])), [[0, 128], [191, 255]])
    assert np.array_equal(maps.normalise(np.full((2, 2), 0.5)), np.full((2, 2), 128))
    layout = maps.grid_layout(6, 64, 64)
    assert (layout.cols, layout.rows, layout.map_size) == (3, 2, (192, 192))
    assert layout.size == (3 * 192 + 4 * maps.PAD, maps.TITLE + 2 * (192 + maps.CAPTION) + 3 * maps.PAD)
    assert maps.grid_layout(3, 640, 480).map_size == (240, 320)  # large maps shrink to fit 320


def test_filters_maps_of_the_test_image(tmp_path):
    out = tmp_path / "maps"
    r = cli("run", FILTERS, "--image", SHAPES, "--save-maps", f"{out}/", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "input: 1x1x64x64 from" in r.stdout and "grey, pixels scaled to 0..1" in r.stdout
    assert f"wrote 6 maps and grid.png to {out}/" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)
    with Image.open(out / "0_identity.png") as identity:
        assert identity.mode == "L" and np.array_equal(np.asarray(identity), grey())
    with Image.open(out / "grid.png") as grid:
        assert grid.size == maps.grid_layout(6, 64, 64).size
    assert [p.name for p in tmp_path.iterdir()] == ["maps"]  # no staging folder left


def test_rgb_image_and_resize(tmp_path):
    spec = tmp_path / "rgb.cnn"
    spec.write_text("input 3x32x32\nconcat { red: fixedconv [[[[1]], [[0]], [[0]]]]; "
                    "blue: fixedconv [[[[0]], [[0]], [[1]]]] }\n")
    r = cli("run", spec, "--image", SHAPES, "--device", "cpu")
    assert r.exit_code == 1 and "the image is 64x64 pixels" in r.stderr and "32x32" in r.stderr
    r = cli("run", spec, "--image", SHAPES, "--resize", "--save-maps", tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert f"note: resized {SHAPES} from 64x64 to 32x32 pixels" in r.stderr and "RGB" in r.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0_red.png", "1_blue.png", "grid.png"]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--image", SHAPES, "--input", SPECS / "conv_example_image.txt"], 2, "--image and --input"),
    (["--resize"], 2, "--resize applies to --image"),
])
def test_option_conflicts(tmp_path, args, code, message):
    r = cli("run", FILTERS, *args, "--save-maps", tmp_path / "out")
    assert r.exit_code == code and message in r.output
    assert list(tmp_path.iterdir()) == []


def test_save_maps_of_a_classifier_is_refused_before_running(tmp_path):
    r = cli("run", SPECS / "lenet5.cnn", "--save-maps", tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 1 and "--save-maps needs an output of maps (batch x CxHxW)" in r.stderr
    assert "output is Nx10" in r.stderr and "Traceback" not in r.output
    assert list(tmp_path.iterdir()) == []


def test_a_file_is_not_a_maps_folder(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("keep")
    with pytest.raises(RunError, match="not a folder"):
        maps.check_folder(str(taken))
    with pytest.raises(RunError, match="does not exist"):
        maps.check_folder(str(tmp_path / "a" / "b"))


def test_nothing_half_written(tmp_path, monkeypatch):
    y = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(maps, "make_grid", broken)
    with pytest.raises(OSError):
        maps.save_maps(y, str(tmp_path / "new"), ["a", "b", "c"], "t")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a staging folder
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "0_a.png").write_bytes(b"old")
    (kept / "mine.txt").write_text("mine")
    with pytest.raises(OSError):
        maps.save_maps(y, str(kept), ["a", "b", "c"], "t")
    assert sorted(p.name for p in kept.iterdir()) == ["0_a.png", "mine.txt"]
    assert (kept / "0_a.png").read_bytes() == b"old"
    monkeypatch.undo()
    assert maps.save_maps(y, str(kept), ["a", "b", "c"], "t") == ["0_a.png", "1_b.png", "2_c.png", "grid.png"]
    assert sorted(p.name for p in kept.iterdir()) == ["0_a.png", "1_b.png", "2_c.png", "grid.png", "mine.txt"]
