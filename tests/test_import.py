"""`cnndsl import` (issue 13): ONNX models read back as specs with their weights.

The round trip compile -> import -> compile --weights must give the same outputs bit for bit,
the same parameter count and the same weight names, with a spec in canonical form; models import
cannot express, and hostile files, are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import SPECS
from onnx import TensorProto, helper, numpy_helper

import cnndsl
from cnndsl.api import CompileOptions, format_spec, import_onnx
from cnndsl.errors import ImportModelError

# shipped specs small enough for CI (the large ones: tools/import_roundtrip.py)
ROUND_TRIP = ["lenet5", "mlp_mnist", "alexnet_torchvision", "resnet18", "resnet50", "resnext", "googlenet",
              "googlenet_torchvision", "inception_v3", "squeezenet", "densenet", "mobilenet_v2", "mobilenet_v3",
              "mnasnet", "efficientnet", "efficientnet_v2", "regnet", "convnext", "shufflenet_v2", "unet",
              "lraspp_mobilenet_v3_large"]


def _ort(model):
    import onnxruntime as ort

    data = model if isinstance(model, bytes) else open(model, "rb").read()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _run(session, x):
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("spec", ROUND_TRIP)
def test_round_trip_is_bit_exact(compiled, spec):
    original = compiled(spec)
    net = cnndsl.load(SPECS / f"{spec}.cnn")
    imported = import_onnx(original)
    assert format_spec(imported.spec) == imported.spec, "the imported spec is in canonical form"
    assert imported.names_kept, imported.notes
    again = cnndsl.parse(imported.spec)
    assert again.totals.params == net.totals.params
    assert again.totals.macs == net.totals.macs
    weights = dict(imported.arrays())
    result = again.compile(CompileOptions(weights=weights))
    batch = 1 if net.totals.macs > 10**10 else 2  # U-Net's 150 GMACs once
    x = np.random.default_rng(1).standard_normal((batch, *net.input_shape)).astype(np.float32)
    assert np.array_equal(_run(_ort(original), x), _run(_ort(result.model.SerializeToString()), x))


@pytest.mark.parametrize("spec, most", [("resnet50", 1.3), ("resnet18", 1.2), ("googlenet", 2.0),
                                        ("vgg16", 1.8), ("mobilenet_v2", 2.1)])
def test_imported_specs_are_factored_like_a_person_would(compiled, spec, most):
    """Repeated structure becomes blocks and repeats: the spec stays near the hand-written length."""
    if spec == "vgg16":  # 138M weights: build the model without them
        pytest.skip("covered by tools/import_roundtrip.py")
    imported = import_onnx(compiled(spec))
    ours = _code_lines((SPECS / f"{spec}.cnn").read_text())
    theirs = _code_lines(imported.spec)
    assert theirs <= most * ours, imported.spec


def _code_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def test_resnet50_has_a_bottleneck_block_and_3_4_6_3_repeats(compiled):
    spec = import_onnx(compiled("resnet50")).spec
    assert "block res_block(c, stride=1) {" in spec
    assert "conv c*4 1x1 stride=stride bias=false" in spec  # the projection, used where the shape changes
    for line in ("layer1: repeat 3 res_block 64", "layer2: layer 128 3", "layer3: layer 256 5",
                 "layer4: layer 512 2"):
        assert line in spec


def test_activation_kinds_become_a_block_parameter(compiled):
    """MobileNetV3's conv-batchnorm-activation units differ only in relu against hardswish: one block
    with an `act` parameter, as the shipped spec writes it."""
    spec = import_onnx(compiled("mobilenet_v3")).spec
    assert "block conv_bn_act(c, k, stride=1, groups=1, act=hardswish) {" in spec
    assert "pad=(k-1)//2" in spec, "a padding that keeps the size is written from the kernel"
    assert "\n  act\n" in spec and "act=relu" in spec and "act=none" in spec


def test_skips_across_scales_become_from_with_the_label_as_a_block_parameter(compiled):
    """U-Net's copy and crop: each up-step goes on from the encoder map of its scale; the four are
    one block taking that label (`from skip`), called as `up4: ... 512 down4`."""
    spec = import_onnx(compiled("unet")).spec
    assert "concat crop { from skip; identity }" in spec
    for c, level in ((512, 4), (256, 3), (128, 2), (64, 1)):
        assert f"up{level}: mixed {c} down{level}" in spec, spec


def test_statements_some_instances_lack_become_ifs(compiled):
    """MobileNetV3's bottlenecks differ in whether they expand and whether they have a squeeze-and-
    excitation gate: one block, with `if c != in_channels { }` (the expansion is left out where it
    would not widen) and `if se { }`, called for all fifteen, as the shipped spec writes it."""
    spec = import_onnx(compiled("mobilenet_v3")).spec
    blocks = [line for line in spec.splitlines() if line.startswith("block ")]
    assert len(blocks) == 2, spec
    assert "if c != in_channels {" in spec and "if se {" in spec
    calls = [line for line in spec.splitlines() if line.strip().startswith(("unit ", "repeat 2 unit "))]
    assert sum(2 if "repeat 2" in line else 1 for line in calls) == 15, spec


def test_googlenet_is_one_inception_block_called_nine_times(compiled):
    spec = import_onnx(compiled("googlenet_torchvision")).spec
    calls = [c for line in spec.splitlines() for c in line.split("; ") if c.startswith("inception")
             and ": inception" in c]
    assert len(calls) == 9, spec


def test_cli_writes_a_spec_and_weights_that_compile_strictly(cli, compiled, tmp_path):
    spec, weights = tmp_path / "r18.cnn", tmp_path / "r18.safetensors"
    result = cli("import", compiled("resnet18"), "-o", spec, "--weights-out", weights)
    assert result.exit_code == 0, result.output
    assert "11,689,512 parameters" in result.stderr
    again = tmp_path / "again.onnx"
    result = cli("compile", spec, "--weights", weights, "-o", again)
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert np.array_equal(_run(_ort(compiled("resnet18")), x), _run(_ort(again), x))


def test_cli_prints_the_spec_without_output(cli, compiled):
    result = cli("import", compiled("lenet5"))
    assert result.exit_code == 0
    assert result.stdout.startswith("# Imported by `cnndsl import` from ")
    assert "network " in result.stdout and "classifier: {" in result.stdout


# -- torch.onnx's exports (tests/fixtures/import, written by tools/import_fixtures.py) --------

FIXTURES = Path(__file__).parent / "fixtures" / "import"
COUNTS = json.loads((FIXTURES / "counts.json").read_text())


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_torch_exports_import_to_the_same_network(name):
    """The TorchScript exporter at opsets 9 to 17 and the dynamo exporter (optimised and raw):
    outputs within 1e-5 of onnxruntime on the exported file, torch's parameter count, labels from
    torch's module names, a canonical spec."""
    path = FIXTURES / name
    imported = import_onnx(path)
    assert format_spec(imported.spec) == imported.spec
    assert imported.names_kept == COUNTS[name]["names"], imported.notes  # folded: onnx::Conv_N names
    net = cnndsl.parse(imported.spec)
    assert net.totals.params == COUNTS[name]["params"]
    result = net.compile(CompileOptions(weights=dict(imported.arrays())))
    x = np.random.default_rng(4).standard_normal((3, *COUNTS[name]["input"])).astype(np.float32)
    want, got = _run(_ort(str(path)), x), _run(_ort(result.model.SerializeToString()), x)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


# -- models made by hand: other exporters' patterns -----------------------------------------

def _model(nodes, inits, x_shape, y_shape, opset=17, extra_outputs=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape), *extra_outputs],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _same_outputs(path, shape, tol=0.0):
    imported = import_onnx(path)
    net = cnndsl.parse(imported.spec)
    result = net.compile(CompileOptions(weights=dict(imported.arrays())))
    x = np.random.default_rng(3).standard_normal((2, *shape)).astype(np.float32)
    a, b = _run(_ort(str(path)), x), _run(_ort(result.model.SerializeToString()), x)
    np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    return imported


def _rand(*shape):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def test_torch_style_patterns(tmp_path):
    """MatMul + Add, Gemm without transB, a zero Pad before a conv, Clip(0, 6), x * sigmoid(x),
    Flatten via a computed Reshape, Dropout and Identity: all become the layers they are."""
    inits = {"c.weight": _rand(4, 3, 3, 3), "c.bias": _rand(4), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
             "lo": np.array(0, np.float32), "hi": np.array(6, np.float32), "mm": _rand(4 * 8 * 8, 5),
             "mb": _rand(5), "g.weight": _rand(5, 3), "g.bias": _rand(3), "shape": np.array([0, -1], np.int64)}
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "c.weight", "c.bias"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r6"]),
        helper.make_node("Sigmoid", ["r6"], ["s"]),
        helper.make_node("Mul", ["r6", "s"], ["silu"]),
        helper.make_node("Dropout", ["silu"], ["d"]),
        helper.make_node("Reshape", ["d", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "mm"], ["m"]),
        helper.make_node("Add", ["m", "mb"], ["dense"]),
        helper.make_node("Identity", ["dense"], ["i"]),
        helper.make_node("Gemm", ["i", "g.weight", "g.bias"], ["y"]),
    ]
    imported = _same_outputs(_save(tmp_path, _model(nodes, inits, ["N", 3, 8, 8], ["N", 3])), (3, 8, 8), 1e-5)
    assert "conv 4 3x3 pad=1" in imported.spec
    assert "relu6" in imported.spec and "silu" in imported.spec and "flatten" in imported.spec
    assert imported.spec.count("dense") == 2


def test_a_model_without_module_names_is_still_factored():
    """torch.onnx's default export folds the batchnorms and names the weights onnx::Conv_N: the
    residual blocks still become one block, called per stage."""
    imported = import_onnx(FIXTURES / "resnet-legacy-folded-opset17.onnx")
    assert not imported.names_kept and "not module names (e.g. 'onnx::Conv_" in imported.notes[0]
    assert "block res_block(c, stride=1) {" in imported.spec
    assert "repeat 2 res_block 8" in imported.spec


def test_meaningless_names_get_cnndsl_names_and_a_note(tmp_path):
    inits = {"onnx::Conv_1": _rand(4, 3, 3, 3), "onnx::Conv_2": _rand(4)}
    nodes = [helper.make_node("Conv", ["x", "onnx::Conv_1", "onnx::Conv_2"], ["y"], kernel_shape=[3, 3])]
    imported = _same_outputs(_save(tmp_path, _model(nodes, inits, ["N", 3, 8, 8], ["N", 4, 6, 6])), (3, 8, 8))
    assert not imported.names_kept
    assert any("not module names" in n for n in imported.notes)
    assert sorted(imported.weights) == ["0.bias", "0.weight"]


def test_a_projection_shortcut_and_an_identity_residual(tmp_path):
    """Add(body(x), x) is `residual { }`; Add(body(x), proj(x)) where the shape changes carries a
    shortcut; Mul(x, gate(x)) with a Cx1x1 gate is `gate { }`."""
    w = {f"b.{i}.weight": _rand(8, 8, 3, 3) for i in range(2)}
    w.update({"p.weight": _rand(8, 3, 1, 1), "s.weight": _rand(8, 8, 1, 1)})
    nodes = [
        helper.make_node("Conv", ["x", "p.weight"], ["xp"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["xp", "b.0.weight"], ["b0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["b0"], ["r0"]),
        helper.make_node("Add", ["r0", "xp"], ["a0"]),
        helper.make_node("GlobalAveragePool", ["a0"], ["gp"]),
        helper.make_node("Conv", ["gp", "s.weight"], ["sc"], kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["sc"], ["sg"]),
        helper.make_node("Mul", ["a0", "sg"], ["y"]),
    ]
    imported = _same_outputs(_save(tmp_path, _model(nodes, w, ["N", 3, 8, 8], ["N", 8, 8, 8])), (3, 8, 8), 1e-5)
    assert "residual {" in imported.spec and "gate {" in imported.spec


# -- honest failure ------------------------------------------------------------------------

def _error(path) -> str:
    with pytest.raises(ImportModelError) as info:
        import_onnx(path)
    return info.value.render()


def test_an_operator_the_language_lacks_names_the_node_and_the_nearest_construct(tmp_path):
    inits = {"w": _rand(4, 3, 3, 3)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("InstanceNormalization", ["c", "w", "w"], ["y"], name="norm1")]
    message = _error(_save(tmp_path, _model(nodes, inits, [1, 3, 8, 8], [1, 4, 6, 6])))
    assert "node 'norm1' (InstanceNormalization, inputs c, w, w): no cnndsl statement computes " \
           "InstanceNormalization" in message
    assert "hint: cnndsl has batchnorm and layernorm" in message


def _cyclic(tmp_path):
    nodes = [helper.make_node("Relu", ["x2"], ["x1"]), helper.make_node("Relu", ["x1"], ["x2"]),
             helper.make_node("Add", ["x", "x2"], ["y"])]
    return _save(tmp_path, _model(nodes, {}, [1, 3], [1, 3]))


def _dangling(tmp_path):
    return _save(tmp_path, _model([helper.make_node("Add", ["x", "ghost"], ["y"])], {}, [1, 3], [1, 3]))


def _foreign(tmp_path):
    model = _model([helper.make_node("Evil", ["x"], ["y"], domain="evil.ops")], {}, [1, 3], [1, 3])
    model.opset_import.append(helper.make_opsetid("evil.ops", 1))
    return _save(tmp_path, model)


def _loop(tmp_path):
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c2"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("c2", TensorProto.BOOL, [])])
    nodes = [helper.make_node("Loop", ["", ""], [], body=body), helper.make_node("Relu", ["x"], ["y"])]
    return _save(tmp_path, _model(nodes, {}, [1, 3], [1, 3]))


def _traversal(tmp_path):
    t = helper.make_tensor("w", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../../etc/passwd")
    model = _model([helper.make_node("Add", ["x", "w"], ["y"])], {}, [1, 3], [1, 3])
    model.graph.initializer.append(t)
    return _save(tmp_path, model)


def _truncated(tmp_path):
    path = tmp_path / "t.onnx"
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"])], {}, [1, 3], [1, 3]), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _random_bytes(tmp_path):
    path = tmp_path / "r.onnx"
    path.write_bytes(np.random.default_rng(5).bytes(3000))
    return path


def _not_utf8(tmp_path):
    model = _model([helper.make_node("Relu", ["x"], ["hidden"]), helper.make_node("Relu", ["hidden"], ["y"])], {},
                   [1, 3], [1, 3])
    path = tmp_path / "u.onnx"
    path.write_bytes(model.SerializeToString().replace(b"hidden", b"hid\xffen"))
    return path


def _two_inputs(tmp_path):
    graph = helper.make_graph([helper.make_node("Add", ["x", "z"], ["y"])], "g",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in "xz"],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    return _save(tmp_path, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _skip_from_elsewhere(tmp_path):
    inits = {"a.weight": _rand(3, 3, 1, 1), "b.weight": _rand(3, 3, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "a.weight"], ["a"], kernel_shape=[1, 1]),
             helper.make_node("Conv", ["a", "b.weight"], ["b"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["b", "x"], ["c"]),  # a skip over `a` from the input ...
             helper.make_node("Add", ["c", "a"], ["y"])]  # ... and one from `a`: no nesting of branches
    return _save(tmp_path, _model(nodes, inits, [1, 3, 4, 4], [1, 3, 4, 4]))


@pytest.mark.parametrize("make, message", [
    (_truncated, "not a readable ONNX model"),
    (_random_bytes, "not a readable ONNX model"),
    (_cyclic, "the graph has a cycle through node"),
    (_dangling, "reads 'ghost', which no node, initializer or input makes"),
    (_foreign, "is from the operator set 'evil.ops'"),
    (_loop, "has a subgraph (control flow)"),
    (_traversal, "is not a file beside the model"),
    (_two_inputs, "the model has 2 inputs"),
    (_not_utf8, "a tensor's name is not text"),
    (_skip_from_elsewhere, "the branches that start at 'x' cross before they meet at node"),
], ids=["truncated", "random-bytes", "cyclic", "dangling", "foreign-op", "control-flow", "traversal",
        "two-inputs", "not-utf8", "skip-from-elsewhere"])
def test_broken_and_hostile_models_are_clear_errors(tmp_path, cli, make, message):
    path = make(tmp_path)
    assert message in _error(path)
    result = cli("import", path, "-o", tmp_path / "out.cnn", "--weights-out", tmp_path / "out.safetensors")
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out.cnn").exists() and not (tmp_path / "out.safetensors").exists()


def test_partial_imports_the_part_before_the_node_the_language_lacks(tmp_path, cli):
    """--partial: the model up to the input of the last node cnndsl cannot express, marked in the
    spec and on stderr, with that part's weights; without it, the same model is an error."""
    inits = {"w": _rand(4, 3, 3, 3), "b": _rand(4), "s": _rand(4)}
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], name="conv1")
    nodes = [conv, helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("InstanceNormalization", ["r", "s", "b"], ["y"], name="norm1")]
    path = _save(tmp_path, _model(nodes, inits, [1, 3, 8, 8], [1, 4, 6, 6]))
    assert "InstanceNormalization" in _error(path)
    imported = import_onnx(path, partial=True)
    assert "# PARTIAL: only the part before node 'norm1' (InstanceNormalization" in imported.spec
    assert "Its output is that node's input 'r' (4x6x6)" in imported.spec
    net = cnndsl.parse(imported.spec)
    assert net.output_shape == (4, 6, 6) and net.totals.params == 4 * 27 + 4
    part = _save(tmp_path, _model(nodes[:2], inits, [1, 3, 8, 8], [1, 4, 6, 6]), "part.onnx")
    part_model = onnx.load(part)
    part_model.graph.output[0].name = "r"
    onnx.save(part_model, part)
    result = net.compile(CompileOptions(weights=dict(imported.arrays())))
    x = np.random.default_rng(5).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(_ort(result.model.SerializeToString()), x), _run(_ort(str(part)), x),
                               rtol=1e-6, atol=1e-6)
    r = cli("import", path, "--partial", "-o", tmp_path / "p.cnn")
    assert r.exit_code == 0 and "warning: PARTIAL import: only the part before node 'norm1'" in r.stderr
    assert (tmp_path / "p.cnn").read_text().startswith("# Imported")


def test_partial_of_a_model_with_nothing_before_the_node_is_still_an_error(tmp_path):
    nodes = [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], name="norm1")]
    path = _save(tmp_path, _model(nodes, {"s": _rand(3), "b": _rand(3)}, [1, 3, 8, 8], [1, 3, 8, 8]))
    with pytest.raises(ImportModelError, match="InstanceNormalization"):
        import_onnx(path, partial=True)
