"""`cnndsl export --triton`: config.pbtxt read back with Triton's own schema, model.onnx checked
against it, versions kept, and failures that leave the model repository as it was."""

from __future__ import annotations

import errno
import os
import stat

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import SPECS

from cnndsl.api import CompileOptions, load
from cnndsl.export.triton import ServeOptions, Tensor, config_text
from cnndsl.io import StagingError

FLAT = 'network tabular "a flat input"\ninput 20\ndense 8 relu\ndense 3\n'
BATCHNORM = "network bnnet\ninput 3x8x8\nconv 4 3x3 bias=false\nbatchnorm\nrelu\nglobalavgpool\nflatten\ndense 2\n"

LENET5_CONFIG = """\
# Triton model configuration for lenet5, written by `cnndsl export --triton`.
# Each version is a numbered folder beside this file: 1/model.onnx, 2/model.onnx, ...
name: "lenet5"
backend: "onnxruntime"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 1, 32, 32 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
dynamic_batching {
  preferred_batch_size: [ 16, 32, 64 ]
  max_queue_delay_microseconds: 100
}
# KIND_AUTO: instances on each GPU Triton can see, or on the CPU where it sees none.
instance_group [
  {
    count: 1
    kind: KIND_AUTO
  }
]
"""


def parse_config(text: str):
    """Parse config.pbtxt text with Triton's ModelConfig schema (as tritonserver does)."""
    text_format = pytest.importorskip("google.protobuf.text_format")
    pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    return text_format.Parse(text, pb2.ModelConfig())


def kind_name(value: int) -> str:
    pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    return pb2.ModelInstanceGroup.Kind.Name(value)


def compile_to(spec, out, **options):
    load(spec).compile(CompileOptions(output=out, **options))


def spec_file(spec: str, tmp_path) -> str:
    """A shipped spec's path, or one of the inline specs written to tmp_path."""
    inline = {"tabular": FLAT, "bnnet": BATCHNORM}
    if spec not in inline:
        return str(SPECS / f"{spec}.cnn")
    path = tmp_path / f"{spec}.cnn"
    path.write_text(inline[spec])
    return str(path)


def listing(path) -> set[str]:
    return set(os.listdir(path)) if os.path.isdir(path) else set()


# spec, input dims, output dims (per sample: Triton's dims leave out the batch axis)
SPECS_TABLE = [
    ("lenet5", (1, 32, 32), (10,)),
    ("resnet18", (3, 224, 224), (1000,)),
    ("filters", (1, 64, 64), (6, 64, 64)),  # not a classifier: a 3-D output
    ("mlp_mnist", (1, 28, 28), (10,)),
    ("tabular", (20,), (3,)),  # a flat input
]


@pytest.mark.parametrize("spec, in_dims, out_dims", SPECS_TABLE, ids=[row[0] for row in SPECS_TABLE])
def test_export_writes_a_triton_model(spec, in_dims, out_dims, tmp_path, cli):
    repo = tmp_path / "models"
    r = cli("export", "--triton", f"{repo}/", spec_file(spec, tmp_path))
    assert r.exit_code == 0, r.output
    assert listing(repo) == {spec} and listing(repo / spec) == {"1", "config.pbtxt"}
    assert listing(repo / spec / "1") == {"model.onnx"}
    config = parse_config((repo / spec / "config.pbtxt").read_text())
    assert (config.name, config.backend, config.platform) == (spec, "onnxruntime", "onnxruntime_onnx")
    assert config.max_batch_size == 64
    assert [(t.name, t.data_type, tuple(t.dims)) for t in config.input] == [("input", 11, in_dims)]  # 11: FP32
    assert [(t.name, t.data_type, tuple(t.dims)) for t in config.output] == [("output", 11, out_dims)]
    assert list(config.dynamic_batching.preferred_batch_size) == [16, 32, 64]
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert [(g.count, kind_name(g.kind)) for g in config.instance_group] == [(1, "KIND_AUTO")]

    session = ort.InferenceSession(str(repo / spec / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (i,), (o,) = session.get_inputs(), session.get_outputs()
    assert (i.name, i.type, i.shape) == (config.input[0].name, "tensor(float)", ["N", *in_dims])
    assert (o.name, o.type, o.shape) == (config.output[0].name, "tensor(float)", ["N", *out_dims])
    (y,) = session.run(None, {"input": np.zeros((2, *in_dims), dtype=np.float32)})
    assert y.shape == (2, *out_dims) and y.dtype == np.float32


def test_lenet5_config_text_is_exact(tmp_path, cli):
    assert cli("export", "--triton", tmp_path, SPECS / "lenet5.cnn").exit_code == 0
    assert (tmp_path / "lenet5" / "config.pbtxt").read_text() == LENET5_CONFIG


def test_float16_keeps_a_float32_interface(tmp_path, cli):
    r = cli("export", "--triton", tmp_path, SPECS / "lenet5.cnn", "--dtype", "float16")
    assert r.exit_code == 0, r.output
    config = parse_config((tmp_path / "lenet5" / "config.pbtxt").read_text())
    pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    assert config.input[0].data_type == config.output[0].data_type == pb2.TYPE_FP32
    model = onnx.load(str(tmp_path / "lenet5" / "1" / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT16}


# export options, and the same options given to Network.compile: the model must be byte-identical
SAME_AS_COMPILE = [
    ("lenet5", [], {}),
    ("lenet5", ["--seed", "3"], {"seed": 3}),
    ("lenet5", ["--dtype", "float16"], {"dtype": "float16"}),
    ("bnnet", ["--fold-bn", "--opset", "19"], {"fold_bn": True, "opset": 19}),
]


@pytest.mark.parametrize("spec, args, kwargs", SAME_AS_COMPILE)
def test_model_is_what_compile_writes(spec, args, kwargs, tmp_path, cli):
    path = spec_file(spec, tmp_path)
    assert cli("export", "--triton", tmp_path / "repo", path, *args).exit_code == 0
    compile_to(path, tmp_path / "ref.onnx", **kwargs)
    assert (tmp_path / "repo" / spec / "1" / "model.onnx").read_bytes() == (tmp_path / "ref.onnx").read_bytes()


def test_weights_are_loaded_by_name(tmp_path, cli):
    compile_to(SPECS / "lenet5.cnn", tmp_path / "trained.onnx", seed=5)
    r = cli("export", "--triton", tmp_path / "repo", SPECS / "lenet5.cnn", "--weights", tmp_path / "trained.onnx")
    assert r.exit_code == 0, r.output
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32), dtype=np.float32)
    outputs = []
    for model in (tmp_path / "repo" / "lenet5" / "1" / "model.onnx", tmp_path / "trained.onnx"):
        outputs.append(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"input": x}))
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])


BIG = (Tensor("input", "TYPE_FP32", (3, 224, 224)),)
# serving options -> (max batch, dims of the input, preferred sizes, queue delay or None, instance groups)
SERVING = [
    (ServeOptions(), (64, [3, 224, 224], [16, 32, 64], 100, [(1, "KIND_AUTO")])),
    (ServeOptions(max_batch=8, instances="gpu", count=2), (8, [3, 224, 224], [2, 4, 8], 100, [(2, "KIND_GPU")])),
    (ServeOptions(instances="cpu"), (64, [3, 224, 224], [16, 32, 64], 100, [(1, "KIND_CPU")])),
    (ServeOptions(instances="both"), (64, [3, 224, 224], [16, 32, 64], 100, [(1, "KIND_GPU"), (1, "KIND_CPU")])),
    (ServeOptions(max_batch=48, preferred=(8, 16), queue_delay_us=0), (48, [3, 224, 224], [8, 16], 0,
                                                                       [(1, "KIND_AUTO")])),
    (ServeOptions(preferred=()), (64, [3, 224, 224], [], 100, [(1, "KIND_AUTO")])),
    (ServeOptions(max_batch=1), (1, [3, 224, 224], [], None, [(1, "KIND_AUTO")])),
    (ServeOptions(max_batch=0), (0, [-1, 3, 224, 224], [], None, [(1, "KIND_AUTO")])),  # no batching
]


@pytest.mark.parametrize("opts, expected", SERVING)
def test_serving_options(opts, expected):
    config = parse_config(config_text("resnet18", list(BIG), [Tensor("output", "TYPE_FP32", (1000,))], opts))
    max_batch, dims, preferred, delay, groups = expected
    assert config.max_batch_size == max_batch and list(config.input[0].dims) == dims
    assert list(config.output[0].dims) == ([-1, 1000] if max_batch == 0 else [1000])
    assert config.HasField("dynamic_batching") == (delay is not None)
    assert list(config.dynamic_batching.preferred_batch_size) == preferred
    assert config.dynamic_batching.max_queue_delay_microseconds == (delay or 0)
    assert [(g.count, kind_name(g.kind)) for g in config.instance_group] == groups


def test_serving_options_from_the_command_line(tmp_path, cli):
    r = cli("export", "--triton", tmp_path, SPECS / "lenet5.cnn", "--max-batch", "8", "--preferred-batch", "4,8",
            "--max-queue-delay-us", "500", "--instances", "gpu", "--instance-count", "2", "--name", "digits")
    assert r.exit_code == 0, r.output
    assert "fails to load this model on a machine without a GPU" in r.output
    config = parse_config((tmp_path / "digits" / "config.pbtxt").read_text())
    assert (config.name, config.max_batch_size) == ("digits", 8)
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(g.count, kind_name(g.kind)) for g in config.instance_group] == [(2, "KIND_GPU")]


# options and specs refused before anything is written: (arguments after the repo, message)
REFUSED = [
    ([SPECS / "lenet5.cnn", "--preferred-batch", "128"], "preferred batch size 128 exceeds --max-batch 64"),
    ([SPECS / "lenet5.cnn", "--preferred-batch", "8,x"], "--preferred-batch: 'x' is not a batch size"),
    ([SPECS / "lenet5.cnn", "--max-batch", "0", "--preferred-batch", "4"], "needs dynamic batching"),
    ([SPECS / "lenet5.cnn", "--name", "../escape"], "'../escape' cannot name a Triton model"),
    ([SPECS / "mlp_12mp.cnn"], "cannot compile mlp_12mp here"),
    ([SPECS / "mlp_mnist.cnn", "--weights", "LENET5_WEIGHTS"], "mlp_mnist"),
]


@pytest.mark.parametrize("args, message", REFUSED)
def test_refused_before_writing(args, message, tmp_path, cli):
    if "LENET5_WEIGHTS" in args:  # weights of another network
        compile_to(SPECS / "lenet5.cnn", tmp_path / "lenet5.onnx")
        args = [tmp_path / "lenet5.onnx" if a == "LENET5_WEIGHTS" else a for a in args]
    r = cli("export", "--triton", tmp_path / "repo", *args)
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "repo").exists()


def test_bad_spec_points_at_the_line(tmp_path, cli):
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 1x28x28\nconv 6 5x5 tanh\nmaxpol 2\n")
    r = cli("export", "--triton", tmp_path / "repo", bad)
    assert r.exit_code == 1 and f"{bad}:3:1: error" in r.output and "did you mean 'maxpool'?" in r.output
    assert not (tmp_path / "repo").exists()


def test_versions_are_kept_and_not_clobbered(tmp_path, cli):
    spec, model = SPECS / "lenet5.cnn", tmp_path / "lenet5"
    assert cli("export", "--triton", tmp_path, spec).exit_code == 0
    r = cli("export", "--triton", tmp_path, spec, "--version", "2", "--dtype", "float16")
    assert r.exit_code == 0 and "kept" in r.output and "versions 1, 2" in r.output
    v1, config = (model / "1" / "model.onnx").read_bytes(), (model / "config.pbtxt").read_bytes()

    r = cli("export", "--triton", tmp_path, spec, "--seed", "7")
    assert r.exit_code == 1 and "version 1 of this model exists" in r.output and "--version 3" in r.output
    assert (model / "1" / "model.onnx").read_bytes() == v1
    r = cli("export", "--triton", tmp_path, spec, "--seed", "7", "--force")
    assert r.exit_code == 0 and (model / "1" / "model.onnx").read_bytes() != v1
    assert listing(model) == {"1", "2", "config.pbtxt"} and (model / "config.pbtxt").read_bytes() == config

    r = cli("export", "--triton", tmp_path, spec, "--version", "3", "--max-batch", "8")
    assert r.exit_code == 1 and "exists and differs" in r.output and "--force" in r.output
    assert listing(model) == {"1", "2", "config.pbtxt"} and (model / "config.pbtxt").read_bytes() == config
    r = cli("export", "--triton", tmp_path, spec, "--version", "3", "--max-batch", "8", "--force")
    assert r.exit_code == 0 and "replaced" in r.output
    assert parse_config((model / "config.pbtxt").read_text()).max_batch_size == 8
    assert listing(model) == {"1", "2", "3", "config.pbtxt"} and listing(tmp_path) == {"lenet5"}


def test_export_is_deterministic(tmp_path, cli):
    for repo in ("a", "b"):
        assert cli("export", "--triton", tmp_path / repo, SPECS / "lenet5.cnn").exit_code == 0
    for name in ("config.pbtxt", "1/model.onnx"):
        assert (tmp_path / "a" / "lenet5" / name).read_bytes() == (tmp_path / "b" / "lenet5" / name).read_bytes()


def test_model_folder_is_readable_by_others(tmp_path, cli):
    assert cli("export", "--triton", tmp_path, SPECS / "lenet5.cnn").exit_code == 0
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "lenet5").st_mode) == 0o777 & ~mask  # not mkdtemp's 0o700


def _no_permission(*args, **kwargs):
    raise StagingError(errno.EACCES, "Permission denied")


@pytest.mark.parametrize("case", ["file", "under_file", "read_only", "mkdtemp_denied", "model_is_file"])
def test_unwritable_repository(case, tmp_path, monkeypatch, cli):
    repo = tmp_path / "repo"
    messages = {"file": "is a file", "under_file": "cannot make the model repository",
                "read_only": "permission denied", "mkdtemp_denied": "cannot write here: Permission denied",
                "model_is_file": "exists and is not a folder"}
    if case in ("file", "under_file"):
        repo.write_text("not a folder")
        repo = repo / "sub" if case == "under_file" else repo
    elif case == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes to read-only folders")
        repo.mkdir(mode=0o500)
    elif case == "mkdtemp_denied":
        monkeypatch.setattr("cnndsl.io._make_staging", _no_permission)
    else:
        (repo / "lenet5").parent.mkdir()
        (repo / "lenet5").write_text("not a folder")
    r = cli("export", "--triton", repo, SPECS / "lenet5.cnn")
    assert r.exit_code == (2 if case == "file" else 1)  # click refuses a file for --triton as a usage error
    assert messages[case] in r.output and "Traceback" not in r.output
    assert not (tmp_path / "repo" / "lenet5" / "1").exists()


def _fail_midway(error):
    def compile_graph(graph, weights, *, path, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half a model")
        raise error

    return compile_graph


@pytest.mark.parametrize("error, code", [(OSError(errno.ENOSPC, "No space left on device"), 1),
                                         (KeyboardInterrupt(), 130)])
@pytest.mark.parametrize("existing", [False, True])
def test_failure_leaves_the_repository_as_it_was(error, code, existing, tmp_path, monkeypatch, cli):
    repo = tmp_path / "repo"
    if existing:
        assert cli("export", "--triton", repo, SPECS / "lenet5.cnn").exit_code == 0
        before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    monkeypatch.setattr("cnndsl.onnx.compile.compile_graph", _fail_midway(error))
    r = cli("export", "--triton", repo, SPECS / "lenet5.cnn", "--version", "1", "--force")
    assert r.exit_code == code and "Traceback" not in r.output
    if existing:
        assert listing(repo) == {"lenet5"} and listing(repo / "lenet5") == {"1", "config.pbtxt"}
        assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    else:
        assert not repo.exists()  # not even the empty repository folder this export made


@pytest.mark.parametrize("args, message", [
    (["--max-batch", "3000000000"], "3000000000 is not in the range"),
    (["--instance-count", "5000000000"], "5000000000 is not in the range"),
    (["--max-queue-delay-us", "99999999999999999999999"], "is not in the range"),
])
def test_values_beyond_the_config_field_types_are_usage_errors(args, message, tmp_path, cli):
    r = cli("export", "--triton", tmp_path / "repo", SPECS / "lenet5.cnn", *args)
    assert r.exit_code == 2 and message in r.output and not (tmp_path / "repo").exists()


@pytest.mark.parametrize("opts, message", [
    (ServeOptions(max_batch=2 ** 31), "--max-batch 2147483648 is beyond what Triton's model config holds"),
    (ServeOptions(count=2 ** 31), "--instance-count 2147483648 is beyond"),
    (ServeOptions(queue_delay_us=2 ** 64), "--max-queue-delay-us 18446744073709551616 is beyond"),
])
def test_api_refuses_values_the_config_cannot_hold(opts, message):
    from cnndsl.errors import ExportError
    from cnndsl.export.triton import check_options

    with pytest.raises(ExportError, match=message):
        check_options(opts)


def test_a_file_where_a_version_folder_goes_is_refused_cleanly(tmp_path, cli):
    (tmp_path / "repo" / "lenet5").mkdir(parents=True)
    (tmp_path / "repo" / "lenet5" / "1").write_text("not a folder")
    r = cli("export", "--triton", tmp_path / "repo", SPECS / "lenet5.cnn")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "lenet5/1: error: exists and is not a version folder" in r.output


def test_a_full_disk_names_the_model_folder_not_the_staging_one(tmp_path, monkeypatch, cli):
    from cnndsl.onnx import output

    def full(path, size_hint=0):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "open_output", full)
    monkeypatch.setattr("cnndsl.onnx.compile.open_output", full)
    r = cli("export", "--triton", tmp_path / "repo", SPECS / "lenet5.cnn")
    assert r.exit_code == 1 and "error: cannot write the model: No space left on device" in r.output
    assert ".cnndsl-" not in r.output and not (tmp_path / "repo").exists()


def test_serve_line_quotes_a_repository_with_spaces(tmp_path, cli):
    r = cli("export", "--triton", tmp_path / "my models", SPECS / "lenet5.cnn")
    assert r.exit_code == 0 and f"--model-repository='{tmp_path / 'my models'}'" in r.output


def test_a_read_only_file_system_is_named_as_such(tmp_path, monkeypatch, cli):
    class ReadOnly:  # what os.statvfs says of a read-only mount with room to spare
        f_flag, f_frsize, f_blocks, f_bfree, f_bavail = os.ST_RDONLY, 4096, 10 ** 9, 10 ** 9, 10 ** 9

    (tmp_path / "repo").mkdir()
    monkeypatch.setattr("cnndsl.export.repository.os.statvfs", lambda path: ReadOnly())
    r = cli("export", "--triton", tmp_path / "repo", SPECS / "lenet5.cnn")
    assert r.exit_code == 1 and "it is on a read-only file system" in r.output and "permissions" not in r.output
