"""`cnndsl run --labels` and `--normalize`: class names (built in, or a file: untrusted input) and the
preprocessing a trained network expects."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ROOT, SPECS

from cnndsl.errors import RunError
from cnndsl.runtime import image as images
from cnndsl.views import labels as names

SHAPES = ROOT / "tests" / "fixtures" / "shapes.png"


@pytest.mark.parametrize("source, count, first, some", [
    ("imagenet", 1000, "tench", (281, "tabby")),
    ("voc", 21, "background", (15, "person")),
])
def test_builtin_names(source, count, first, some):
    loaded = names.load_labels(source)
    assert len(loaded) == count and loaded[0] == first and loaded[some[0]] == some[1]


@pytest.mark.parametrize("content, message", [
    (b"cat\n\ndog\n", "line 2 is blank"),
    (b"\xff\xfe\x00c", "not UTF-8"),
    (b"\n\n", "names no class"),
    (b"x" * (names.MAX_BYTES + 1), "larger than"),
], ids=["blank", "not-utf8", "empty", "huge"])
def test_a_bad_labels_file(tmp_path, content, message):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(RunError, match=message):
        names.load_labels(str(path))


def test_a_labels_file_reads_as_written(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffcat\r\n  dog  \nbird\n\n".encode())
    assert names.load_labels(str(path)) == ["cat", "dog", "bird"]
    with pytest.raises(RunError, match="no such labels file"):
        names.load_labels(str(tmp_path / "missing.txt"))


def test_top_classes_are_named(cli):
    r = cli("run", SPECS / "squeezenet.cnn", "--labels", "imagenet", "--top", "3", "--device", "cpu")
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stdout.splitlines() if line.startswith("  class")]
    assert len(lines) == 3
    imagenet = names.load_labels("imagenet")
    for line in lines:
        index = int(line.split()[1])
        assert f" {imagenet[index]} " in line


def test_pixel_classes_are_named(tmp_path, cli):
    spec = tmp_path / "seg.cnn"
    spec.write_text("network seg\ninput 3x8x8\nconv 21 1x1\n", encoding="utf-8")
    r = cli("run", spec, "--labels", "voc", "--device", "cpu")
    assert r.exit_code == 0, r.output
    voc = names.load_labels("voc")
    lines = [line for line in r.stdout.splitlines() if line.startswith("  class")]
    assert lines and all(voc[int(line.split()[1])] == line.split()[2] for line in lines)


def test_names_for_another_number_of_classes_are_refused_before_running(cli):
    r = cli("run", SPECS / "lenet5.cnn", "--labels", "imagenet")
    assert r.exit_code == 1
    assert "--labels imagenet names 1,000 classes; the output has 10" in r.stderr and "provider:" not in r.stdout


@pytest.mark.parametrize("text, channels, mean, std", [
    ("imagenet", 3, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ("0.5/0.25", 3, [0.5] * 3, [0.25] * 3),
    ("0.1,0.2,0.3/1,2,4", 3, [0.1, 0.2, 0.3], [1, 2, 4]),
    ("0.5/0.5", 1, [0.5], [0.5]),
])
def test_normalize_values(text, channels, mean, std):
    m, s = images.parse_normalize(text, channels)
    assert m.shape[1:] == (1, 1) and np.allclose(m.ravel(), mean) and np.allclose(s.ravel(), std)


@pytest.mark.parametrize("text, message", [
    ("imagenett", "takes imagenet or MEAN/STD"), ("0.5", "takes imagenet or MEAN/STD"),
    ("0.1,0.2/0.5", "gives 2 mean values; the input has 3 channels"), ("0.5/0", "must be positive"),
    ("nan/1", "must be finite"), ("0.5/-1", "must be positive"),
])
def test_normalize_mistakes(text, message):
    with pytest.raises(RunError, match=message):
        images.parse_normalize(text, 3)


def test_normalize_imagenet_is_torchvisions_preprocessing(tmp_path, cli):
    """--normalize imagenet feeds the network (x - mean) / std of the 0..1 pixels: the same output as giving
    that array with --input."""
    spec = tmp_path / "probe.cnn"
    spec.write_text("network probe\ninput 3x64x64\nconv 2 3x3\n", encoding="utf-8")
    x, _ = images.load_image(str(SHAPES), (1, 3, 64, 64), False)
    mean, std = images.parse_normalize("imagenet", 3)
    np.save(tmp_path / "x.npy", ((x - mean) / std).astype(np.float32))
    by_image = cli("run", spec, "--image", SHAPES, "--normalize", "imagenet", "--device", "cpu")
    by_array = cli("run", spec, "--input", tmp_path / "x.npy", "--device", "cpu")
    assert by_image.exit_code == 0 and by_array.exit_code == 0
    assert "normalised with ImageNet's mean and std" in by_image.stdout
    assert by_image.stdout.splitlines()[2:] == by_array.stdout.splitlines()[2:]


def test_normalize_needs_an_image(cli):
    r = cli("run", SPECS / "lenet5.cnn", "--normalize", "imagenet")
    assert r.exit_code == 2 and "--normalize applies to --image" in r.stderr


@pytest.fixture
def trained(tmp_path, cli):
    """(weights: LeNet-5 compiled with seed 7, as a file; an input, as x.npy; that input)."""
    model = tmp_path / "seven.onnx"
    assert cli("compile", SPECS / "lenet5.cnn", "--seed", "7", "-o", model).exit_code == 0
    x = np.random.default_rng(3).random((1, 1, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    return model, tmp_path / "x.npy", x


def test_a_spec_runs_on_trained_weights_given_by_name(tmp_path, cli, trained):
    """`run SPEC --weights FILE` runs what `compile SPEC --weights FILE` writes: here weights from another seed."""
    model, _, _ = trained
    by_spec = cli("run", SPECS / "lenet5.cnn", "--weights", model, "--input", tmp_path / "x.npy", "--device", "cpu")
    by_model = cli("run", model, "--input", tmp_path / "x.npy", "--device", "cpu")
    seeded = cli("run", SPECS / "lenet5.cnn", "--input", tmp_path / "x.npy", "--device", "cpu")
    assert by_spec.exit_code == by_model.exit_code == 0
    assert by_spec.stdout.splitlines()[2:] == by_model.stdout.splitlines()[2:] != seeded.stdout.splitlines()[2:]
    assert "random" not in by_spec.stderr and "the weights are random" in seeded.stderr


def test_weights_go_with_a_spec(tmp_path, cli, compiled):
    r = cli("run", compiled("lenet5"), "--weights", compiled("lenet5"))
    assert r.exit_code == 1 and "--weights goes with a spec" in r.stderr


def test_maps_of_a_layer_with_trained_weights(tmp_path, cli, trained):
    import cnndsl

    model, _, x = trained
    r = cli("run", SPECS / "lenet5.cnn", "--weights", model, "--input", tmp_path / "x.npy", "--layer", "features.3",
            "--device", "cpu")
    assert r.exit_code == 0, r.output
    inside, _ = cnndsl.load(SPECS / "lenet5.cnn").upto("features.3").run(x, seed=7)
    assert f"values {inside.min():.4g} .. {inside.max():.4g}" in r.stdout
