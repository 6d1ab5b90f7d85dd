"""Weights (cnndsl/weights/): files read by name (untrusted input), strict matching, the seeded
initialisation (He or Glorot, streamed in chunks), and the `weights` command."""

from __future__ import annotations

import json
import struct

import numpy as np
import onnx
import pytest
from helpers import SPECS
from onnx import numpy_helper

import cnndsl
from cnndsl.errors import WeightsError
from cnndsl.weights.files import read_weights

ST_NAMES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
            np.dtype(np.int64): "I64"}


def write_safetensors(path, tensors, bf16=()):
    """A writer for the format, written from its description (8-byte size, JSON header, data)."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        if name in bf16:
            data = (arr.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
            dtype = "BF16"
        else:
            data, dtype = arr.tobytes(), ST_NAMES[arr.dtype]
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def lenet_state(seed=0):
    rng = np.random.default_rng(seed)
    net = cnndsl.load(SPECS / "lenet5.cnn")
    return {p.name: rng.standard_normal(p.shape).astype(np.float32) for p in net.graph.params()}


def initializers(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.mark.parametrize("fmt", ["safetensors", "npz", "onnx"])
def test_load_by_name_from_each_format(tmp_path, fmt):
    state = lenet_state()
    path = tmp_path / f"w.{fmt}"
    if fmt == "safetensors":
        write_safetensors(path, state)
    elif fmt == "npz":
        np.savez(path, **state)
    else:
        donor = cnndsl.load(SPECS / "lenet5.cnn").to_onnx(weights=state)
        onnx.save_model(donor, path)
    got = initializers(cnndsl.load(SPECS / "lenet5.cnn").to_onnx(weights=path))
    assert set(got) == set(state)
    for name, arr in state.items():
        np.testing.assert_array_equal(got[name], arr)


def test_strict_mismatch_lists_every_name(tmp_path, cli):
    state = lenet_state()
    del state["features.3.bias"]
    state["features.3.wieght"] = state.pop("features.3.weight")
    state["classifier.2.weight"] = np.zeros((11, 84), np.float32)
    state["classifier.2.extra"] = np.zeros(3, np.float32)
    write_safetensors(tmp_path / "w.safetensors", state)
    r = cli("compile", SPECS / "lenet5.cnn", "--weights", tmp_path / "w.safetensors", "-o", tmp_path / "out.onnx")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    err = r.stderr
    assert "5 weights do not match network 'lenet5'" in err
    assert "shape mismatch  classifier.2.weight: spec 10x84, file 11x84" in err
    assert "missing         features.3.weight (16x6x5x5)" in err
    assert "missing         features.3.bias (16)" in err
    assert "unexpected      features.3.wieght (16x6x5x5): did you mean 'features.3.weight'?" in err
    assert "unexpected      classifier.2.extra" in err
    assert not (tmp_path / "out.onnx").exists()


def test_non_strict_keeps_seeded_values_for_missing(tmp_path, cli):
    state = lenet_state()
    del state["features.0.weight"]
    state["junk"] = np.zeros(2, np.float32)
    np.savez(tmp_path / "w.npz", **state)
    r = cli("compile", SPECS / "lenet5.cnn", "--weights", tmp_path / "w.npz", "--no-strict", "-o", tmp_path / "o.onnx")
    assert r.exit_code == 0, r.stderr
    assert "1 weights not in the file keep their seeded values" in r.stderr and "ignored 1 tensors" in r.stderr


def test_dtypes_converted_with_a_note_and_batches_tracked_ignored(tmp_path):
    net = cnndsl.parse("input 3x8x8\nconv 4 3x3 bias=false\nbn: batchnorm\nrelu\nflatten\nfc: dense 2\n")
    rng = np.random.default_rng(0)
    state = {p.name: rng.standard_normal(p.shape) for p in net.graph.params()}  # float64
    state["0.weight"] = state["0.weight"].astype(np.float16)
    state["bn.num_batches_tracked"] = np.array(7, np.int64)
    write_safetensors(tmp_path / "w.safetensors", state, bf16={"fc.weight"})
    from cnndsl.weights.match import match_weights

    loaded, notes = match_weights(net.graph, read_weights(str(tmp_path / "w.safetensors")), "w", True)
    assert all(a.dtype == np.float32 for a in loaded.values())
    assert "note: converted 1 tensor from float16 to float32" in notes
    assert "note: converted 1 tensor from bfloat16 to float32" in notes
    assert "note: converted 5 tensors from float64 to float32" in notes
    np.testing.assert_allclose(loaded["fc.weight"], state["fc.weight"], rtol=1 / 128)  # bf16 precision


@pytest.mark.parametrize("ext", [".pt", ".pth", ".ckpt"])
def test_pickle_formats_refused_with_the_conversion(tmp_path, ext):
    path = tmp_path / f"w{ext}"
    path.write_bytes(b"\x80\x04not really")
    with pytest.raises(WeightsError) as info:
        read_weights(str(path))
    assert "never unpickles" in info.value.hint and "safetensors.torch.save_file" in info.value.hint


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:4], "no header"),
    (lambda b: b[:-10], "runs past the end"),
    (lambda b: struct.pack("<Q", 10 ** 9) + b[8:], "corrupt safetensors file"),
    (lambda b: b[:8] + b"]" + b[9:], "corrupt safetensors header"),
])
def test_corrupt_safetensors_named_precisely(tmp_path, damage, message):
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"a": np.ones((4, 4), np.float32)})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(WeightsError, match=message) as info:
        read_weights(str(path))
    assert info.value.path == str(path)


def test_npz_with_pickled_objects_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    import zipfile

    with zipfile.ZipFile(tmp_path / "w.npz", "w") as z:
        z.write(tmp_path / "x.npy", "x.npy")
    with pytest.raises(WeightsError, match="pickled objects are refused"):
        read_weights(str(tmp_path / "w.npz"))


def test_nan_weights_error_when_strict_warning_otherwise():
    state = lenet_state()
    state["features.0.bias"][2] = np.nan
    from cnndsl.weights.match import match_weights

    graph = cnndsl.load(SPECS / "lenet5.cnn").graph
    with pytest.raises(WeightsError, match="tensor 'features.0.bias' has 1 NaN or infinite values"):
        match_weights(graph, state, "w", True)
    _, notes = match_weights(graph, state, "w", False)
    assert "warning: tensor 'features.0.bias' has 1 NaN or infinite values" in notes


def test_weights_command_lists_names_and_shapes(cli):
    r = cli("weights", SPECS / "lenet5.cnn")
    assert r.exit_code == 0
    assert r.output.splitlines()[0].split() == ["features.0.weight", "6x1x5x5", "trainable"]
    rows = json.loads(cli("weights", "--json", SPECS / "lenet5.cnn").output)
    assert len(rows) == 10 and rows[-1] == {"name": "classifier.2.bias", "shape": [10], "role": "trainable"}


@pytest.mark.parametrize("size, init, streamed", [
    (1000, "he", False),  # one chunk: made whole
    (1001, "he", True),
    (3000, "glorot", True),  # an exact multiple of the chunk
    (7777, "glorot", True),  # more chunks than buffers, with a remainder
    (7777, "zeros", False),
    (7777, "ones", False),
])
def test_streamed_chunks_equal_the_whole_tensor(monkeypatch, size, init, streamed):
    from cnndsl.model.ir import TRAINABLE, Param
    from cnndsl.weights import seeded as weights

    monkeypatch.setattr(weights, "CHUNK", 1000)
    p = Param("features.0.weight", (size,), TRAINABLE, init, fan_in=9, fan_out=16)
    parts = weights.init_parts(p, seed=4)
    assert (parts is not None) == streamed
    if streamed:
        got = np.concatenate([part.copy() for part in parts])  # each chunk is valid until the next
        np.testing.assert_array_equal(got, weights.init_array(p, seed=4))


def test_weight_init_schemes():
    """He for weights feeding relu (through batchnorm too), Glorot otherwise; BN identity statistics."""
    net = cnndsl.parse("input 3x8x8\nconv 64 3x3 bias=false\nbatchnorm\nrelu\nconv 64 3x3\nflatten\ndense 10\n")
    inits = {p.name: p.init for p in net.graph.params()}
    assert inits == {"0.weight": "he", "1.weight": "ones", "1.bias": "zeros", "1.running_mean": "zeros",
                     "1.running_var": "ones", "3.weight": "glorot", "3.bias": "zeros", "5.weight": "glorot",
                     "5.bias": "zeros"}
    model = net.to_onnx(seed=0)
    w = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert abs(w["0.weight"].std() - np.sqrt(2 / 27)) < 0.02
    assert np.abs(w["3.weight"]).max() <= np.sqrt(6 / (64 * 9 + 64 * 9))


def test_fill_scheme_is_one_number_everywhere_and_not_streamed(monkeypatch):
    """``fill`` (a layer scale's start): every value is ``Param.value``, as float32, whatever the seed;
    a large tensor is made whole, not drawn in chunks."""
    from cnndsl.model.ir import TRAINABLE, Param
    from cnndsl.weights import seeded as weights

    monkeypatch.setattr(weights, "CHUNK", 1000)
    p = Param("blk.layer_scale", (3000, 1, 1), TRAINABLE, "fill", value=1e-6)
    a = weights.init_array(p, seed=0)
    assert a.dtype == np.float32 and a.shape == (3000, 1, 1)
    np.testing.assert_array_equal(a, np.full((3000, 1, 1), np.float32(1e-6)))
    np.testing.assert_array_equal(a, weights.init_array(p, seed=9))
    assert weights.init_parts(p, seed=0) is None
