"""`cnndsl import --weights-out`: the weights written as safetensors (cnndsl/importer/save.py).

Weights the model already holds as safetensors does (float32 raw data) are copied from file to
file, never through this process; the others are written from their arrays; every way gives the
same bytes, and a model that changes before its weights are written is an error that publishes
nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from cnndsl import io
from cnndsl.api import import_onnx
from cnndsl.errors import ImportModelError
from cnndsl.importer import save
from cnndsl.weights.arrays import Stored
from cnndsl.weights.files import read_safetensors

FIXTURES = Path(__file__).parent / "fixtures" / "import"


def _written(imported, path: Path) -> bytes:
    imported.save(None, path)
    return path.read_bytes()


def _same_weights(imported, path: Path) -> None:
    stored = read_safetensors(str(path))
    assert list(stored) == list(imported.weights)
    for name, a in imported.arrays():
        assert np.array_equal(stored[name].load(), a), name


@pytest.mark.skipif(not hasattr(os, "copy_file_range"), reason="no in-kernel copy here")
def test_unchanged_weights_never_pass_through_this_process(compiled, tmp_path, monkeypatch):
    """ResNet-18's 44 MB: the model is opened once, only the dense layer's transposed weight is read
    as an array, and what this process itself writes is the header and that weight."""
    model = str(compiled("resnet18"))
    imported = import_onnx(model)
    changed = [(w, shape) for w, shape in imported.weights.values() if w.transform is not None]
    assert len(changed) == 1
    loads, opens, written = [], [], []
    real_load, real_open, real_write = Stored.load, os.open, os.write
    monkeypatch.setattr(Stored, "load", lambda self: loads.append(self.name) or real_load(self))
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opens.append(os.fspath(path)) or real_open(path, *a, **k))
    monkeypatch.setattr(os, "write", lambda fd, data: written.append(real_write(fd, data)) or written[-1])
    out = tmp_path / "r18.safetensors"
    imported.save(None, out)
    assert loads == [changed[0][0].source]
    assert opens.count(model) == 1
    header = 8 + int.from_bytes(out.read_bytes()[:8], "little")
    assert sum(written) == header + 4 * int(np.prod(changed[0][1])) < os.path.getsize(out) // 20
    _same_weights(imported, out)


@pytest.mark.parametrize("kernel", ["refused", "says-0", "missing"])
def test_without_the_kernel_copy_the_bytes_are_the_same(compiled, tmp_path, monkeypatch, kernel):
    """Where the kernel cannot copy between the files (another file system, an old kernel, another
    system), the bytes go through a buffer, a chunk at a time, to the same file."""
    imported = import_onnx(compiled("resnet18"))
    want = _written(imported, tmp_path / "kernel.safetensors")
    if kernel == "refused":
        def refuse(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    elif kernel == "says-0":
        monkeypatch.setattr(os, "copy_file_range", lambda *args: 0, raising=False)
    else:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    monkeypatch.setattr(save, "BUFFER", 100_003)  # tensors larger than the buffer, cut at odd places
    assert _written(imported, tmp_path / "buffer.safetensors") == want


def test_changed_weights_are_written_from_their_arrays(tmp_path):
    """A torch export's dense weights are transposed (Gemm transB, MatMul): read, changed, written."""
    imported = import_onnx(FIXTURES / "lenet-legacy-opset13.onnx")
    assert sum(w.transform is not None for w, _ in imported.weights.values()) == 2
    out = tmp_path / "lenet.safetensors"
    imported.save(tmp_path / "lenet.cnn", out)
    _same_weights(imported, out)


def test_a_model_that_changes_before_its_weights_are_written_publishes_nothing(compiled, tmp_path):
    model = tmp_path / "r18.onnx"
    model.write_bytes(Path(compiled("resnet18")).read_bytes())
    imported = import_onnx(model)
    with open(model, "r+b") as fh:
        fh.truncate(os.path.getsize(model) // 2)
    spec, weights = tmp_path / "r18.cnn", tmp_path / "r18.safetensors"
    with pytest.raises(ImportModelError, match="the file changed while it was read"):
        imported.save(spec, weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r18.onnx"]


def test_external_data_is_copied_from_its_file(compiled, tmp_path, monkeypatch):
    """A model whose weights lie in a file beside it: read from there, opened once, same bytes."""
    import onnx

    inline = compiled("resnet18")
    path = tmp_path / inline.name  # the same name: the same header
    onnx.save(onnx.load(inline), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.data", size_threshold=0)
    imported = import_onnx(path)
    assert all(s.extent is not None and s.extent.path.endswith("weights.data")
               for s in imported.source.initializers.values())
    want = _written(import_onnx(inline), tmp_path / "inline.safetensors")
    opens, real_open = [], os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opens.append(os.path.basename(p)) or real_open(p, *a, **k))
    assert _written(imported, tmp_path / "external.safetensors") == want
    # once by the copier for all the tensors, once by the reader of the values the import looks at (it opens
    # by os.open too since it checks the file is the one that was checked)
    assert opens.count("weights.data") <= 2


@pytest.mark.parametrize("swap", ["link", "replace"])
def test_external_data_swapped_after_it_was_checked_is_not_read(compiled, tmp_path, swap):
    """Between the import's check of a model's external data and the copy of its bytes, the file is replaced:
    by a link leading out of the model's folder (to a private file), or by another file. Nothing is copied."""
    import onnx

    inline = compiled("lenet5")
    path = tmp_path / "m" / inline.name
    path.parent.mkdir()
    onnx.save(onnx.load(inline), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.data", size_threshold=0)
    imported = import_onnx(path)
    data = path.parent / "weights.data"
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"S" * (data.stat().st_size + 16))
    data.rename(tmp_path / "old.data")
    if swap == "link":
        data.symlink_to(secret)
    else:
        data.write_bytes(secret.read_bytes())
    out = tmp_path / "out.safetensors"
    with pytest.raises(ImportModelError, match="cannot be read again|was replaced since it was read"):
        imported.save(None, out)
    assert not out.exists()


def test_weights_are_written_once_before_the_proof_where_the_model_names_them(compiled, tmp_path, monkeypatch):
    """With its outputs, import writes the weights first (under the model's names, which the spec
    keeps) and proves the spec while they reach the disk: the same files as `save` writes after."""
    import cnndsl.importer as importer

    model = compiled("resnet18")
    importer.import_onnx(model).save(tmp_path / "after.cnn", tmp_path / "after.safetensors")
    events, real_write, real_verified, real_flush = [], save.write, importer._verified, io.Publication.flush_early
    monkeypatch.setattr(save, "write", lambda *a: events.append("write") or real_write(*a))
    monkeypatch.setattr(importer, "_verified", lambda *a: events.append("verify") or real_verified(*a))
    monkeypatch.setattr(io.Publication, "flush_early", lambda *a: events.append("flush") or real_flush(*a))
    imported = import_onnx(model, None, tmp_path / "early.cnn", tmp_path / "early.safetensors")
    assert events == ["write", "flush", "verify", "verify"]  # the plain spec, then the factored one
    assert imported.names_kept
    assert (tmp_path / "early.cnn").read_text() == (tmp_path / "after.cnn").read_text() == imported.spec
    assert (tmp_path / "early.safetensors").read_bytes() == (tmp_path / "after.safetensors").read_bytes()


def test_weights_written_under_names_the_proof_does_not_give_are_written_again(compiled, tmp_path, monkeypatch):
    from cnndsl.importer import names

    model = compiled("resnet18")
    want = _written(import_onnx(model), tmp_path / "want.safetensors")
    real = names.weight_names
    monkeypatch.setattr(names, "weight_names", lambda stmts: dict(reversed(real(stmts).items())))
    import_onnx(model, None, None, tmp_path / "got.safetensors")
    assert (tmp_path / "got.safetensors").read_bytes() == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["got.safetensors", "want.safetensors"]


def test_a_failed_import_publishes_none_of_what_it_wrote_early(compiled, tmp_path, monkeypatch):
    import cnndsl.importer as importer

    def broken(*args):
        raise ImportModelError("the proof failed")

    monkeypatch.setattr(importer, "_imported", broken)
    with pytest.raises(ImportModelError, match="the proof failed"):
        import_onnx(compiled("resnet18"), None, tmp_path / "m.cnn", tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []
