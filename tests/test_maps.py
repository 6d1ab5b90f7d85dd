"""`cnndsl run --image ... --save-maps DIR`: images in, output maps out, exactly; errors; no half-written folders."""

from __future__ import annotations

import os
import runpy
import warnings

import numpy as np
import pytest
from helpers import ROOT, SPECS
from PIL import Image, ImageOps

import cnndsl
from cnndsl.errors import RunError
from cnndsl.runtime import image as images
from cnndsl.runtime import run as runmod
from cnndsl.views import maps

SHAPES = ROOT / "tests" / "fixtures" / "shapes.png"
FILTERS = SPECS / "filters.cnn"
BANK = ["identity", "outline", "sobel_left", "sobel_bottom", "darken", "lighten"]
NAMES = [f"{i}_{label}.png" for i, label in enumerate(BANK)] + ["grid.png"]


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
    x, notes = images.load_image(str(SHAPES), ("N", 1, 64, 64), resize=False)
    assert x.shape == (1, 1, 64, 64) and x.dtype == np.float32 and notes == []
    assert np.array_equal(x[0, 0], grey().astype(np.float32) / 255)
    x, _ = images.load_image(str(SHAPES), ("N", 3, 64, 64), resize=False)
    with Image.open(SHAPES) as image:
        rgb = np.asarray(image).astype(np.float32) / 255
    assert x.shape == (1, 3, 64, 64) and np.array_equal(x[0], rgb.transpose(2, 0, 1))


def test_a_size_that_differs_is_refused_or_resized():
    with pytest.raises(RunError, match="the image is 64x64 pixels .width x height.; the model's input is 40x32") as err:
        images.load_image(str(SHAPES), (1, 1, 32, 40), resize=False)
    assert "--resize" in err.value.hint and err.value.path == str(SHAPES)
    x, notes = images.load_image(str(SHAPES), (1, 1, 32, 40), resize="stretch")
    assert x.shape == (1, 1, 32, 40)
    assert notes == [f"resized {SHAPES} from 64x64 to 40x32 pixels, stretched (the aspect ratio is not kept)"]


def _bars(tmp_path, size=(60, 20)):
    """A wide picture: a black left third, a white middle third, a grey right third."""
    from PIL import Image

    picture = Image.new("L", size, 0)
    third = size[0] // 3
    picture.paste(255, (third, 0, 2 * third, size[1]))
    picture.paste(128, (2 * third, 0, size[0], size[1]))
    path = tmp_path / "bars.png"
    picture.save(path)
    return path


@pytest.mark.parametrize("mode, note, expect", [
    # True (the flag alone) is crop: scaled so the shorter side fits (60x20 -> 30x10), the centre kept
    (True, "scaled to 30x10 and centre-cropped (the aspect ratio is kept)", "white"),
    ("crop", "scaled to 30x10 and centre-cropped (the aspect ratio is kept)", "white"),
    # pad: scaled so the longer side fits (60x20 -> 10x3), black bars above and below
    ("pad", "scaled to 10x3 and letterboxed with black (the aspect ratio is kept)", "bars"),
    ("stretch", "stretched (the aspect ratio is not kept)", "thirds"),
], ids=["flag", "crop", "pad", "stretch"])
def test_resize_keeps_the_aspect_ratio_unless_told_to_stretch(tmp_path, mode, note, expect):
    path = _bars(tmp_path)
    x, notes = images.load_image(str(path), (1, 1, 10, 10), resize=mode)
    assert x.shape == (1, 1, 10, 10)
    assert notes == [f"resized {path} from 60x20 to 10x10 pixels, {note}"]
    picture = x[0, 0]
    if expect == "white":  # the middle third fills the frame
        assert picture.min() > 0.9
    elif expect == "bars":
        assert picture[:3].max() == 0 and picture[-3:].max() == 0 and picture[4:6].max() > 0.9
    else:
        assert picture[:, 0].max() < 0.1 and picture[:, 5].min() > 0.9 and abs(picture[:, -1].mean() - 0.5) < 0.05


def test_an_unknown_resize_mode_is_refused(tmp_path):
    with pytest.raises(RunError, match="unknown resize mode 'squash'"):
        images.load_image(str(_bars(tmp_path)), (1, 1, 10, 10), resize="squash")


@pytest.mark.parametrize(("shape", "message"), [
    ((1, 2, 64, 64), "grey .1 channel. or RGB .3 channel. images; the model's input has 2 channels"),
    ((1, 4096), "input is an image CxHxW; this one's input is 4096"),
])
def test_inputs_an_image_cannot_feed(shape, message):
    with pytest.raises(RunError, match=message):
        images.load_image(str(SHAPES), shape, resize=False)


def test_unreadable_images(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(RunError, match="cannot read the image"):
        images.load_image(str(bad), (1, 1, 64, 64), resize=False)
    with pytest.raises(RunError, match="no such image file"):
        images.load_image(str(tmp_path / "missing.png"), (1, 1, 64, 64), resize=False)


def test_channel_labels_come_from_branch_names():
    assert maps.channel_labels(cnndsl.load(FILTERS).graph) == BANK
    bank = cnndsl.parse("input 1x8x8\nbank: concat {\n a: conv 2 3x3 pad=1\n { conv 1 1x1; relu }\n"
                        " sob: { conv 3 1x1; relu }\n maxpool 1\n}\nrelu\n").graph
    assert maps.channel_labels(bank) == ["a", "a", None, "sob", "sob", "sob", None]
    mixed = cnndsl.parse("input 1x8x8\nconcat { a: conv 2 1x1; b: conv 2 1x1 }\nconv 4 1x1\n").graph
    assert maps.channel_labels(mixed) == [None] * 4  # a conv after the concat mixes the branches
    assert maps.map_names(["a", None, "sob"]) == ["0_a.png", "1.png", "2_sob.png"]


@pytest.mark.parametrize(("spec", "labels"), [
    ("concat { edge: fixedconv [[0, 0, 0], [0, 1, 0], [0, 0, 0]] pad=same relu\n"
     " blur: fixedconv [[1, 1, 1], [1, 1, 1], [1, 1, 1]] pad=same }", ["edge", "blur"]),
    ("concat { a: conv 2 1x1 relu; conv 1 1x1 relu }", ["a", "a", None]),
    ("pre: conv 1 1x1\nconcat { a: conv 1 1x1; relu }", ["a", None]),  # relu's input is outside the branch
])
def test_channel_labels_look_through_fused_activations(spec, labels):
    assert maps.channel_labels(cnndsl.parse(f"input 1x8x8\n{spec}\n").graph) == labels


def test_normalise_and_grid_layout():
    assert np.array_equal(maps.normalise(np.array([[-2.0, 0.0], [1.0, 2.0]])), [[0, 128], [191, 255]])
    assert np.array_equal(maps.normalise(np.full((2, 2), 0.5)), np.full((2, 2), 128))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from inf - inf or min of NaN
        for values, want in [([np.nan, np.inf, -np.inf, 1.0, 3.0], [0, 255, 0, 0, 255]),
                             ([np.inf, 2.0, 2.0, np.nan, 2.0], [255, 128, 128, 0, 128]),
                             ([np.nan, np.inf, -np.inf, np.nan, np.nan], [0, 255, 0, 0, 0])]:
            assert maps.normalise(np.array([values])).tolist() == [want]
    layout = maps.grid_layout(6, 64, 64)
    assert (layout.cols, layout.rows, layout.map_size) == (3, 2, (192, 192))
    assert layout.size == (3 * 192 + 4 * maps.PAD, maps.TITLE + 2 * (192 + maps.CAPTION) + 3 * maps.PAD)
    assert maps.grid_layout(3, 640, 480).map_size == (240, 320)  # large maps shrink to fit 320


def test_filters_maps_of_the_test_image(tmp_path, cli):
    out = tmp_path / "maps"
    r = cli("run", FILTERS, "--image", SHAPES, "--save-maps", f"{out}/", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "input: 1x1x64x64 from" in r.stdout and "grey, pixels scaled to 0..1" in r.stdout
    assert f"wrote 6 maps and grid.png and mask.png to {out}/" in r.stdout  # mask: the arg-max map
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES + ["mask.png"])
    pictures = {}
    for name in ("0_identity", "4_darken", "5_lighten", "1_outline"):
        with Image.open(out / f"{name}.png") as picture:
            pictures[name] = (picture.mode, np.asarray(picture).astype(np.float64))
    # one scale for the layer: the grey maps compare (darken darker than identity, lighten lighter), the
    # signed ones are drawn blue-white-red
    assert [pictures[n][0] for n in pictures] == ["L", "L", "L", "RGB"]
    darken, identity, lighten = (pictures[n][1].mean() for n in ("4_darken", "0_identity", "5_lighten"))
    assert darken < identity < lighten and abs(darken / identity - 0.5) < 0.02
    # identity is the picture itself, on the layer's scale (1.5 x its top after clipping 1%: lighten's)
    assert np.corrcoef(pictures["0_identity"][1].ravel(), grey().ravel())[0, 1] > 0.999
    with Image.open(out / "grid.png") as grid:  # the input first, then the six maps, under a legend
        assert grid.mode == "RGB"
        assert grid.size == (maps.grid_layout(7, 64, 64).size[0], maps.grid_layout(7, 64, 64).size[1] + maps.LEGEND)
    assert [p.name for p in tmp_path.iterdir()] == ["maps"]  # no staging folder left


def test_rgb_image_and_resize(tmp_path, cli):
    spec = tmp_path / "rgb.cnn"
    spec.write_text("input 3x32x32\nconcat { red: fixedconv [[[[1]], [[0]], [[0]]]]; "
                    "blue: fixedconv [[[[0]], [[0]], [[1]]]] }\n")
    r = cli("run", spec, "--image", SHAPES, "--device", "cpu")
    assert r.exit_code == 1 and "the image is 64x64 pixels" in r.stderr and "32x32" in r.stderr
    r = cli("run", spec, "--image", SHAPES, "--resize", "--save-maps", tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert f"note: resized {SHAPES} from 64x64 to 32x32 pixels" in r.stderr and "RGB" in r.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0_red.png", "1_blue.png", "grid.png", "mask.png"]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--image", SHAPES, "--input", SPECS / "conv_example_image.txt"], 2, "--image and --input"),
    (["--resize"], 2, "--resize applies to --image"),
    (["--image", SHAPES, "--batch", 4], 2, "--batch sets the size of the random input"),
])
def test_option_conflicts(tmp_path, args, code, message, cli):
    r = cli("run", FILTERS, *args, "--save-maps", tmp_path / "out")
    assert r.exit_code == code and message in r.output
    assert list(tmp_path.iterdir()) == []


def test_save_maps_of_a_classifier_is_refused_before_running(tmp_path, cli):
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
    with pytest.raises(RunError, match="cannot write the maps: No space left on device"):
        maps.save_maps(y, str(tmp_path / "new"), ["a", "b", "c"], "t")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a staging folder
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "0_a.png").write_bytes(b"old")
    (kept / "mine.txt").write_text("mine")
    with pytest.raises(RunError, match="No space left on device"):
        maps.save_maps(y, str(kept), ["a", "b", "c"], "t", force=True)  # 0_a.png is not ours
    assert sorted(p.name for p in kept.iterdir()) == ["0_a.png", "mine.txt"]
    assert (kept / "0_a.png").read_bytes() == b"old"
    monkeypatch.undo()
    with pytest.raises(RunError, match="cnndsl did not write"):
        maps.save_maps(y, str(kept), ["a", "b", "c"], "t")
    assert maps.save_maps(y, str(kept), ["a", "b", "c"], "t", force=True)[0] == \
        ["0_a.png", "1_b.png", "2_c.png", "grid.png"]
    assert sorted(p.name for p in kept.iterdir()) == ["0_a.png", "1_b.png", "2_c.png", "grid.png", "mine.txt"]


# -- images of every depth and mode -------------------------------------------------------------

LEVELS = np.tile(np.arange(6), (4, 1))  # 4 rows x 6 columns, column j has level j


def luma(rgb) -> np.ndarray:
    return np.asarray(Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("L"), dtype=np.float32) / 255


COLOURS = np.stack([LEVELS * 50, 255 - LEVELS * 40, LEVELS * 20], axis=-1).astype(np.uint8)
ALPHA = (LEVELS * 51).astype(np.uint8)


def palette_image(transparency):
    image = Image.new("P", (6, 4))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255])
    image.putdata([v % 4 for v in LEVELS.flatten()])
    image.info.update({} if transparency is None else {"transparency": transparency})
    return image


PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255], [255, 255, 255]])[LEVELS % 4]

# (file, the image, model channels, expected pixels CxHxW, a note that must be printed or None)
IMAGES = [
    ("grey16.png", Image.fromarray((LEVELS * 257).astype(np.uint16)), 1, LEVELS[None] / 255, None),
    ("grey16be.tif", Image.fromarray((LEVELS * 257).astype(">u2")), 1, LEVELS[None] / 255, None),
    ("grey16.pgm", Image.fromarray((LEVELS * 257).astype(np.uint16)), 1, LEVELS[None] / 255, "65535"),
    ("grey16.png", Image.fromarray((LEVELS * 257).astype(np.uint16)), 3, np.repeat(LEVELS[None] / 255, 3, 0), None),
    ("float.tif", Image.fromarray((LEVELS / 5).astype(np.float32)), 1, LEVELS[None] / 5, None),
    ("rgba.png", Image.fromarray(np.dstack([COLOURS, ALPHA])), 1, luma(COLOURS)[None], "alpha"),
    ("rgba.png", Image.fromarray(np.dstack([COLOURS, ALPHA])), 3, COLOURS.transpose(2, 0, 1) / 255, "alpha"),
    ("opaque.png", Image.fromarray(np.dstack([COLOURS, ALPHA * 0 + 255])), 1, luma(COLOURS)[None], None),
    ("la.png", Image.fromarray(np.dstack([COLOURS[..., 0], ALPHA])), 1, COLOURS[None, ..., 0] / 255, "alpha"),
    ("palette.png", palette_image(None), 1, luma(PALETTE)[None], None),
    ("palette.png", palette_image(None), 3, PALETTE.transpose(2, 0, 1) / 255, None),
    ("palette_transparent.png", palette_image(0), 3, PALETTE.transpose(2, 0, 1) / 255, "alpha"),
]


@pytest.mark.parametrize(("name", "image", "channels", "want", "note"), IMAGES,
                         ids=[f"{row[0]}-{row[2]}" for row in IMAGES])
def test_images_of_every_depth_are_scaled_by_their_range(tmp_path, name, image, channels, want, note):
    image.save(tmp_path / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, notes = images.load_image(str(tmp_path / name), (1, channels, 4, 6), resize=False)
    assert x.dtype == np.float32 and x.shape == (1, channels, 4, 6)
    assert np.allclose(x[0], want, atol=1e-6), (x[0], want)
    assert 0 <= x.min() and x.max() <= 1
    assert any(note in n for n in notes) if note else notes == []


def test_palette_with_alpha_reads_its_colours():
    image = palette_image(None).convert("PA")
    image.putalpha(Image.fromarray(ALPHA))
    pixels, notes = images.decode(image, 3, "pa")
    assert np.array_equal(np.asarray(pixels), PALETTE.astype(np.uint8)) and "alpha" in notes[0]


@pytest.mark.parametrize(("array", "message"), [
    (LEVELS.astype(np.float32), r"float pixels \(Pillow mode F\) from 0 to 5"),
    (np.where(LEVELS == 2, np.nan, 0.5).astype(np.float32), "NaN or infinite"),
    (LEVELS.astype(np.int32) * 20000 - 1, r"32-bit integer pixels \(Pillow mode I\) from -1 to 99,999"),
])
def test_images_without_a_known_range_are_refused(tmp_path, array, message):
    path = tmp_path / "deep.tif"
    Image.fromarray(array).save(path)
    with pytest.raises(RunError, match=message) as err:
        images.load_image(str(path), (1, 1, 4, 6), resize=False)
    assert err.value.path == str(path) and "--input" in err.value.hint


def test_a_deep_image_is_resized_in_float_and_stays_in_0_1(tmp_path):
    Image.fromarray((LEVELS * 13107).astype(np.uint16)).save(tmp_path / "g.png")  # 0 .. 65535
    x, notes = images.load_image(str(tmp_path / "g.png"), (1, 1, 8, 12), resize=True)
    assert x.shape == (1, 1, 8, 12) and 0 <= x.min() and x.max() <= 1 and len(np.unique(x)) > 6
    assert notes == [f"resized {tmp_path / 'g.png'} from 6x4 to 12x8 pixels"]


def test_exif_orientation_turns_photos_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to view
    Image.fromarray((LEVELS * 40).astype(np.uint8)).save(tmp_path / "photo.png", exif=exif)
    x, notes = images.load_image(str(tmp_path / "photo.png"), (1, 1, 6, 4), resize=False)
    with Image.open(tmp_path / "photo.png") as photo:
        upright = np.asarray(ImageOps.exif_transpose(photo)).astype(np.float32) / 255
    assert upright.shape == (6, 4) and np.array_equal(x[0, 0], upright)
    assert np.array_equal(upright, np.rot90(LEVELS * 40, -1).astype(np.float32) / 255)
    assert notes == [f"turned {tmp_path / 'photo.png'} upright as its EXIF orientation says"]


def test_large_images_get_a_note_and_too_large_ones_their_pixel_count(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 64x64 = 4,096 pixels: a "bomb" warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, notes = images.load_image(str(SHAPES), (1, 1, 32, 32), resize=True)
    assert x.shape == (1, 1, 32, 32)
    assert notes[0] == f"{SHAPES} is a large image: 64x64 = 4,096 pixels; reading it takes time and memory"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # over twice the limit: Pillow refuses
    with pytest.raises(RunError, match="64x64 = 4,096 pixels, more than Pillow's limit of 2,000") as err:
        images.load_image(str(SHAPES), (1, 1, 32, 32), resize=True)
    assert "scale it down" in err.value.hint


# -- writing the maps ---------------------------------------------------------------------------

def one_map_spec(tmp_path):
    spec = tmp_path / "one.cnn"
    spec.write_text("input 1x64x64\nfixedconv [[1]]\n")
    return spec


def test_one_map_is_singular(tmp_path, cli):
    r = cli("run", one_map_spec(tmp_path), "--image", SHAPES, "--save-maps", tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert f"wrote 1 map and grid.png to {tmp_path / 'out'}{os.sep}" in r.stdout


def test_a_folder_in_the_way_is_refused_before_running(tmp_path, monkeypatch, cli):
    monkeypatch.setattr(runmod.Runner, "from_model", lambda *a, **k: pytest.fail("must not run"))
    (tmp_path / "ex" / "grid.png").mkdir(parents=True)
    r = cli("run", FILTERS, "--image", SHAPES, "--save-maps", tmp_path / "ex")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"{tmp_path / 'ex' / 'grid.png'}: error: is a folder" in r.stderr
    assert [p.name for p in (tmp_path / "ex").iterdir()] == ["grid.png"]


def test_a_folder_in_the_way_of_a_map_leaves_the_old_maps(tmp_path):
    y = np.ones((1, 3, 4, 4), np.float32)
    maps.save_maps(y, str(tmp_path), ["a", "b", "c"], "old")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "1_b.png").unlink()
    (tmp_path / "1_b.png").mkdir()
    with pytest.raises(RunError, match="is a folder") as err:
        maps.save_maps(y * 2, str(tmp_path), ["a", "b", "c"], "new")
    assert err.value.path == str(tmp_path / "1_b.png")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == \
        {k: v for k, v in before.items() if k != "1_b.png"}


@pytest.mark.parametrize("how", ["access", "probe"])
def test_an_unwritable_folder_is_refused_before_running(tmp_path, monkeypatch, how, cli):
    monkeypatch.setattr(runmod.Runner, "from_model", lambda *a, **k: pytest.fail("must not run"))
    out = tmp_path / "out"
    out.mkdir()
    if how == "access":
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: access(path, mode) and not (
            mode & os.W_OK and os.path.normpath(path) == str(out)))
    else:
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(maps.tempfile, "NamedTemporaryFile", refuse)
    r = cli("run", FILTERS, "--image", SHAPES, "--save-maps", out)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"{out}: error: cannot write into this folder" in r.stderr and list(out.iterdir()) == []


def test_a_disk_full_while_saving_is_a_clean_error(tmp_path, monkeypatch, cli):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    r = cli("run", FILTERS, "--image", SHAPES, "--save-maps", tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "error: cannot write the maps: No space left on device" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_maps_of_an_earlier_run_are_replaced_not_mixed_in(tmp_path, cli):
    out = tmp_path / "out"
    r = cli("run", FILTERS, "--image", SHAPES, "--save-maps", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    (out / "7.png").write_bytes((out / "grid.png").read_bytes().replace(b"cnndsl", b"xxxxxx"))  # not ours
    (out / "notes.txt").write_text("mine")
    r = cli("run", one_map_spec(tmp_path), "--image", SHAPES, "--save-maps", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "7.png", "grid.png", "notes.txt"]
    assert f"note: removed 7 map files of an earlier run from {out}: 0_identity.png, 1_outline.png, " in r.stderr
    assert f"note: left 7.png in {out}: named like a map, but not written by cnndsl" in r.stderr


def test_the_grid_shows_at_most_256_maps(tmp_path):
    y = np.random.default_rng(0).standard_normal((1, 300, 2, 3)).astype(np.float32)
    names, notes = maps.save_maps(y, str(tmp_path / "out"), [], "many")
    assert len(names) == 301 and len(list((tmp_path / "out").iterdir())) == 301
    assert notes == ["grid.png shows the first 256 of the 300 maps"]
    with Image.open(tmp_path / "out" / "grid.png") as grid:
        assert grid.size == (maps.grid_layout(256, 2, 3).size[0], maps.grid_layout(256, 2, 3).size[1] + maps.LEGEND)


def test_non_finite_maps_are_noted_and_drawn_black_and_white(tmp_path):
    y = np.zeros((1, 2, 2, 2), np.float32)
    y[0, 1] = [[np.inf, np.nan], [1, 2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        names, notes = maps.save_maps(y, str(tmp_path / "out"), ["a", "b"], "t", scale="map", clip=0)
    assert notes == ["map 1_b.png has 2 NaN or infinite values: drawn +inf as the top of the scale, -inf as its "
                     "bottom, NaN black"]
    with Image.open(tmp_path / "out" / "1_b.png") as image:
        assert np.asarray(image).tolist() == [[255, 0], [0, 255]]
    maps.save_maps(y, str(tmp_path / "shared"), ["a", "b"], "t", clip=0)  # on the layer's scale: 0 .. 2
    with Image.open(tmp_path / "shared" / "1_b.png") as image:
        assert np.asarray(image).tolist() == [[255, 0], [128, 255]]


BANK_OF_FOUR = np.stack([np.linspace(0, 1, 16).reshape(4, 4) * k for k in (1.0, 0.5, 1.5)]
                        + [np.linspace(-2, 2, 16).reshape(4, 4)])


@pytest.mark.parametrize("scale, clip, check", [
    # one scale: grey maps compare; the signed map is diverging with its own limit (2)
    ("layer", 0, lambda p: p[1].max() == 85 and p[0].max() == 170 and p[2].max() == 255),
    # each its own: identity, darken and lighten are the same picture (their pattern, not their size)
    ("map", 0, lambda p: np.array_equal(p[0], p[1]) and np.array_equal(p[0], p[2])),
], ids=["layer", "map"])
def test_colour_scales(scale, clip, check):
    coloured = maps.colour_maps(BANK_OF_FOUR, scale, clip)
    assert [p.ndim for p in coloured.pictures] == [2, 2, 2, 3]
    assert check(coloured.pictures)


def test_a_diverging_scale_is_blue_below_white_at_zero_red_above():
    picture = maps.colour_maps(np.array([[[-1.0, 0.0, 1.0]]]), clip=0).pictures[0][0]
    blue, white, red = (tuple(int(v) for v in rgb) for rgb in picture)
    assert blue[2] > blue[0] + 50 and red[0] > red[2] + 50 and min(white) > 240
    assert maps.colour_maps(np.array([[[-1.0, 0.0, 1.0]]]), clip=0).legend == \
        "one scale for all maps: blue -1 .. white 0 .. red 1"


def test_percentile_clipping_keeps_an_outlier_from_washing_out_the_rest():
    values = np.tile(np.linspace(0, 1, 100), (1, 100, 1)).astype(np.float64)
    values[0, 0, 0] = 1000.0  # one border artefact
    whole = maps.colour_maps(values, clip=0).pictures[0]
    clipped = maps.colour_maps(values, clip=1).pictures[0]
    assert whole[1:].max() <= 1  # everything but the artefact is black
    assert clipped[1:].max() == 255 and np.median(clipped) > 100


@pytest.mark.parametrize("scale, clip, message", [
    ("pixel", 1, "unknown colour scale 'pixel'"), ("layer", 60, "--clip takes a percent from 0 to 50"),
    ("layer", -1, "--clip takes a percent from 0 to 50"),
])
def test_bad_colour_options(scale, clip, message):
    with pytest.raises(RunError, match=message):
        maps.colour_maps(BANK_OF_FOUR, scale, clip)


LENET = SPECS / "lenet5.cnn"


def test_maps_of_any_layer_each_in_its_folder(tmp_path, cli):
    out = tmp_path / "maps"
    r = cli("run", LENET, "--layer", "features.0", "--layer", "features.5", "--save-maps", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "layer features.0: 1x6x28x28" in r.stdout and "layer features.5: 1x16x5x5" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["features.0", "features.5"]
    assert len(list((out / "features.0").iterdir())) == 7 and len(list((out / "features.5").iterdir())) == 17
    assert "wrote 6 maps and grid.png to" in r.stdout and "wrote 16 maps and grid.png to" in r.stdout
    assert "the weights are random (seeded with --seed 0)" in r.stderr


def test_the_maps_of_a_layer_are_that_layers_values_in_the_whole_network(tmp_path, cli):
    """What --layer draws is the tensor of that layer in the network `run` would run (the same seeded weights)."""
    net = cnndsl.load(LENET)
    x = np.random.default_rng(0).random((1, 1, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = cli("run", LENET, "--input", tmp_path / "x.npy", "--layer", "features.1", "--save-maps", tmp_path / "m",
            "--scale", "map", "--clip", "0", "--device", "cpu")
    assert r.exit_code == 0, r.output
    inside, _ = net.upto("features.1").run(x)
    with Image.open(tmp_path / "m" / "features.1" / "2.png") as picture:
        drawn = np.asarray(picture)
    assert drawn.ndim == 3  # tanh: signed, blue-white-red
    assert np.array_equal(drawn, maps.colour_maps(inside[0], "map", 0).pictures[2])


def test_layer_all_is_every_conv(tmp_path, cli):
    r = cli("run", LENET, "--layer", "all", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert [line.split(":")[0] for line in r.stdout.splitlines() if line.startswith("layer ")] == \
        ["layer features.0", "layer features.3", "layer features.6"]


@pytest.mark.parametrize("args, message", [
    (["--layer", "featurs.0"], "no layer or block named 'featurs.0' in lenet5"),
    (["--layer", "classifier.1", "--save-maps", "OUT"], "--save-maps needs maps (CxHxW); layer classifier.1 gives"),
], ids=["unknown", "not-maps"])
def test_layer_mistakes(tmp_path, cli, args, message):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    r = cli("run", LENET, *args, "--device", "cpu")
    assert r.exit_code == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_layer_needs_a_spec(tmp_path, cli, compiled):
    r = cli("run", compiled("lenet5"), "--layer", "features.0")
    assert r.exit_code == 2 and "--layer needs a spec" in r.stderr


def test_fixed_kernels_are_not_called_random(tmp_path, cli):
    r = cli("run", FILTERS, "--image", SHAPES, "--device", "cpu")
    assert r.exit_code == 0 and "random" not in r.stderr
