"""Networks that map an image to an image, and networks with several outputs (issue 12): what
`run` prints for each output, the class mask --save-maps writes, compile --inference, the ONNX
model's outputs, and the located errors of skips across scales."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import SPECS, assert_error, err

import cnndsl
from cnndsl.views.maps import class_mask, palette

SEGMENTER = """network seg
input 1x16x16
enc: conv 4 3x3 pad=1 relu
maxpool 2x2
conv 8 3x3 pad=1 relu
up: convtranspose 4 2x2 stride=2
concat { from enc; identity }
aux: output train { globalavgpool; flatten; dense 3 }
head: conv 3 1x1
"""


def _spec(tmp_path, text=SEGMENTER, name="seg.cnn"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_prints_every_output_and_the_classes_of_the_pixels(cli, tmp_path):
    r = cli("run", _spec(tmp_path), "--device", "cpu", "--top", "2")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "output output: 1x3x16x16" in lines and "output aux: 1x3" in lines
    assert lines[lines.index("output output: 1x3x16x16") + 1] == (
        "sample 0: the arg-max class of each of 256 pixels (16x16), 3 classes")
    counts = [int(line.split()[2]) for line in lines if line.startswith("  class") and "pixels" in line]
    shown = [line for line in lines if line.startswith("  (")]
    assert len(counts) <= 2 and (sum(counts) == 256 or shown)
    assert "sample 0: top 2 of 3 classes" in lines  # the auxiliary classifier's


def test_pixel_counts_follow_the_arg_max():
    from cnndsl.views.results import pixel_class_lines

    y = np.zeros((1, 3, 2, 2), np.float32)
    y[0, 2, 0, :] = 1.0  # two pixels of class 2
    y[0, 1, 1, 0] = 1.0  # one of class 1
    y[0, 0, 1, 1] = np.nan  # NaN never wins: the first of the others (0 and 0), class 1, does
    lines = pixel_class_lines(y, 5)
    assert lines[0] == "sample 0: the arg-max class of each of 4 pixels (2x2), 3 classes"
    assert [line.split()[1:3] for line in lines[1:]] == [["1", "2"], ["2", "2"]]  # ties in class order
    assert pixel_class_lines(y, 1)[-1] == "  (1 more classes: 2 pixels)"


def test_save_maps_writes_a_class_mask_in_a_fixed_palette(cli, tmp_path):
    out = tmp_path / "maps"
    r = cli("run", _spec(tmp_path), "--device", "cpu", "--save-maps", out)
    assert r.exit_code == 0, r.stderr
    assert "mask.png" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png", "grid.png", "mask.png"]
    from PIL import Image

    mask = np.asarray(Image.open(out / "mask.png"))
    assert mask.shape == (16, 16, 3)
    assert {tuple(c) for c in mask.reshape(-1, 3)} <= {tuple(c) for c in palette(3)}
    # a network whose output has one map writes no mask, and removes the one it wrote before
    one = _spec(tmp_path, SEGMENTER.replace("head: conv 3 1x1", "head: conv 1 1x1"), "one.cnn")
    r = cli("run", one, "--device", "cpu", "--save-maps", out)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "grid.png"]


def test_the_palette_is_pascal_vocs():
    assert palette(4).tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert palette(21)[15].tolist() == [192, 128, 128]  # "person"
    scores = np.zeros((3, 1, 2), np.float32)
    scores[1, 0, 0] = scores[2, 0, 1] = 1.0
    assert class_mask(scores).tolist() == [[[128, 0, 0], [0, 128, 0]]]


def test_outputs_are_named_in_the_onnx_model_and_inference_leaves_out_training_heads():
    net = cnndsl.parse(SEGMENTER)
    full = net.to_onnx(seed=0)
    assert [o.name for o in full.graph.output] == ["output", "aux"]
    lean = net.to_onnx(seed=0, inference=True)
    assert [o.name for o in lean.graph.output] == ["output"]
    assert not [t.name for t in lean.graph.initializer if t.name.startswith("aux.")]
    assert net.totals.params == sum(int(np.prod(t.dims)) for t in full.graph.initializer)  # params count aux
    for fold in (False, True):
        onnx.checker.check_model(net.to_onnx(seed=0, fold_bn=fold, dtype="float16"), full_check=True)


def test_compile_inference_on_the_command_line(cli, tmp_path):
    r = cli("compile", _spec(tmp_path), "-o", tmp_path / "seg.onnx", "--inference")
    assert r.exit_code == 0, r.stderr
    assert "outputs: output (left out for inference: aux)" in r.stdout
    assert [o.name for o in onnx.load(tmp_path / "seg.onnx").graph.output] == ["output"]


def test_an_output_of_a_layer_that_a_batchnorm_follows_is_not_folded():
    """--fold-bn merges a batchnorm into the conv before it, unless that conv's own output is an output."""
    net = cnndsl.parse("input 1x8x8\nc: conv 2 3x3\nraw: output { identity }\nbatchnorm\n")
    from cnndsl.runtime.run import Runner

    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    plain = dict(Runner.from_model(net.to_onnx(seed=1).SerializeToString(), "cpu").run_all(x))
    folded = dict(Runner.from_model(net.to_onnx(seed=1, fold_bn=True).SerializeToString(), "cpu").run_all(x))
    assert set(plain) == {"output", "raw"}
    for name in plain:
        assert np.allclose(plain[name], folded[name], atol=1e-5), name


def test_summary_shows_outputs_and_where_skips_come_from():
    text = cnndsl.parse(SEGMENTER).summary()
    assert "concat  concat                         8x16x16       0              0  enc, (6)" in text
    assert "outputs\n  output  3x16x16  from head\n  aux     3        from aux.2  training only" in text
    assert "MACs                  41,984  (FLOPs = 2 x MACs = 83,968); 42,008 in training, with aux" in text


def test_an_unused_statement_is_a_warning():
    net = cnndsl.parse("input 1x8x8\nconv 2 3x3\nfrom input\nconv 3 3x3\n")
    assert [w.message for w in net.graph.warnings] == ["the output of '0' is never used"]
    assert net.totals.macs == 3 * 36 * 9  # the unused conv runs nowhere


ERRORS = [
    err("join-size-mismatch",
        "input 1x16x16\nenc: conv 4 3x3 pad=1\nmaxpool 2x2\nup: convtranspose 4 2x2 stride=2 pad=1\n"
        "concat { from enc; identity }\n",
        "concat: branch 1 gives 4x16x16 ('enc', line 2) but branch 2 gives 4x14x14 ('up', line 4)", 5, 20,
        "concat crop"),
    err("add-size-mismatch",
        "input 1x16x16\nenc: conv 4 3x3 pad=1\nmaxpool 2x2\nadd { from enc; identity }\n",
        "add: branch 1 gives 4x16x16 ('enc', line 2) but branch 2 gives 4x8x8 ('1', line 3)", 4, 17, "add crop"),
    err("unknown-label", "input 1x8x8\nconv 2 3x3\nfrom encoder\n",
        "no statement before this one is labelled 'encoder'", 3, 1),
    err("unknown-label-did-you-mean", "input 1x8x8\nenc1: conv 2 3x3\nfrom enc2\n",
        "no statement before this one is labelled 'enc2'", 3, 1, "did you mean 'enc1'"),
    err("later-label", "input 1x8x8\nfrom dec\ndec: conv 2 3x3\n", "'dec' is labelled later (line 3)", 2, 1),
    err("own-output", "input 1x8x8\nb: { conv 2 3x3; from b }\n", "'b' is not finished here", 2, 18),
    err("to-unknown", "input 1x8x8\nupsample to=skip\n", "no statement before this one is labelled 'skip'", 2, 13),
    err("convtranspose-cannot-make", "input 4x7x7\nconvtranspose 2 2x2 stride=2 size=16x14\n",
        "convtranspose cannot make 16x14 from 7x7", 2, 30, "ask for a size it can make"),
    err("output-without-label", "input 1x8x8\noutput { conv 2 3x3 }\nconv 2 3x3\n", "an output needs a label", 2, 1),
    err("output-named-output", "input 1x8x8\noutput: output { conv 2 3x3 }\nconv 2 3x3\n",
        "an output cannot be called 'output'", 2, 1),
    err("split-with-add", "input 4x8x8\nadd split { identity; identity }\n", "`split` goes with concat", 2, 1),
    err("add-shapes", "input 4x8x8\nadd { conv 2 1x1; identity }\n", "add: branch 1 gives 2x8x8, branch 2 gives 4x8x8",
        2, 19),
    err("network-is-its-input", "input 4x8x8\nconv 2 1x1\nfrom input\n", "the network's output is its input", 3, 1),
]


@pytest.mark.parametrize("text, message, line, col, hint", ERRORS)
def test_error(text, message, line, col, hint):
    assert_error(text, message, line, col, hint)


def test_the_api_lists_the_outputs_and_fmt_keeps_dotted_references():
    net = cnndsl.parse(SEGMENTER)
    assert net.outputs == {"output": (3, 16, 16), "aux": (3,)}
    from cnndsl.lang.fmt import format_text

    text = "input 3x8x8\nb:  { conv 4 3x3;conv 4 3x3 }\nfrom   b . 0\nadd   crop {identity;from input}\n"
    want = "input 3x8x8\nb: { conv 4 3x3; conv 4 3x3 }\nfrom b.0\nadd crop { identity; from input }\n"
    assert format_text(text) == want


def test_params_names_the_other_outputs(cli):
    r = cli("params", SPECS / "googlenet_torchvision.cnn", "--variant", "googlenet_aux")
    assert r.stdout.rstrip().endswith("3x224x224 -> 1000 (and aux1 1000 in training, aux2 1000 in training)")


def test_compile_inference_reports_the_parameters_it_wrote(cli, tmp_path):
    r = cli("compile", SPECS / "googlenet_torchvision.cnn", "--variant", "googlenet_aux", "--inference",
            "-o", tmp_path / "g.onnx")
    assert r.exit_code == 0, r.stderr
    assert "6,624,904 parameters" in r.stdout  # torchvision's googlenet in eval mode: no aux heads
    assert "outputs: output (left out for inference: aux1, aux2)" in r.stdout
